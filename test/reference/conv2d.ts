// Float64 CPU reference for conv2d (NCHW, zero padding, PyTorch's output size) and its gradients.
// The gradients are written as the adjoint of the forward loop (scatter), a formulation
// independent of the GPU kernels' gather loops.

export type Pair = number | [number, number];

export interface ConvGeometry {
  N: number; C: number; H: number; W: number;
  O: number; kH: number; kW: number;
  OH: number; OW: number;
  sh: number; sw: number; ph: number; pw: number; dh: number; dw: number;
}

const pair = (v: Pair | undefined, d: number): [number, number] => (v === undefined ? [d, d] : typeof v === 'number' ? [v, v] : v);

export function geometry(
  x: readonly number[],
  w: readonly number[],
  opts: { stride?: Pair; padding?: Pair; dilation?: Pair } = {},
): ConvGeometry {
  const [N, C, H, W] = x as [number, number, number, number];
  const [O, , kH, kW] = w as [number, number, number, number];
  const [sh, sw] = pair(opts.stride, 1);
  const [ph, pw] = pair(opts.padding, 0);
  const [dh, dw] = pair(opts.dilation, 1);
  const OH = Math.floor((H + 2 * ph - dh * (kH - 1) - 1) / sh) + 1;
  const OW = Math.floor((W + 2 * pw - dw * (kW - 1) - 1) / sw) + 1;
  return { N, C, H, W, O, kH, kW, OH, OW, sh, sw, ph, pw, dh, dw };
}

/** Calls f(xi, wi, yi) for every multiply-add of the convolution (flat indices). */
function forEachTap(g: ConvGeometry, f: (xi: number, wi: number, yi: number) => void): void {
  const { N, C, H, W, O, kH, kW, OH, OW, sh, sw, ph, pw, dh, dw } = g;
  for (let n = 0; n < N; n++)
    for (let o = 0; o < O; o++)
      for (let oh = 0; oh < OH; oh++)
        for (let ow = 0; ow < OW; ow++) {
          const yi = ((n * O + o) * OH + oh) * OW + ow;
          for (let c = 0; c < C; c++)
            for (let kh = 0; kh < kH; kh++) {
              const ih = oh * sh - ph + kh * dh;
              if (ih < 0 || ih >= H) continue;
              for (let kw = 0; kw < kW; kw++) {
                const iw = ow * sw - pw + kw * dw;
                if (iw < 0 || iw >= W) continue;
                f(((n * C + c) * H + ih) * W + iw, ((o * C + c) * kH + kh) * kW + kw, yi);
              }
            }
        }
}

export function conv2d(x: ArrayLike<number>, w: ArrayLike<number>, b: ArrayLike<number> | null, g: ConvGeometry): Float64Array {
  const y = new Float64Array(g.N * g.O * g.OH * g.OW);
  if (b) for (let i = 0; i < y.length; i++) y[i] = b[Math.floor(i / (g.OH * g.OW)) % g.O]!;
  forEachTap(g, (xi, wi, yi) => (y[yi]! += x[xi]! * w[wi]!));
  return y;
}

export function conv2dGradInput(dy: ArrayLike<number>, w: ArrayLike<number>, g: ConvGeometry): Float64Array {
  const dx = new Float64Array(g.N * g.C * g.H * g.W);
  forEachTap(g, (xi, wi, yi) => (dx[xi]! += dy[yi]! * w[wi]!));
  return dx;
}

export function conv2dGradWeight(dy: ArrayLike<number>, x: ArrayLike<number>, g: ConvGeometry): Float64Array {
  const dw = new Float64Array(g.O * g.C * g.kH * g.kW);
  forEachTap(g, (xi, wi, yi) => (dw[wi]! += dy[yi]! * x[xi]!));
  return dw;
}

export function conv2dGradBias(dy: ArrayLike<number>, g: ConvGeometry): Float64Array {
  const db = new Float64Array(g.O);
  for (let i = 0; i < dy.length; i++) db[Math.floor(i / (g.OH * g.OW)) % g.O]! += dy[i]!;
  return db;
}
