// Vector (f32x4) versions of the transcendental functions the kernels need, with float32
// accuracy (a few ulp), NaN propagated and overflow to ±inf / underflow through denormals to 0.

// @ts-ignore: decorator
@inline function splat(x: f32): v128 {
  return f32x4.splat(x);
}

/** e^x: x = n·ln2 + r with |r| ≤ ln2/2, e^r by Cephes' expf polynomial, 2^n in two halves. */
export function vexp(x: v128): v128 {
  x = f32x4.min(f32x4.max(x, splat(-104.0)), splat(89.0));   // NaN passes through min/max
  const n = f32x4.nearest(f32x4.mul(x, splat(1.44269504088896341)));
  let r = f32x4.sub(x, f32x4.mul(n, splat(0.693359375)));
  r = f32x4.sub(r, f32x4.mul(n, splat(-2.12194440e-4)));
  let p = splat(1.9875691500e-4);
  p = f32x4.add(f32x4.mul(p, r), splat(1.3981999507e-3));
  p = f32x4.add(f32x4.mul(p, r), splat(8.3334519073e-3));
  p = f32x4.add(f32x4.mul(p, r), splat(4.1665795894e-2));
  p = f32x4.add(f32x4.mul(p, r), splat(1.6666665459e-1));
  p = f32x4.add(f32x4.mul(p, r), splat(5.0000001201e-1));
  const y = f32x4.add(f32x4.add(f32x4.mul(f32x4.mul(p, r), r), r), splat(1));
  // 2^n as two factors 2^(n>>1) · 2^(n − n>>1), each a normal float for n in [-150, 129].
  const ni = i32x4.trunc_sat_f32x4_s(n);
  const n1 = i32x4.shr_s(ni, 1);
  const n2 = i32x4.sub(ni, n1);
  const s1 = i32x4.shl(i32x4.add(n1, i32x4.splat(127)), 23);
  const s2 = i32x4.shl(i32x4.add(n2, i32x4.splat(127)), 23);
  return f32x4.mul(f32x4.mul(y, s1), s2);
}

/**
 * tanh(x) = sign(x)·(1 − e)/(1 + e) with e = e^(−2|x|) (no overflow), as in elementwise.wgsl;
 * below |x| = 1/16, where 1 − e cancels, its Taylor series x − x³/3 + 2x⁵/15 − 17x⁷/315.
 */
export function vtanh(x: v128): v128 {
  const ax = f32x4.abs(x);
  const e = vexp(f32x4.mul(ax, splat(-2)));
  let t = f32x4.div(f32x4.sub(splat(1), e), f32x4.add(splat(1), e));
  // Copy x's sign onto t (t ≥ 0; NaN stays NaN).
  t = v128.or(v128.and(x, i32x4.splat(0x80000000)), t);
  const x2 = f32x4.mul(x, x);
  let p = splat(-17.0 / 315.0);
  p = f32x4.add(f32x4.mul(p, x2), splat(2.0 / 15.0));
  p = f32x4.add(f32x4.mul(p, x2), splat(-1.0 / 3.0));
  const series = f32x4.add(x, f32x4.mul(x, f32x4.mul(p, x2)));
  return v128.bitselect(series, t, f32x4.lt(ax, splat(0.0625)));
}

/** 1/(1 + e^−x) without overflow: e = e^−|x|, then e/(1+e) or 1/(1+e) by the sign of x. */
export function vsigmoid(x: v128): v128 {
  const e = vexp(f32x4.neg(f32x4.abs(x)));
  const inv = f32x4.div(splat(1), f32x4.add(splat(1), e));
  return v128.bitselect(inv, f32x4.mul(e, inv), f32x4.ge(x, splat(0)));
}

/** erfc(z), fractional error below 1.2e-7 (Numerical Recipes' erfcc, as in elementwise.wgsl). */
export function verfc(z: v128): v128 {
  const az = f32x4.abs(z);
  const t = f32x4.div(splat(1), f32x4.add(splat(1), f32x4.mul(splat(0.5), az)));
  let p = splat(0.17087277);
  p = f32x4.add(f32x4.mul(p, t), splat(-0.82215223));
  p = f32x4.add(f32x4.mul(p, t), splat(1.48851587));
  p = f32x4.add(f32x4.mul(p, t), splat(-1.13520398));
  p = f32x4.add(f32x4.mul(p, t), splat(0.27886807));
  p = f32x4.add(f32x4.mul(p, t), splat(-0.18628806));
  p = f32x4.add(f32x4.mul(p, t), splat(0.09678418));
  p = f32x4.add(f32x4.mul(p, t), splat(0.37409196));
  p = f32x4.add(f32x4.mul(p, t), splat(1.00002368));
  p = f32x4.add(f32x4.mul(p, t), splat(-1.26551223));
  const r = f32x4.mul(t, vexp(f32x4.sub(p, f32x4.mul(az, az))));
  return v128.bitselect(r, f32x4.sub(splat(2), r), f32x4.ge(z, splat(0)));
}

/** gelu(x) = x/2 · erfc(−x/√2). */
export function vgelu(x: v128): v128 {
  return f32x4.mul(f32x4.mul(splat(0.5), x), verfc(f32x4.mul(x, splat(-0.70710678118654752))));
}

/** d gelu / dx = Φ(x) + x·φ(x). */
export function vgeluGrad(x: v128): v128 {
  const cdf = f32x4.mul(splat(0.5), verfc(f32x4.mul(x, splat(-0.70710678118654752))));
  const pdf = f32x4.mul(splat(0.39894228040143268), vexp(f32x4.mul(splat(-0.5), f32x4.mul(x, x))));
  return f32x4.add(cdf, f32x4.mul(x, pdf));
}

/** sigmoid(2u), u = √(2/π)·(x + 0.044715·x³): GELU's tanh approximation is x times it. */
function geluTanhGate(x: v128): v128 {
  const u = f32x4.mul(splat(0.79788456080286536), f32x4.add(x, f32x4.mul(splat(0.044715), f32x4.mul(x, f32x4.mul(x, x)))));
  return vsigmoid(f32x4.mul(splat(2), u));
}

/** GELU's tanh approximation x/2·(1 + tanh u), as x·sigmoid(2u) (gelu_tanh_ in elementwise.wgsl: no cancellation for negative x, NaN at −inf). */
export function vgeluTanh(x: v128): v128 {
  return f32x4.mul(x, geluTanhGate(x));
}

/** d/dx: s + x·2s(1 − s)·u'(x), s = sigmoid(2u), u' = √(2/π)·(1 + 3·0.044715·x²). */
export function vgeluTanhGrad(x: v128): v128 {
  const s = geluTanhGate(x);
  const du = f32x4.mul(splat(0.79788456080286536), f32x4.add(splat(1), f32x4.mul(splat(3 * 0.044715), f32x4.mul(x, x))));
  return f32x4.add(s, f32x4.mul(f32x4.mul(f32x4.mul(x, splat(2)), f32x4.mul(s, f32x4.sub(splat(1), s))), du));
}

/** Sum of the four lanes. */
// @ts-ignore: decorator
@inline export function hsum(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3);
}

/** Largest lane, NaN if any lane is NaN. */
// @ts-ignore: decorator
@inline export function hmax(v: v128): f32 {
  const m = f32x4.max(v, v128.shuffle<f32>(v, v, 2, 3, 0, 1));
  return max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1));
}

/** A lane-wise scalar function, for the rare ops without a vector form (log, pow). */
// @ts-ignore: decorator
@inline export function lanes(v: v128, f: (x: f32) => f32): v128 {
  let r = f32x4.splat(f(f32x4.extract_lane(v, 0)));
  r = f32x4.replace_lane(r, 1, f(f32x4.extract_lane(v, 1)));
  r = f32x4.replace_lane(r, 2, f(f32x4.extract_lane(v, 2)));
  return f32x4.replace_lane(r, 3, f(f32x4.extract_lane(v, 3)));
}
