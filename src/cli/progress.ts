// A one-line progress bar for the terminal: redrawn in place on a TTY, printed every tenth of the
// way otherwise (so CI logs stay short but show progress).

export class ProgressBar {
  private started = Date.now();
  private lastDecile = -1;
  private readonly tty: boolean;

  constructor(
    private readonly total: number,
    private readonly label: string,
    private readonly out: NodeJS.WriteStream = process.stderr,
  ) {
    this.tty = Boolean(out.isTTY);
  }

  update(done: number, fields: Record<string, string>): void {
    const frac = this.total ? Math.min(1, done / this.total) : 1;
    const width = 24;
    const filled = Math.round(frac * width);
    const elapsed = (Date.now() - this.started) / 1000;
    const eta = frac > 0 ? (elapsed / frac) * (1 - frac) : NaN;
    const extra = Object.entries(fields).map(([k, v]) => `${k} ${v}`).join('  ');
    const line = `${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(Math.floor(frac * 100)).padStart(3)}%  ${extra}  ETA ${formatTime(eta)}`;
    if (this.tty) {
      this.out.write(`\r${line}\x1b[K`);
    } else {
      const decile = Math.floor(frac * 10);
      if (decile !== this.lastDecile) {
        this.lastDecile = decile;
        this.out.write(line + '\n');
      }
    }
  }

  done(message: string): void {
    if (this.tty) this.out.write(`\r\x1b[K`);
    this.out.write(message + '\n');
  }
}

export function formatTime(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--:--';
  const s = Math.round(seconds);
  const m = Math.floor(s / 60);
  return m >= 60 ? `${Math.floor(m / 60)}:${String(m % 60).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}` : `${m}:${String(s % 60).padStart(2, '0')}`;
}
