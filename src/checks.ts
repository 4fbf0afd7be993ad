// Argument checks every op shares, each with an error that names the op and the shapes.

import { DTypeError, LimitError, ShapeError } from './runtime/errors';
import { MAX_RANK } from './kernels/layout';
import { formatShape, type DType } from './kernels/view';
import type { Tensor } from './tensor';

export function checkRank(op: string, shape: readonly number[]): void {
  if (shape.length > MAX_RANK) {
    throw new LimitError(`${op}: tensors of rank ${shape.length} ${formatShape(shape)} are not supported (at most ${MAX_RANK})`);
  }
}

/** `t` is alive (else a DisposedError naming `op`) and of `dtype`: the first check of every op, before it allocates. */
export function checkDType(op: string, t: Tensor, dtype: DType = 'float32', what = 'input'): void {
  t.storage(op);
  if (t.dtype !== dtype) {
    throw new DTypeError(`${op}: ${what} ${formatShape(t.shape)} is ${t.dtype}, expected ${dtype}`);
  }
}

export function checkShape(op: string, shape: readonly number[]): number[] {
  if (!Array.isArray(shape) || shape.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new ShapeError(`${op}: invalid shape ${JSON.stringify(shape)} (dimensions must be non-negative integers)`);
  }
  checkRank(op, shape);
  return [...shape];
}

/** Normalise an axis (negative counts from the end) for a tensor of rank `ndim`. */
export function normAxis(op: string, axis: number, ndim: number): number {
  const a = axis < 0 ? axis + ndim : axis;
  if (!Number.isInteger(axis) || a < 0 || a >= Math.max(ndim, 1)) {
    throw new ShapeError(`${op}: axis ${axis} is out of range for a tensor of rank ${ndim}`);
  }
  return a;
}

/**
 * The NumPy broadcast of two shapes, or a ShapeError naming both (or saying `problem` instead,
 * after the op's name).
 */
export function broadcastShapes(op: string, a: readonly number[], b: readonly number[], problem?: string): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new ShapeError(`${op}: ${problem ?? `shapes ${formatShape(a)} and ${formatShape(b)} cannot be broadcast together`}`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * A number or an [h, w] pair of integers ≥ min (0 or 1), as a pair: the kernel sizes, strides,
 * padding and dilation of 2-D ops.
 */
export function pair(op: string, what: string, v: number | readonly [number, number], min: 0 | 1): [number, number] {
  const p = typeof v === 'number' ? [v, v] : v;
  if (!Array.isArray(p) || p.length !== 2 || p.some((d) => !Number.isInteger(d) || d < min)) {
    throw new ShapeError(`${op}: ${what} must be a ${min === 0 ? 'non-negative' : 'positive'} integer or a pair of them, got ${JSON.stringify(v)}`);
  }
  return [p[0]!, p[1]!];
}
