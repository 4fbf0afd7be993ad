// Moving the shared data (PyTorch layouts: NCHW activations, [out, in] and [O, C, kH, kW]
// weights) into the layouts other engines use natively, on the CPU before anything is timed.

/** [rows, cols] → [cols, rows]. */
export function transpose2d(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c]!;
  return out;
}

/** Permute a 4-D array: out dimension i is input dimension perm[i]. */
export function permute4d(a: Float32Array, shape: readonly number[], perm: readonly number[]): Float32Array {
  const inStrides = [shape[1]! * shape[2]! * shape[3]!, shape[2]! * shape[3]!, shape[3]!, 1];
  const outShape = perm.map((p) => shape[p]!);
  const s = perm.map((p) => inStrides[p]!);
  const out = new Float32Array(a.length);
  let o = 0;
  for (let i = 0; i < outShape[0]!; i++)
    for (let j = 0; j < outShape[1]!; j++)
      for (let k = 0; k < outShape[2]!; k++)
        for (let l = 0; l < outShape[3]!; l++) out[o++] = a[i * s[0]! + j * s[1]! + k * s[2]! + l * s[3]!]!;
  return out;
}

/** NCHW → NHWC. */
export const NCHW_TO_NHWC = [0, 2, 3, 1] as const;
/** Conv weight [O, C, kH, kW] → [kH, kW, C, O]. */
export const OIHW_TO_HWIO = [2, 3, 1, 0] as const;
