// Elementwise kernels with the semantics of shaders/elementwise.wgsl: unary and binary float ops
// (OP numbers as there, and in src/ops/elementwise.ts), operands read through shape and strides
// with broadcasting (stride 0) over RANK dimensions, the output contiguous; and axpy, y += alpha·x.
// CONTIG and PERIODIC mean what they mean there (the shape is then not read).
//
// A task is a run of CHUNK output elements. It is walked as segments along the last dimension (or
// up to the next period boundary): where an operand's stride is 1 (or 0, broadcast) four elements
// are loaded (or splatted) at once, otherwise gathered lane by lane; every op is written once,
// on four lanes.

import { claim, f32At, i32At, u32At, u32Of } from './common';
import { unary as U, binary as B, axpy as X } from './generated/fields';
import { vexp, vgelu, vgeluGrad, vsigmoid, vtanh } from './math';

// @ts-ignore: decorator
@inline const CHUNK: i32 = 8192;
// @ts-ignore: decorator
@inline const DROPOUT: u32 = 16;

// @ts-ignore: decorator
@inline function splat(x: f32): v128 {
  return f32x4.splat(x);
}

/** 1.0 where the mask is set, else 0.0. */
// @ts-ignore: decorator
@inline function ones(mask: v128): v128 {
  return v128.and(mask, splat(1));
}

/** Sign of x (±1, 0 for ±0, NaN for NaN). */
function vsign(x: v128): v128 {
  const s = v128.or(v128.and(x, i32x4.splat(0x80000000)), splat(1));
  const zero = f32x4.eq(x, splat(0));
  const nan = f32x4.ne(x, x);
  return v128.bitselect(x, v128.andnot(s, zero), nan);
}

/** x ** y for any sign of x where y is an integer, like PyTorch (pow_ in elementwise.wgsl). */
function powf(x: f32, y: f32): f32 {
  if (y == 0) return 1;
  if (y == 1) return x;
  if (y == 2) return x * x;
  const r = Mathf.pow(Mathf.abs(x), y);
  if (x < 0) {
    if (y == Mathf.floor(y)) return (<i32>y & 1) == 1 ? -r : r;
    return NaN;
  }
  return r;
}

function vpow(x: v128, y: v128): v128 {
  let r = splat(powf(f32x4.extract_lane(x, 0), f32x4.extract_lane(y, 0)));
  r = f32x4.replace_lane(r, 1, powf(f32x4.extract_lane(x, 1), f32x4.extract_lane(y, 1)));
  r = f32x4.replace_lane(r, 2, powf(f32x4.extract_lane(x, 2), f32x4.extract_lane(y, 2)));
  return f32x4.replace_lane(r, 3, powf(f32x4.extract_lane(x, 3), f32x4.extract_lane(y, 3)));
}

function vlog(x: v128): v128 {
  let r = splat(Mathf.log(f32x4.extract_lane(x, 0)));
  r = f32x4.replace_lane(r, 1, Mathf.log(f32x4.extract_lane(x, 1)));
  r = f32x4.replace_lane(r, 2, Mathf.log(f32x4.extract_lane(x, 2)));
  return f32x4.replace_lane(r, 3, Mathf.log(f32x4.extract_lane(x, 3)));
}

function unaryOp(op: u32, x: v128, alpha: f32, beta: f32): v128 {
  switch (op) {
    case 0: return f32x4.neg(x);
    case 1: return vexp(x);
    case 2: return vlog(x);
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
    case 13: return ones(f32x4.gt(x, splat(alpha)));
    case 14: return ones(f32x4.ne(x, x));
    case 15: return vsign(x);
    default: return x;
  }
}

function binaryOp(op: u32, a: v128, b: v128): v128 {
  switch (op) {
    case 0: return f32x4.add(a, b);
    case 1: return f32x4.sub(a, b);
    case 2: return f32x4.mul(a, b);
    case 3: return f32x4.div(a, b);
    case 4: return f32x4.max(a, b);
    case 5: return f32x4.min(a, b);
    case 6: return vpow(a, b);
    case 7: return ones(f32x4.eq(a, b));
    case 8: return v128.and(a, f32x4.gt(b, splat(0)));                           // relu_grad(g, x)
    case 9: return f32x4.mul(a, vgeluGrad(b));                                   // gelu_grad(g, x)
    case 10: return f32x4.mul(a, f32x4.sub(splat(1), f32x4.mul(b, b)));         // tanh_grad(g, y)
    case 11: return f32x4.mul(f32x4.mul(a, b), f32x4.sub(splat(1), b));         // sigmoid_grad(g, y)
    case 12: return ones(f32x4.gt(a, b));
    case 13: return f32x4.mul(a, vsign(b));                                      // abs_grad(g, x)
    default: return a;
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

/** Up to 4 elements at p, `stride` elements apart (0 broadcasts); lanes past `count` are 0. */
// @ts-ignore: decorator
@inline function gather(p: usize, stride: i32, count: i32): v128 {
  const s = <usize>stride << 2;
  let v = f32x4.splat(0);
  v = f32x4.replace_lane(v, 0, load<f32>(p));
  if (count > 1) v = f32x4.replace_lane(v, 1, load<f32>(p + s));
  if (count > 2) v = f32x4.replace_lane(v, 2, load<f32>(p + 2 * s));
  if (count > 3) v = f32x4.replace_lane(v, 3, load<f32>(p + 3 * s));
  return v;
}

// @ts-ignore: decorator
@inline function put(p: usize, v: v128, count: i32): void {
  if (count == 4) {
    v128.store(p, v);
    return;
  }
  store<f32>(p, f32x4.extract_lane(v, 0));
  if (count > 1) store<f32>(p, f32x4.extract_lane(v, 1), 4);
  if (count > 2) store<f32>(p, f32x4.extract_lane(v, 2), 8);
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

export function unary(args: usize, scratch: usize): void {
  const n = i32At(args, U.n);
  const contig = u32At(args, U.CONTIG) != 0;
  const rank = contig ? 1 : max(1, i32At(args, U.RANK));
  const op = u32At(args, U.OP);
  const alpha = f32At(args, U.alpha), beta = f32At(args, U.beta);
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
        if (op == DROPOUT) {
          // alpha = drop probability, beta = 1/(1 − p).
          const idx = i32x4.add(i32x4.splat(base + <u32>(i + j)), i32x4(0, 1, 2, 3));
          const r = f32x4.mul(f32x4.convert_i32x4_u(i32x4.shr_u(vhash(v128.xor(idx, i32x4.splat(key))), 8)), splat(1.0 / 16777216.0));
          y = v128.and(f32x4.mul(x, splat(beta)), f32x4.ge(r, splat(alpha)));
        } else {
          y = unaryOp(op, x, alpha, beta);
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
        put(po, binaryOp(op, operand(pa, sa, count), operand(pb, sb, count)), count);
        pa += <usize>(sa << 4);
        pb += <usize>(sb << 4);
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
