// How kernels address strided views: the rank limit of their shape/stride arrays, the workgroup
// size of the one-element-per-invocation kernels, and the merging of dimensions that every operand
// addresses as one (so that index loops are short).

import type { View } from './view';

/** Most dimensions a strided kernel takes (shapes and strides travel as array<vec4u, 2>). */
export const MAX_RANK = 8;

/** Workgroup size of the simple one-element-per-invocation kernels. */
export const WG = 256;

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

/** Strides that read `v` as if it had the (broadcast) shape `shape`: 0 along broadcast dims. */
export function broadcastStrides(v: View, shape: readonly number[]): number[] {
  const n = shape.length;
  const out = new Array<number>(n).fill(0);
  for (let i = 0; i < v.shape.length; i++) {
    const j = n - v.shape.length + i;
    out[j] = v.shape[i] === 1 ? 0 : v.strides[i]!;
  }
  return out;
}

/** `values` padded with `fill` to `n` entries (shape arrays whose unused tail a kernel may read). */
export function padded(values: readonly number[], n: number, fill: number): number[] {
  const out = [...values];
  while (out.length < n) out.push(fill);
  return out;
}
