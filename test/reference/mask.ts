// Float64 CPU references for the masks: comparisons (PyTorch's NaN rules, which are JavaScript's),
// where with three-way broadcasting, maskedFill, and tril/triu.

import { broadcastShape, broadcastTo } from './elementwise';

export const comparisons: Record<string, (a: number, b: number) => boolean> = {
  eq: (a, b) => a === b,
  ne: (a, b) => a !== b,
  lt: (a, b) => a < b,
  le: (a, b) => a <= b,
  gt: (a, b) => a > b,
  ge: (a, b) => a >= b,
};

/** A condition or mask element as a boolean: nonzero, NaN included. */
export const truthy = (x: number): boolean => x !== 0;

export function where(
  c: ArrayLike<number>, cShape: readonly number[],
  a: ArrayLike<number>, aShape: readonly number[],
  b: ArrayLike<number>, bShape: readonly number[],
): Float64Array {
  const shape = broadcastShape(broadcastShape(cShape, aShape), bShape);
  const C = broadcastTo(c, cShape, shape);
  const A = broadcastTo(a, aShape, shape);
  const B = broadcastTo(b, bShape, shape);
  return C.map((x, i) => (truthy(x) ? A[i]! : B[i]!));
}

export function maskedFill(a: ArrayLike<number>, aShape: readonly number[], m: ArrayLike<number>, mShape: readonly number[], value: number): Float64Array {
  const shape = broadcastShape(aShape, mShape);
  const A = broadcastTo(a, aShape, shape);
  const M = broadcastTo(m, mShape, shape);
  return A.map((x, i) => (truthy(M[i]!) ? value : x));
}

/** tril (upper false) or triu (upper true) of each matrix in the last two dims of `shape`. */
export function triangle(a: ArrayLike<number>, shape: readonly number[], k: number, upper: boolean): Float64Array {
  const cols = shape[shape.length - 1]!;
  const rows = shape[shape.length - 2]!;
  return Float64Array.from(a, (x, i) => {
    const above = (i % cols) - (Math.floor(i / cols) % rows);
    return (upper ? above >= k : above <= k) ? x : 0;
  });
}
