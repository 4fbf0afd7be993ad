// Float64 CPU reference for layerNorm and rmsNorm: rows of the last k elements of row-major
// data, the mean and variance taken in two passes (no shortcut that could lose precision).

/** (x − mean)/√(var + eps)·w + b per row of k elements (w, b of k elements, or null). */
export function layerNorm(x: ArrayLike<number>, k: number, w: ArrayLike<number> | null, b: ArrayLike<number> | null, eps = 1e-5): Float64Array {
  const out = new Float64Array(x.length);
  for (let r = 0; r * k < x.length; r++) {
    let mean = 0;
    for (let c = 0; c < k; c++) mean += x[r * k + c]!;
    mean /= k;
    let v = 0;
    for (let c = 0; c < k; c++) v += (x[r * k + c]! - mean) ** 2;
    v /= k;
    const rstd = 1 / Math.sqrt(v + eps);
    for (let c = 0; c < k; c++) out[r * k + c] = (x[r * k + c]! - mean) * rstd * (w ? w[c]! : 1) + (b ? b[c]! : 0);
  }
  return out;
}

/** x/√(mean(x²) + eps)·w per row of k elements. */
export function rmsNorm(x: ArrayLike<number>, k: number, w: ArrayLike<number> | null, eps = 2 ** -23): Float64Array {
  const out = new Float64Array(x.length);
  for (let r = 0; r * k < x.length; r++) {
    let ms = 0;
    for (let c = 0; c < k; c++) ms += x[r * k + c]! ** 2;
    const rstd = 1 / Math.sqrt(ms / k + eps);
    for (let c = 0; c < k; c++) out[r * k + c] = x[r * k + c]! * rstd * (w ? w[c]! : 1);
  }
  return out;
}

/** BatchNorm2d in training mode over NCHW `x`: each channel normalised with its batch statistics. */
export function batchNorm2d(x: ArrayLike<number>, [n, c, h, w]: readonly number[], eps = 1e-5): Float64Array {
  const out = new Float64Array(x.length);
  const plane = h! * w!;
  const at = (b: number, ch: number, i: number) => (b * c! + ch) * plane + i;
  for (let ch = 0; ch < c!; ch++) {
    const values: number[] = [];
    for (let b = 0; b < n!; b++) for (let i = 0; i < plane; i++) values.push(x[at(b, ch, i)]!);
    const mean = values.reduce((a, v) => a + v, 0) / values.length;
    const variance = values.reduce((a, v) => a + (v - mean) ** 2, 0) / values.length;
    for (let b = 0; b < n!; b++) for (let i = 0; i < plane; i++) out[at(b, ch, i)] = (x[at(b, ch, i)]! - mean) / Math.sqrt(variance + eps);
  }
  return out;
}
