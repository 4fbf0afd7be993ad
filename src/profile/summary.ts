// A profile's dispatches summed per kernel and per op, and a profile as a text table.

import { formatBytes } from '../runtime/limits';

export interface KernelProfile {
  kernel: string;
  op: string;
  calls: number;
  /** Sum of its dispatches' GPU times (null without timestamps). */
  gpuMs: number | null;
  /** Bytes bound, summed over its dispatches. */
  bytes: number;
}

export interface OpProfile {
  op: string;
  calls: number;
  gpuMs: number | null;
  bytes: number;
}

interface Timed {
  kernel: string;
  op: string;
  bytes: number;
  gpuMs: number | null;
}

/** Per kernel and per op, most GPU time first (most bytes first without GPU times). */
export function summarize(dispatches: readonly Timed[]): { kernels: KernelProfile[]; byOp: OpProfile[] } {
  const kernels = new Map<string, KernelProfile>();
  const ops = new Map<string, OpProfile>();
  for (const d of dispatches) {
    const k = kernels.get(d.kernel) ?? { kernel: d.kernel, op: d.op, calls: 0, gpuMs: d.gpuMs === null ? null : 0, bytes: 0 };
    const o = ops.get(d.op) ?? { op: d.op, calls: 0, gpuMs: d.gpuMs === null ? null : 0, bytes: 0 };
    for (const e of [k, o]) {
      e.calls++;
      e.bytes += d.bytes;
      if (e.gpuMs !== null) e.gpuMs += d.gpuMs!;
    }
    kernels.set(d.kernel, k);
    ops.set(d.op, o);
  }
  const order = (a: { gpuMs: number | null; bytes: number }, b: { gpuMs: number | null; bytes: number }) =>
    (b.gpuMs ?? 0) - (a.gpuMs ?? 0) || b.bytes - a.bytes;
  return { kernels: [...kernels.values()].sort(order), byOp: [...ops.values()].sort(order) };
}

/** A profile as a plain-text table: one line per kernel (or per op), with totals. */
export function formatProfile(
  p: { backend?: string; timestamps: boolean; totalGpuMs: number | null; wallMs: number; kernels: KernelProfile[]; byOp: OpProfile[]; submissions: unknown[] },
  { byOp = false }: { byOp?: boolean } = {},
): string {
  const rows: { name: string; calls: number; gpuMs: number | null; bytes: number }[] = byOp
    ? p.byOp.map((o) => ({ name: o.op, ...o }))
    : p.kernels.map((k) => ({ name: k.kernel, ...k }));
  const total = p.totalGpuMs;
  const width = Math.max(byOp ? 2 : 6, ...rows.map((r) => r.name.length)) + 2;
  const cpu = p.backend === 'wasm';
  const head = `${(byOp ? 'op' : 'kernel').padEnd(width)}${'calls'.padStart(7)}${(cpu ? 'CPU time' : 'GPU time').padStart(12)}${'share'.padStart(8)}${'bytes bound'.padStart(13)}`;
  const lines = [head];
  for (const r of rows) {
    const share = total && r.gpuMs !== null ? `${((100 * r.gpuMs) / total).toFixed(1)}%` : '—';
    lines.push(
      `${r.name.padEnd(width)}${String(r.calls).padStart(7)}${(r.gpuMs === null ? '—' : formatMs(r.gpuMs)).padStart(12)}${share.padStart(8)}${formatBytes(r.bytes).padStart(13)}`,
    );
  }
  const calls = rows.reduce((s, r) => s + r.calls, 0);
  lines.push(
    cpu
      ? `${calls} kernel runs, ${formatMs(total ?? 0)} CPU time, ${formatMs(p.wallMs)} wall time (the CPU backend: kernels run one at a time)`
      : total === null
      ? `${calls} dispatches in ${p.submissions.length} submissions, ${formatMs(p.wallMs)} wall time (no timestamp queries: no GPU time per kernel)`
      : `${calls} dispatches, ${formatMs(total)} GPU time, ${formatMs(p.wallMs)} wall time (one compute pass per dispatch while profiling)`,
  );
  return lines.join('\n');
}

function formatMs(ms: number): string {
  return ms >= 100 ? `${ms.toFixed(0)} ms` : ms >= 1 ? `${ms.toFixed(2)} ms` : `${(ms * 1000).toFixed(1)} µs`;
}
