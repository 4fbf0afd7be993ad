// Float64 CPU reference for 2-D pooling on NCHW, written straight from the definition (PyTorch's
// semantics: max pools pad with -inf, average pools divide by kH·kW including padded zeros).

export interface PoolConfig {
  shape: [number, number, number, number];
  k: [number, number];
  stride: [number, number];
  padding: [number, number];
}

export function outShape({ shape: [n, c, h, w], k, stride, padding }: PoolConfig): [number, number, number, number] {
  return [
    n,
    c,
    Math.floor((h + 2 * padding[0] - k[0]) / stride[0]) + 1,
    Math.floor((w + 2 * padding[1] - k[1]) / stride[1]) + 1,
  ];
}

/** `finish` applied to the in-bounds values of every window. */
function pool(x: ArrayLike<number>, cfg: PoolConfig, finish: (values: number[]) => number): Float64Array {
  const [n, c, h, w] = cfg.shape;
  const [, , oh, ow] = outShape(cfg);
  const out = new Float64Array(n * c * oh * ow);
  let o = 0;
  for (let plane = 0; plane < n * c; plane++) {
    for (let i = 0; i < oh; i++) {
      for (let j = 0; j < ow; j++) {
        const values: number[] = [];
        for (let di = 0; di < cfg.k[0]; di++) {
          for (let dj = 0; dj < cfg.k[1]; dj++) {
            const y = i * cfg.stride[0] - cfg.padding[0] + di;
            const xx = j * cfg.stride[1] - cfg.padding[1] + dj;
            if (y >= 0 && y < h && xx >= 0 && xx < w) values.push(x[plane * h * w + y * w + xx]!);
          }
        }
        out[o++] = finish(values);
      }
    }
  }
  return out;
}

export function maxPool2d(x: ArrayLike<number>, cfg: PoolConfig): Float64Array {
  return pool(x, cfg, (v) => Math.max(...v));
}

export function avgPool2d(x: ArrayLike<number>, cfg: PoolConfig): Float64Array {
  return pool(x, cfg, (v) => v.reduce((a, b) => a + b, 0) / (cfg.k[0] * cfg.k[1]));
}
