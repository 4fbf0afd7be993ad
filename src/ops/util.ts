// Small helpers every op file shares: shape checks with clear errors, and broadcasting.

import { DTypeError, ShapeError, LimitError } from '../runtime/errors';
import { formatShape, type DType, type Tensor } from '../tensor';

/** Most dimensions a strided kernel takes (shapes and strides travel as array<vec4u, 2>). */
export const MAX_RANK = 8;

/** Workgroup size of the simple one-element-per-invocation kernels. */
export const WG = 256;

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

/** The NumPy broadcast of two shapes, or a ShapeError naming both. */
export function broadcastShapes(op: string, a: readonly number[], b: readonly number[]): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new ShapeError(`${op}: shapes ${formatShape(a)} and ${formatShape(b)} cannot be broadcast together`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Strides that read `t` as if it had the (broadcast) shape `shape`: 0 along broadcast dims. */
export function broadcastStrides(t: Tensor, shape: readonly number[]): number[] {
  const n = shape.length;
  const out = new Array<number>(n).fill(0);
  for (let i = 0; i < t.ndim; i++) {
    const j = n - t.ndim + i;
    out[j] = t.shape[i] === 1 ? 0 : t.strides[i]!;
  }
  return out;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export interface Dims {
  shape: number[];
  strides: number[][];
}

/**
 * Merge neighbouring dimensions that every operand addresses as one (outer stride = inner
 * stride · inner size) and drop dimensions of size 1. Row-major order is preserved.
 */
export function coalesce(shape: readonly number[], strides: readonly (readonly number[])[]): Dims {
  const out: Dims = { shape: [], strides: strides.map(() => []) };
  shape.forEach((n, d) => {
    if (n === 1) return;
    const last = out.shape.length - 1;
    if (last >= 0 && strides.every((s, k) => out.strides[k]![last] === s[d]! * n)) {
      out.shape[last] *= n;
      strides.forEach((s, k) => (out.strides[k]![last] = s[d]!));
    } else {
      out.shape.push(n);
      strides.forEach((s, k) => out.strides[k]!.push(s[d]!));
    }
  });
  return out;
}
