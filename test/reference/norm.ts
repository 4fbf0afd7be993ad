// Float64 CPU reference for LayerNorm and BatchNorm2d (training mode, PyTorch's semantics): the
// mean, the biased variance, then (x − mean) / sqrt(var + eps). A row or channel holding NaN or
// ±inf has a NaN variance, so all of its outputs are NaN, as in PyTorch.

/** LayerNorm over the last `k` elements of each row (no affine). */
export function layerNorm(x: ArrayLike<number>, k: number, eps = 1e-5): Float64Array {
  const out = new Float64Array(x.length);
  for (let r = 0; r < x.length; r += k) {
    const row = Array.from({ length: k }, (_, i) => x[r + i]!);
    const mean = row.reduce((a, b) => a + b, 0) / k;
    const variance = row.reduce((a, b) => a + (b - mean) ** 2, 0) / k;
    row.forEach((v, i) => (out[r + i] = (v - mean) / Math.sqrt(variance + eps)));
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
