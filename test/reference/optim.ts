// Float64 CPU references for the optimizers and gradient clipping, written from the update rules
// of torch.optim.SGD / Adam / AdamW and torch.nn.utils.clip_grad_norm_.

export interface SGDRef {
  lr: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

/** One SGD step of p in place; `buf` is the momentum buffer (null before the first step). */
export function sgdStep(p: Float64Array, g: ArrayLike<number>, buf: Float64Array | null, o: SGDRef): Float64Array | null {
  const { lr, momentum = 0, dampening = 0, weightDecay = 0, nesterov = false } = o;
  const d = Float64Array.from(p, (x, i) => g[i]! + weightDecay * x);
  let b = buf;
  if (momentum !== 0) {
    b = buf ? Float64Array.from(buf, (v, i) => momentum * v + (1 - dampening) * d[i]!) : Float64Array.from(d);
    for (let i = 0; i < d.length; i++) d[i] = nesterov ? d[i]! + momentum * b[i]! : b[i]!;
  }
  for (let i = 0; i < p.length; i++) p[i] = p[i]! - lr * d[i]!;
  return b;
}

export interface AdamRef {
  lr: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
  decoupled?: boolean;
}

export interface AdamState {
  step: number;
  m: Float64Array;
  v: Float64Array;
}

/** One Adam (or AdamW, when decoupled) step of p in place. */
export function adamStep(p: Float64Array, grad: ArrayLike<number>, s: AdamState, o: AdamRef): void {
  const { lr, betas: [b1, b2] = [0.9, 0.999], eps = 1e-8, weightDecay = 0, decoupled = false } = o;
  s.step++;
  for (let i = 0; i < p.length; i++) {
    let g = grad[i]!;
    if (decoupled) p[i] = p[i]! * (1 - lr * weightDecay);
    else g += weightDecay * p[i]!;
    s.m[i] = b1 * s.m[i]! + (1 - b1) * g;
    s.v[i] = b2 * s.v[i]! + (1 - b2) * g * g;
    const mHat = s.m[i]! / (1 - b1 ** s.step);
    const vHat = s.v[i]! / (1 - b2 ** s.step);
    p[i] = p[i]! - (lr * mHat) / (Math.sqrt(vHat) + eps);
  }
}

/** The total L2 norm of `grads` and the grads scaled by min(1, maxNorm / (norm + 1e-6)). */
export function clipGradNorm(grads: ArrayLike<number>[], maxNorm: number): { norm: number; scaled: Float64Array[] } {
  let sq = 0;
  for (const g of grads) for (let i = 0; i < g.length; i++) sq += g[i]! * g[i]!;
  const norm = Math.sqrt(sq);
  const coef = Math.min(1, maxNorm / (norm + 1e-6));
  return { norm, scaled: grads.map((g) => Float64Array.from(g, (x) => x * coef)) };
}
