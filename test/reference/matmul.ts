// Float64 CPU reference for matmul with torch.matmul semantics (1-D promotion, broadcast batch).

import { broadcastShape } from './elementwise';

export interface Result {
  data: Float64Array;
  shape: number[];
}

/** a (shape aShape, row-major) @ b (shape bShape), summed in float64. */
export function matmul(a: ArrayLike<number>, aShape: readonly number[], b: ArrayLike<number>, bShape: readonly number[]): Result {
  const as = aShape.length === 1 ? [1, aShape[0]!] : [...aShape];
  const bs = bShape.length === 1 ? [bShape[0]!, 1] : [...bShape];
  const M = as[as.length - 2]!;
  const K = as[as.length - 1]!;
  const N = bs[bs.length - 1]!;
  if (bs[bs.length - 2] !== K) throw new Error('inner dimensions differ');
  const batch = broadcastShape(as.slice(0, -2), bs.slice(0, -2));
  const batches = batch.reduce((x, y) => x * y, 1);
  const data = new Float64Array(batches * M * N);
  for (let t = 0; t < batches; t++) {
    const ao = batchOffset(t, batch, as.slice(0, -2)) * M * K;
    const bo = batchOffset(t, batch, bs.slice(0, -2)) * K * N;
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += a[ao + m * K + k]! * b[bo + k * N + n]!;
        data[(t * M + m) * N + n] = s;
      }
    }
  }
  const shape = [...batch];
  if (aShape.length > 1) shape.push(M);
  if (bShape.length > 1) shape.push(N);
  return { data, shape };
}

/** Index of the matrix that batch t of `batch` reads from an operand with batch dims `own`. */
function batchOffset(t: number, batch: readonly number[], own: readonly number[]): number {
  let rem = t;
  let index = 0;
  let stride = 1;
  for (let d = batch.length - 1; d >= 0; d--) {
    const i = rem % batch[d]!;
    rem = Math.floor(rem / batch[d]!);
    const od = d - (batch.length - own.length);
    if (od < 0) continue;
    if (own[od] !== 1) index += i * stride;
    stride *= own[od]!;
  }
  return index;
}

/** The transpose of a row-major rows×cols matrix (each of `batches` matrices). */
export function transpose(x: ArrayLike<number>, rows: number, cols: number, batches = 1): Float64Array {
  const out = new Float64Array(batches * rows * cols);
  for (let t = 0; t < batches; t++) {
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[t * rows * cols + c * rows + r] = x[t * rows * cols + r * cols + c]!;
  }
  return out;
}
