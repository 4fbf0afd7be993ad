// Float64 CPU reference for elementwise ops with NumPy broadcasting.

export function broadcastShape(a: readonly number[], b: readonly number[]): number[] {
  const n = Math.max(a.length, b.length);
  return Array.from({ length: n }, (_, i) => {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new Error('not broadcastable');
    return da === 1 ? db : da;
  });
}

/** Read `data` of `shape` as if broadcast to `target`: one value per target element. */
export function broadcastTo(data: ArrayLike<number>, shape: readonly number[], target: readonly number[]): Float64Array {
  const n = target.reduce((x, y) => x * y, 1);
  const out = new Float64Array(n);
  const strides = new Array<number>(target.length).fill(0);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    const j = target.length - shape.length + i;
    strides[j] = shape[i] === 1 ? 0 : s;
    s *= shape[i]!;
  }
  for (let i = 0; i < n; i++) {
    let rem = i;
    let src = 0;
    for (let d = target.length - 1; d >= 0; d--) {
      src += (rem % target[d]!) * strides[d]!;
      rem = Math.floor(rem / target[d]!);
    }
    out[i] = data[src]!;
  }
  return out;
}

export function binary(
  a: ArrayLike<number>, aShape: readonly number[],
  b: ArrayLike<number>, bShape: readonly number[],
  f: (x: number, y: number) => number,
): { data: Float64Array; shape: number[] } {
  const shape = broadcastShape(aShape, bShape);
  const A = broadcastTo(a, aShape, shape);
  const B = broadcastTo(b, bShape, shape);
  return { data: A.map((x, i) => f(x, B[i]!)), shape };
}

export function unary(a: ArrayLike<number>, f: (x: number) => number): Float64Array {
  return Float64Array.from(a, f);
}

/** erf to double precision (Abramowitz–Stegun 7.1.26 is not enough; use a series/continued fraction). */
export function erf(x: number): number {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? NaN : Math.sign(x);
  const ax = Math.abs(x);
  if (ax < 2.5) {
    // Taylor series: erf(x) = 2/√π Σ (-1)^n x^(2n+1) / (n! (2n+1))
    let term = ax;
    let sum = ax;
    for (let n = 1; n < 80; n++) {
      term *= (-ax * ax) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  return Math.sign(x) * (1 - erfc(ax));
}

/** erfc for x ≥ 2.5 by continued fraction (Lentz), accurate to double precision. */
export function erfc(x: number): number {
  if (x === Infinity) return 0;
  if (!(x >= 2.5)) return 1 - erf(x); // NaN and -inf too
  // erfc(x) = exp(-x²)/√π · 1/(x + 1/2/(x + 1/(x + 3/2/(x + ...))))
  let f = x;
  let C = x;
  let D = 0;
  for (let n = 1; n < 200; n++) {
    const an = n / 2;
    D = x + an * D;
    D = 1 / D;
    C = x + an / C;
    const delta = C * D;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.exp(-x * x) / Math.sqrt(Math.PI) / f;
}

/** x·Φ(x). At ±inf it is what PyTorch's x·½(1 + erf(x/√2)) gives: +inf, and −inf·0 = NaN. */
export function gelu(x: number): number {
  return x >= 0 ? 0.5 * x * (1 + erf(x / Math.SQRT2)) : 0.5 * x * erfc(-x / Math.SQRT2);
}

export const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

const GELU_K = Math.sqrt(2 / Math.PI);

/**
 * GELU's tanh approximation, PyTorch's gelu(approximate='tanh'): x/2 · (1 + tanh(u)),
 * u = √(2/π)·(x + 0.044715·x³), as x·sigmoid(2u) (the same number, no cancellation); −inf · 0 = NaN at −inf.
 */
export function geluTanh(x: number): number {
  return x * sigmoid(2 * GELU_K * (x + 0.044715 * x ** 3));
}

/** Its derivative: ½(1 + tanh u) + ½x(1 − tanh²u)·u′ (NaN at ±inf, as PyTorch's backward). */
export function geluTanhGrad(x: number): number {
  const t = Math.tanh(GELU_K * (x + 0.044715 * x ** 3));
  return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * GELU_K * (1 + 3 * 0.044715 * x * x);
}

/** SiLU as PyTorch computes it: x / (1 + exp(−x)). */
export const silu = (x: number): number => x / (1 + Math.exp(-x));

/** SiLU's derivative as PyTorch computes it: s·(1 + x·(1 − s)), s = sigmoid(x). */
export function siluGrad(x: number): number {
  const s = 1 / (1 + Math.exp(-x));
  return s * (1 + x * (1 - s));
}

// ---- PyTorch's semantics where NaN and ±inf meet an op ------------------------------------------
// JavaScript's Math.max and Math.min return NaN when either operand is NaN, like torch.maximum,
// torch.clamp and torch.relu (clamp_min); the formulas below are those ATen evaluates, so their
// float64 values at NaN and ±inf are PyTorch's.

export const relu = (x: number): number => Math.max(x, 0);

export const clamp = (x: number, lo: number, hi: number): number => Math.min(Math.max(x, lo), hi);

/**
 * torch.pow(x, p) for a number p: ATen's special cases (0 → 1, 1 → x, 0.5 → sqrt, 2 → x·x, 3 → x·x·x,
 * −0.5 → 1/sqrt, −1 → 1/x, −2 → 1/(x·x)), else C's pow, which Math.pow equals for these arguments
 * (pow(−inf, 1.5) = +inf, pow(−2, 1.5) = NaN, pow(NaN, p) = NaN).
 */
export function pow(x: number, p: number): number {
  switch (p) {
    case 0: return 1;
    case 1: return x;
    case 0.5: return Math.sqrt(x);
    case 2: return x * x;
    case 3: return x * x * x;
    case -0.5: return 1 / Math.sqrt(x);
    case -1: return 1 / x;
    case -2: return 1 / (x * x);
    default: return Math.pow(x, p);
  }
}

/** relu's backward as ATen's threshold_backward computes it: 0 where relu(x) ≤ 0, else g (NaN passes). */
export const reluGrad = (g: number, x: number): number => (relu(x) <= 0 ? 0 : g);

/** clamp's backward: g where lo ≤ x ≤ hi, else 0 (NaN is outside: 0, as in PyTorch). */
export const clampGrad = (g: number, x: number, lo: number, hi: number): number => (x >= lo && x <= hi ? g : 0);

/** Dropout as PyTorch computes it: x · mask / (1 − p), so a dropped NaN or inf is NaN (inf · 0), not 0. */
export const dropout = (x: number, keep: boolean, p: number): number => x * (keep ? 1 / (1 - p) : 0);
