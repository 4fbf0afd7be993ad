// The deadline of a session's steps, kept by the hub: an attempt (or the wait for the holders of
// the state to be ready for a step) may take `factor` times the slowest of the session's last 8
// committed attempts, and at least `floorMs`. One timer: starting it again replaces the pending one.

const WINDOW = 8;

export class StepDeadline {
  /** How long the last committed attempts took (ms). */
  private recent: number[] = [];
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    readonly floorMs: number,
    readonly factor: number,
  ) {}

  /** An attempt was committed `ms` after it began. */
  took(ms: number): void {
    this.recent = [...this.recent, ms].slice(-WINDOW);
  }

  get ms(): number {
    return Math.max(this.floorMs, this.factor * Math.max(0, ...this.recent));
  }

  /** The deadline and where it comes from, for reasons and log lines. */
  describe(): string {
    const s = (x: number) => `${(x / 1000).toFixed(1)} s`;
    if (!this.recent.length) return `${s(this.ms)}, before any step was timed`;
    return `${s(this.ms)}: ${this.factor}× the slowest of the last ${this.recent.length} steps (${s(Math.max(...this.recent))}), at least ${s(this.floorMs)}`;
  }

  /** Call `then` once the deadline has passed from now. */
  start(then: () => void): void {
    this.stop();
    this.timer = setTimeout(() => {
      this.timer = null;
      then();
    }, this.ms);
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** A new session: no step timed yet. */
  reset(): void {
    this.stop();
    this.recent = [];
  }
}
