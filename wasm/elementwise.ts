// Elementwise kernels with the semantics of shaders/elementwise.wgsl: unary and binary float ops
// (OP numbers as there, and in src/ops/pointwise.ts), a binary op with a number as its second
// operand (OP = SCALAR + the op, the number in alpha; int32 comparisons with int_scalar under
// INT_OPERANDS), tril/triu, dropout, the ternary where, operands read through shape and strides
// with broadcasting (stride 0) over RANK dimensions, the output contiguous; and axpy, y += alpha·x.
// CONTIG and PERIODIC mean what they mean there (the shape is then not read). NaN in gives NaN
// out as the WGSL arranges it (except isnan, and x ** 0 = 1); masks are true where nonzero (NaN
// included, −0 not), int32 masks under MASK_INT.
//
// A task is a run of CHUNK output elements. It is walked as segments along the last dimension (or
// up to the next period boundary): where an operand's stride is 1 (or 0, broadcast) four elements
// are loaded (or splatted) at once, otherwise gathered lane by lane (as 32-bit words: int32
// operands keep their bits); every op is written once, on four lanes.

import { claim, f32At, i32At, u32At, u32Of } from './common';
import { unary as U, binary as B, where as W, axpy as X } from './generated/fields';
import { lanes, vexp, vgelu, vgeluGrad, vgeluTanh, vgeluTanhGrad, vsigmoid, vtanh } from './math';

// @ts-ignore: decorator
@inline const CHUNK: i32 = 8192;
// @ts-ignore: decorator
@inline const POW_SCALAR: u32 = 9;
// @ts-ignore: decorator
@inline const ISNAN: u32 = 14;
// @ts-ignore: decorator
@inline const DROPOUT: u32 = 16;
// @ts-ignore: decorator
@inline const TRIL: u32 = 17;
// @ts-ignore: decorator
@inline const TRIU: u32 = 18;
// @ts-ignore: decorator
@inline const SCALAR: u32 = 64;

// @ts-ignore: decorator
@inline function splat(x: f32): v128 {
  return f32x4.splat(x);
}

/** 1.0 where the mask is set, else 0.0. */
// @ts-ignore: decorator
@inline function ones(mask: v128): v128 {
  return v128.and(mask, splat(1));
}

// @ts-ignore: decorator
@inline function isNan(x: v128): v128 {
  return f32x4.ne(x, x);
}

/** Sign of x (±1, 0 for ±0, NaN for NaN). */
function vsign(x: v128): v128 {
  const s = v128.or(v128.and(x, i32x4.splat(0x80000000)), splat(1));
  const zero = f32x4.eq(x, splat(0));
  return v128.bitselect(x, v128.andnot(s, zero), isNan(x));
}

/** A mask element as a boolean lane: nonzero (NaN included, −0 not) is true; int32 masks: any bit. */
// @ts-ignore: decorator
@inline function truthy(m: v128, maskInt: bool): v128 {
  return maskInt ? v128.not(i32x4.eq(m, i32x4.splat(0))) : v128.not(i32x4.eq(v128.and(m, i32x4.splat(0x7fffffff)), i32x4.splat(0)));
}

/**
 * x ** y as PyTorch computes it (pow_ in elementwise.wgsl): its special exponents (0 → 1 even for
 * NaN, 1, 0.5, 2, 3, −0.5, −1, −2), else C's pow — exact at 0 and ±inf, the sign of an odd integer
 * power of a negative x, and NaN for a negative finite x to a fractional power.
 */
function powf(x: f32, y: f32): f32 {
  if (y == 0) return 1;
  if (y == 1) return x;
  if (y == 0.5) return x < 0 ? NaN : Mathf.sqrt(x);
  if (y == 2) return x * x;
  if (y == 3) return x * x * x;
  if (y == -0.5) return x < 0 ? NaN : 1 / Mathf.sqrt(x);
  if (y == -1) return 1 / x;
  if (y == -2) return 1 / (x * x);
  if (isNaN(x) || isNaN(y)) return x + y;
  const ax = Mathf.abs(x);
  let r: f32;
  if (ax == 0) r = y > 0 ? 0 : Infinity;
  else if (ax == Infinity) r = y > 0 ? Infinity : 0;
  else r = Mathf.pow(ax, y);
  if (x < 0) {
    if (y == Mathf.floor(y)) return Mathf.abs(y) < 16777216 && (<i32>y & 1) == 1 ? -r : r;
    return x == -Infinity ? r : NaN;
  }
  return r;
}

function vpow(x: v128, y: v128): v128 {
  let r = splat(powf(f32x4.extract_lane(x, 0), f32x4.extract_lane(y, 0)));
  r = f32x4.replace_lane(r, 1, powf(f32x4.extract_lane(x, 1), f32x4.extract_lane(y, 1)));
  r = f32x4.replace_lane(r, 2, powf(f32x4.extract_lane(x, 2), f32x4.extract_lane(y, 2)));
  return f32x4.replace_lane(r, 3, powf(f32x4.extract_lane(x, 3), f32x4.extract_lane(y, 3)));
}

/** log with IEEE's answers at 0 (−inf), below 0 (NaN) and +inf. */
function logf(x: f32): f32 {
  return Mathf.log(x);
}

/** Unary ops (unary_op in the WGSL); NaN handling is the caller's. */
function unaryOp(op: u32, x: v128, alpha: f32, beta: f32): v128 {
  switch (op) {
    case 0: return f32x4.neg(x);
    case 1: return vexp(x);
    case 2: return lanes(x, logf);
    case 3: return f32x4.sqrt(x);
    case 4: return f32x4.max(x, splat(0));
    case 5: return vgelu(x);
    case 6: return vtanh(x);
    case 7: return vsigmoid(x);
    case 8: return f32x4.add(f32x4.mul(splat(alpha), x), splat(beta));
    case 9: return vpow(x, splat(alpha));
    case 10: return f32x4.div(splat(1), x);
    case 11: return f32x4.abs(x);
    case 12: return f32x4.min(f32x4.max(x, splat(alpha)), splat(beta));
    case 14: return ones(isNan(x));
    case 19: return f32x4.div(x, f32x4.add(splat(1), vexp(f32x4.neg(x))));   // silu, as PyTorch (silu(−inf) is NaN)
    case 20: return vgeluTanh(x);
    default: return x;
  }
}

/** Binary ops (binary_op in the WGSL): *_grad ops take the incoming gradient a and the op's input (or output) b. */
function binaryOp(op: u32, a: v128, b: v128, alpha: f32, maskInt: bool): v128 {
  switch (op) {
    case 0: return f32x4.add(a, b);
    case 1: return f32x4.sub(a, b);
    case 2: return f32x4.mul(a, b);
    case 3: return f32x4.div(a, b);
    case 4: return f32x4.max(a, b);                                              // NaN wins, like torch.maximum
    case 7: return ones(f32x4.eq(a, b));                                         // comparisons: false at NaN
    case 15: return ones(f32x4.ne(a, b));                                        // ne: NaN != anything
    case 16: return ones(f32x4.lt(a, b));
    case 17: return ones(f32x4.le(a, b));
    case 18: return ones(f32x4.gt(a, b));
    case 19: return ones(f32x4.ge(a, b));
    case 20: return v128.bitselect(splat(alpha), a, truthy(b, maskInt));        // masked_fill(a, mask b, alpha)
    case 21: return v128.bitselect(a, splat(alpha), truthy(b, maskInt));        // masked_keep(a, mask b, alpha)
    case 22: {                                                                   // silu_grad(g, x)
      const s = f32x4.div(splat(1), f32x4.add(splat(1), vexp(f32x4.neg(b))));
      return f32x4.mul(f32x4.mul(a, s), f32x4.add(splat(1), f32x4.mul(b, f32x4.sub(splat(1), s))));
    }
    case 8: return v128.and(a, v128.or(f32x4.gt(b, splat(0)), isNan(b)));     // relu_grad(g, x): 0 where relu(x) <= 0
    case 9: return f32x4.mul(a, vgeluGrad(b));                                   // gelu_grad(g, x)
    case 23: return f32x4.mul(a, vgeluTanhGrad(b));                              // gelu_tanh_grad(g, x)
    case 10: return f32x4.mul(a, f32x4.sub(splat(1), f32x4.mul(b, b)));         // tanh_grad(g, y)
    case 11: return f32x4.mul(f32x4.mul(a, b), f32x4.sub(splat(1), b));         // sigmoid_grad(g, y)
    case 13: return f32x4.mul(a, vsign(b));                                      // abs_grad(g, x)
    default: return a;
  }
}

/** int32 comparisons (eq, ne, lt, le, gt, ge as in binaryOp), exact at any magnitude. */
function intCompare(op: u32, a: v128, b: v128): v128 {
  switch (op) {
    case 7: return ones(i32x4.eq(a, b));
    case 15: return ones(i32x4.ne(a, b));
    case 16: return ones(i32x4.lt_s(a, b));
    case 17: return ones(i32x4.le_s(a, b));
    case 18: return ones(i32x4.gt_s(a, b));
    default: return ones(i32x4.ge_s(a, b));
  }
}

/** lowbias32, as hash_u32 in elementwise.wgsl, on four lanes. */
function vhash(x: v128): v128 {
  let h = x;
  h = v128.xor(h, i32x4.shr_u(h, 16));
  h = i32x4.mul(h, i32x4.splat(0x7feb352d));
  h = v128.xor(h, i32x4.shr_u(h, 15));
  h = i32x4.mul(h, i32x4.splat(<i32>0x846ca68b));
  return v128.xor(h, i32x4.shr_u(h, 16));
}

function hash(x: u32): u32 {
  x ^= x >> 16;
  x *= 0x7feb352d;
  x ^= x >> 15;
  x *= 0x846ca68b;
  return x ^ (x >> 16);
}

/** Up to 4 words at p, `stride` elements apart (0 broadcasts); lanes past `count` are 0. */
// @ts-ignore: decorator
@inline function gather(p: usize, stride: i32, count: i32): v128 {
  const s = <usize>stride << 2;
  let v = i32x4.splat(0);
  v = i32x4.replace_lane(v, 0, load<i32>(p));
  if (count > 1) v = i32x4.replace_lane(v, 1, load<i32>(p + s));
  if (count > 2) v = i32x4.replace_lane(v, 2, load<i32>(p + 2 * s));
  if (count > 3) v = i32x4.replace_lane(v, 3, load<i32>(p + 3 * s));
  return v;
}

// @ts-ignore: decorator
@inline function put(p: usize, v: v128, count: i32): void {
  if (count == 4) {
    v128.store(p, v);
    return;
  }
  store<i32>(p, i32x4.extract_lane(v, 0));
  if (count > 1) store<i32>(p, i32x4.extract_lane(v, 1), 4);
  if (count > 2) store<i32>(p, i32x4.extract_lane(v, 2), 8);
}

// @ts-ignore: decorator
@inline function operand(p: usize, stride: i32, count: i32): v128 {
  if (count == 4) {
    if (stride == 1) return v128.load(p);
    if (stride == 0) return v128.load32_splat(p);
  }
  return gather(p, stride, count);
}

/** Element offset of output element i in an operand, walking the output shape (offsets() in the WGSL). */
function offsetOf(args: usize, shape: usize, strides: usize, rank: i32, i: u32): u32 {
  let rem = i;
  let o: u32 = 0;
  for (let d = rank - 1; d >= 0; d--) {
    const size = u32Of(args, shape, d);
    o += (rem % size) * u32Of(args, strides, d);
    rem /= size;
  }
  return o;
}

/** tril/triu on four lanes: keep element g (its flat index in the whole output) where column − row is on the kept side of diag. */
function triangle(x: v128, g: u32, cols: u32, rows: u32, diag: i32, upper: bool): v128 {
  return v128.and(x, i32x4(kept(g, cols, rows, diag, upper), kept(g + 1, cols, rows, diag, upper), kept(g + 2, cols, rows, diag, upper), kept(g + 3, cols, rows, diag, upper)));
}

/** −1 (all bits) when element e of the output is kept by tril/triu, else 0. */
// @ts-ignore: decorator
@inline function kept(e: u32, cols: u32, rows: u32, diag: i32, upper: bool): i32 {
  const above = <i32>(e % cols) - <i32>((e / cols) % rows);
  return (upper ? above >= diag : above <= diag) ? -1 : 0;
}

export function unary(args: usize, scratch: usize): void {
  const n = i32At(args, U.n);
  const contig = u32At(args, U.CONTIG) != 0;
  const rank = contig ? 1 : max(1, i32At(args, U.RANK));
  const op = u32At(args, U.OP);
  const alpha = f32At(args, U.alpha), beta = f32At(args, U.beta);
  const ints = u32At(args, U.INT_OPERANDS) != 0;
  const intScalar = i32x4.splat(i32At(args, U.int_scalar));
  const cols = u32At(args, U.cols), rows = u32At(args, U.rows), diag = i32At(args, U.diag);
  // NaN in, NaN out — except isnan, and x ** 0 = 1 (and the scalar ops, which decide themselves).
  const keepsNan = op < SCALAR && op != ISNAN && !(op == POW_SCALAR && alpha == 0);
  const a = <usize>u32At(args, U.bind.a) + (<usize>u32At(args, U.a_offset) << 2);
  const out = <usize>u32At(args, U.bind.out) + (<usize>u32At(args, U.out_offset) << 2);
  // CONTIG: every element in order, whatever the shape says (as in the WGSL).
  const inner = contig ? n : i32At(args, U.shape + <usize>((rank - 1) << 2));
  const sa = contig ? 1 : i32At(args, U.a_strides + <usize>((rank - 1) << 2));
  const key = hash(u32At(args, U.seed));
  const base = u32At(args, U.base);
  const tasks = (n + CHUNK - 1) / CHUNK;
  for (let t = claim(args); t < tasks; t = claim(args)) {
    const end = min(n, (t + 1) * CHUNK);
    for (let i = t * CHUNK; i < end;) {
      const len = min(inner - i % inner, end - i);
      let pa = a + (<usize>(contig ? <u32>i : offsetOf(args, U.shape, U.a_strides, rank, i)) << 2);
      let po = out + (<usize>i << 2);
      for (let j = 0; j < len; j += 4) {
        const count = min(4, len - j);
        const x = operand(pa, sa, count);
        let y: v128;
        if (op >= SCALAR) {
          y = ints ? intCompare(op - SCALAR, x, intScalar) : binaryOp(op - SCALAR, x, splat(alpha), 0, false);
        } else if (op == TRIL || op == TRIU) {
          y = triangle(x, base + <u32>(i + j), cols, rows, diag, op == TRIU);
        } else if (op == DROPOUT) {
          // alpha = drop probability, beta = 1/(1 − p); x · 0 where dropped (a dropped NaN stays NaN).
          const idx = i32x4.add(i32x4.splat(base + <u32>(i + j)), i32x4(0, 1, 2, 3));
          const r = f32x4.mul(f32x4.convert_i32x4_u(i32x4.shr_u(vhash(v128.xor(idx, i32x4.splat(key))), 8)), splat(1.0 / 16777216.0));
          y = f32x4.mul(x, v128.and(splat(beta), f32x4.ge(r, splat(alpha))));
        } else {
          y = unaryOp(op, x, alpha, beta);
          if (keepsNan) y = v128.bitselect(x, y, isNan(x));
        }
        put(po, y, count);
        pa += <usize>(sa << 4);
        po += 16;
      }
      i += len;
    }
  }
}

export function binary(args: usize, scratch: usize): void {
  const n = i32At(args, B.n);
  const op = u32At(args, B.OP);
  const alpha = f32At(args, B.alpha);
  const maskInt = u32At(args, B.MASK_INT) != 0, ints = u32At(args, B.INT_OPERANDS) != 0;
  const contig = u32At(args, B.CONTIG) != 0, periodic = !contig && u32At(args, B.PERIODIC) != 0;
  const rank = contig || periodic ? 1 : max(1, i32At(args, B.RANK));
  const a = <usize>u32At(args, B.bind.a) + (<usize>u32At(args, B.a_offset) << 2);
  const b = <usize>u32At(args, B.bind.b) + (<usize>u32At(args, B.b_offset) << 2);
  const out = <usize>u32At(args, B.bind.out) + (<usize>u32At(args, B.out_offset) << 2);
  const last = <usize>((rank - 1) << 2);
  // CONTIG: both operands in order. PERIODIC: element i reads i mod each operand's size (a
  // broadcast along leading dimensions), walked in runs up to the next period boundary.
  const aPeriod = max(1, i32At(args, B.a_period)), bPeriod = max(1, i32At(args, B.b_period));
  const inner = contig ? n : periodic ? 0 : i32At(args, B.shape + last);
  const sa = contig || periodic ? 1 : i32At(args, B.a_strides + last), sb = contig || periodic ? 1 : i32At(args, B.b_strides + last);
  const tasks = (n + CHUNK - 1) / CHUNK;
  for (let t = claim(args); t < tasks; t = claim(args)) {
    const end = min(n, (t + 1) * CHUNK);
    for (let i = t * CHUNK; i < end;) {
      let len: i32, oa: u32, ob: u32;
      if (periodic) {
        oa = <u32>(i % aPeriod);
        ob = <u32>(i % bPeriod);
        len = min(min(aPeriod - <i32>oa, bPeriod - <i32>ob), end - i);
      } else {
        len = min(inner - i % inner, end - i);
        oa = contig ? <u32>i : offsetOf(args, B.shape, B.a_strides, rank, i);
        ob = contig ? <u32>i : offsetOf(args, B.shape, B.b_strides, rank, i);
      }
      let pa = a + (<usize>oa << 2);
      let pb = b + (<usize>ob << 2);
      let po = out + (<usize>i << 2);
      for (let j = 0; j < len; j += 4) {
        const count = min(4, len - j);
        const x = operand(pa, sa, count), y = operand(pb, sb, count);
        put(po, ints ? intCompare(op, x, y) : binaryOp(op, x, y, alpha, maskInt), count);
        pa += <usize>(sa << 4);
        pb += <usize>(sb << 4);
        po += 16;
      }
      i += len;
    }
  }
}

/** where(c, a, b): a where the condition c is true (nonzero), else b, all three broadcast (ternary in the WGSL). */
export function where(args: usize, scratch: usize): void {
  const n = i32At(args, W.n);
  const maskInt = u32At(args, W.MASK_INT) != 0;
  const contig = u32At(args, W.CONTIG) != 0;
  const rank = contig ? 1 : max(1, i32At(args, W.RANK));
  const a = <usize>u32At(args, W.bind.a) + (<usize>u32At(args, W.a_offset) << 2);
  const b = <usize>u32At(args, W.bind.b) + (<usize>u32At(args, W.b_offset) << 2);
  const c = <usize>u32At(args, W.bind.c) + (<usize>u32At(args, W.c_offset) << 2);
  const out = <usize>u32At(args, W.bind.out) + (<usize>u32At(args, W.out_offset) << 2);
  const last = <usize>((rank - 1) << 2);
  const inner = contig ? n : i32At(args, W.shape + last);
  const sa = contig ? 1 : i32At(args, W.a_strides + last), sb = contig ? 1 : i32At(args, W.b_strides + last);
  const sc = contig ? 1 : i32At(args, W.c_strides + last);
  const tasks = (n + CHUNK - 1) / CHUNK;
  for (let t = claim(args); t < tasks; t = claim(args)) {
    const end = min(n, (t + 1) * CHUNK);
    for (let i = t * CHUNK; i < end;) {
      const len = min(inner - i % inner, end - i);
      let pa = a + (<usize>(contig ? <u32>i : offsetOf(args, W.shape, W.a_strides, rank, i)) << 2);
      let pb = b + (<usize>(contig ? <u32>i : offsetOf(args, W.shape, W.b_strides, rank, i)) << 2);
      let pc = c + (<usize>(contig ? <u32>i : offsetOf(args, W.shape, W.c_strides, rank, i)) << 2);
      let po = out + (<usize>i << 2);
      for (let j = 0; j < len; j += 4) {
        const count = min(4, len - j);
        const keep = truthy(operand(pc, sc, count), maskInt);
        put(po, v128.bitselect(operand(pa, sa, count), operand(pb, sb, count), keep), count);
        pa += <usize>(sa << 4);
        pb += <usize>(sb << 4);
        pc += <usize>(sc << 4);
        po += 16;
      }
      i += len;
    }
  }
}

/** y[y_offset + i] += alpha · x[x_offset + i]. */
export function axpy(args: usize, scratch: usize): void {
  const n = i32At(args, X.n);
  const alpha = splat(f32At(args, X.alpha));
  const x = <usize>u32At(args, X.bind.x) + (<usize>u32At(args, X.x_offset) << 2);
  const y = <usize>u32At(args, X.bind.y) + (<usize>u32At(args, X.y_offset) << 2);
  const tasks = (n + CHUNK - 1) / CHUNK;
  for (let t = claim(args); t < tasks; t = claim(args)) {
    const end = min(n, (t + 1) * CHUNK);
    let i = t * CHUNK;
    for (; i + 4 <= end; i += 4) {
      const p = y + (<usize>i << 2);
      v128.store(p, f32x4.add(v128.load(p), f32x4.mul(alpha, v128.load(x + (<usize>i << 2)))));
    }
    for (; i < end; i++) {
      const p = y + (<usize>i << 2);
      store<f32>(p, load<f32>(p) + f32x4.extract_lane(alpha, 0) * load<f32>(x + (<usize>i << 2)));
    }
  }
}
