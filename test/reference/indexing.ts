// Float64 CPU references for reading by index (PyTorch semantics), row-major data.

import { sizeOf } from '../helpers';

/** weight [V, D] rows at ids → [...ids, D]. */
export function embedding(ids: ArrayLike<number>, weight: ArrayLike<number>, d: number): Float64Array {
  const out = new Float64Array(ids.length * d);
  for (let i = 0; i < ids.length; i++) for (let c = 0; c < d; c++) out[i * d + c] = weight[ids[i]! * d + c]!;
  return out;
}

/** torch.index_select(a, axis, ids). */
export function indexSelect(a: ArrayLike<number>, shape: readonly number[], axis: number, ids: ArrayLike<number>): Float64Array {
  const outer = sizeOf(shape.slice(0, axis));
  const n = shape[axis]!;
  const inner = sizeOf(shape.slice(axis + 1));
  const out = new Float64Array(outer * ids.length * inner);
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < ids.length; j++) for (let i = 0; i < inner; i++) out[(o * ids.length + j) * inner + i] = a[(o * n + ids[j]!) * inner + i]!;
  }
  return out;
}

/** torch.gather(a, axis, index): out has index's shape. */
export function gather(a: ArrayLike<number>, shape: readonly number[], axis: number, index: ArrayLike<number>, indexShape: readonly number[]): Float64Array {
  const out = new Float64Array(index.length);
  const strides = shape.map((_, d) => sizeOf(shape.slice(d + 1)));
  for (let e = 0; e < index.length; e++) {
    let rem = e;
    let src = 0;
    for (let d = indexShape.length - 1; d >= 0; d--) {
      const c = rem % indexShape[d]!;
      rem = Math.floor(rem / indexShape[d]!);
      src += (d === axis ? index[e]! : c) * strides[d]!;
    }
    out[e] = a[src]!;
  }
  return out;
}
