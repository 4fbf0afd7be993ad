// Fused attention, forward and backward, with the semantics of shaders/attention.wgsl and
// attention_backward.wgsl (see them and src/ops/attention.ts): q [B, H, Tq, Dh], k and v
// [B, H, Tk, Dh], read through their b, h, t strides (the head dimension contiguous), an additive
// mask broadcast to [B, H, Tq, Tk], causal masking (key j hidden from query i when j > i + shift),
// dropout on the weights by the same hash of (seed, b, h, i, j), and a dispatch covering a block
// of B·H (b_base, h_base place it in the whole tensor).
//   attention_forward {q, k, v, mask, o, lse}: an online softmax over blocks of keys; each row's
//     log-sum-exp saved.
//   attention_row_stats {o, lse, dout, stats}: stats[i] = (lse[i], Σ_d dO[i, d]·O[i, d]).
//   attention_grad_q {…, stats, dout, dq}: dQ = scale · dS·k, a task owning a block of query rows.
//   attention_grad_kv {…, dk, dv} and attention_grad_kv_packed {…, dkv}: dK = scale · dSᵀ·q and
//     dV = (P ∘ Z)ᵀ·dO, a task owning a block of keys.
// with P = exp(scale·q·kᵀ + bias − lse), dP = dO·vᵀ (times the dropout factors Z) and
// dS = P ∘ (dP − D). Each gradient element is summed by one task in key (or query) order:
// deterministic.
//
// Inside a task everything is small matrix products on blocks packed into the thread's scratch
// (rows padded to 4, the head dimension to 8 with zeros), by one 4×8 register-blocked
// micro-kernel (mm below).

import { claim, f32At, i32At, u32At, u32Of, madd } from './common';
import {
  attention_forward as F,
  attention_row_stats as R,
  attention_grad_q as Q,
  attention_grad_kv as KV,
  attention_grad_kv_packed as KP,
} from './generated/fields';
import { hsum, vexp } from './math';

/** Query rows per task (forward, dQ), keys per block streamed against them. */
// @ts-ignore: decorator
@inline const ROWS: i32 = 32;
// @ts-ignore: decorator
@inline const KEYS: i32 = 64;
/** Keys per task of dK/dV, query rows per block streamed against them. */
// @ts-ignore: decorator
@inline const OWN_KEYS: i32 = 32;
// @ts-ignore: decorator
@inline const QUERIES: i32 = 64;
/** The largest head dimension (src/ops/attention.ts MAX_HEAD_DIM). */
// @ts-ignore: decorator
@inline const MAX_DH: i32 = 256;

// ---- small matrix products ---------------------------------------------------------------------

/**
 * C[M×N] += A[M×K]·B[K×N], all row-major with leading dimensions in elements; M a multiple of 4,
 * N of 8. A 4×8 block of C stays in eight registers while k runs.
 */
function mm(a: usize, lda: i32, b: usize, ldb: i32, c: usize, ldc: i32, M: i32, N: i32, K: i32): void {
  for (let i = 0; i < M; i += 4) {
    const a0 = a + (<usize>(i * lda) << 2), a1 = a0 + (<usize>lda << 2), a2 = a1 + (<usize>lda << 2), a3 = a2 + (<usize>lda << 2);
    const c0 = c + (<usize>(i * ldc) << 2), c1 = c0 + (<usize>ldc << 2), c2 = c1 + (<usize>ldc << 2), c3 = c2 + (<usize>ldc << 2);
    for (let j = 0; j < N; j += 8) {
      const o = <usize>j << 2;
      let x0 = v128.load(c0 + o), y0 = v128.load(c0 + o, 16);
      let x1 = v128.load(c1 + o), y1 = v128.load(c1 + o, 16);
      let x2 = v128.load(c2 + o), y2 = v128.load(c2 + o, 16);
      let x3 = v128.load(c3 + o), y3 = v128.load(c3 + o, 16);
      let bp = b + o;
      for (let k = 0; k < K; k++) {
        const bx = v128.load(bp), by = v128.load(bp, 16);
        const kk = <usize>k << 2;
        const s0 = v128.load32_splat(a0 + kk), s1 = v128.load32_splat(a1 + kk);
        const s2 = v128.load32_splat(a2 + kk), s3 = v128.load32_splat(a3 + kk);
        x0 = madd(s0, bx, x0); y0 = madd(s0, by, y0);
        x1 = madd(s1, bx, x1); y1 = madd(s1, by, y1);
        x2 = madd(s2, bx, x2); y2 = madd(s2, by, y2);
        x3 = madd(s3, bx, x3); y3 = madd(s3, by, y3);
        bp += <usize>ldb << 2;
      }
      v128.store(c0 + o, x0); v128.store(c0 + o, y0, 16);
      v128.store(c1 + o, x1); v128.store(c1 + o, y1, 16);
      v128.store(c2 + o, x2); v128.store(c2 + o, y2, 16);
      v128.store(c3 + o, x3); v128.store(c3 + o, y3, 16);
    }
  }
}

function zero(p: usize, n: i32): void {
  memory.fill(p, 0, <usize>n << 2);
}

// @ts-ignore: decorator
@inline function roundUp(n: i32, m: i32): i32 {
  return (n + m - 1) / m * m;
}

/**
 * Rows t0 … t0 + n − 1 of an operand (element offset `base` of its (b, h), row stride `rs`), the
 * first `dh` values of each, times `f`, into `dst` [pad rows × ld] (rows from `count` on, and the
 * columns past dh, are zeros).
 */
function packRows(dst: usize, ld: i32, src: usize, base: u32, rs: u32, t0: i32, n: i32, pad: i32, count: i32, dh: i32, f: f32): void {
  const fv = f32x4.splat(f);
  for (let r = 0; r < pad; r++) {
    const d = dst + (<usize>(r * ld) << 2);
    zero(d, ld);
    const t = t0 + r;
    if (r >= n || t >= count) continue;
    const s = src + (<usize>(base + <u32>t * rs) << 2);
    let c = 0;
    for (; c + 4 <= dh; c += 4) v128.store(d + (<usize>c << 2), f32x4.mul(v128.load(s + (<usize>c << 2)), fv));
    for (; c < dh; c++) store<f32>(d + (<usize>c << 2), load<f32>(s + (<usize>c << 2)) * f);
  }
}

/** The same rows transposed: dst [dhp × ld], column r holding row t0 + r (zeros past `count` and n). */
function packColumns(dst: usize, ld: i32, dhp: i32, src: usize, base: u32, rs: u32, t0: i32, n: i32, count: i32, dh: i32, f: f32): void {
  zero(dst, dhp * ld);
  for (let r = 0; r < n; r++) {
    const t = t0 + r;
    if (t >= count) break;
    const s = src + (<usize>(base + <u32>t * rs) << 2);
    for (let c = 0; c < dh; c++) store<f32>(dst + (<usize>(c * ld + r) << 2), load<f32>(s + (<usize>c << 2)) * f);
  }
}

// ---- where a task works, the mask, dropout -------------------------------------------------

/** Where a task works. (Kernels allocate nothing: this and Args live at the start of the thread's scratch.) */
class Head {
  b: u32;
  h: u32;
  /** (b_base + b)·heads_total + h_base + h: the dropout hash's head index. */
  global: u32;
}

/** Bytes at the start of a thread's scratch that hold Args and Head; the work areas follow. */
// @ts-ignore: decorator
@inline const STATE_BYTES: usize = 256;

function hash(x: u32): u32 {
  x ^= x >> 16;
  x *= 0x7feb352d;
  x ^= x >> 15;
  x *= 0x846ca68b;
  return x ^ (x >> 16);
}

/** Dropout's factor for key j of a row with key `rowKey`: 0 (dropped) or 1/(1 − drop). */
// @ts-ignore: decorator
@inline function dropFactor(rowKey: u32, j: u32, drop: f32): f32 {
  const r = <f32>(hash(rowKey ^ j) >> 8) * (1.0 / 16777216.0);
  return r >= drop ? <f32>1 / (<f32>1 - drop) : 0;
}

/** The arguments every attention kernel reads, at its own field offsets. */
class Args {
  heads: u32; tq: i32; tk: i32; dh: i32; bh: i32;
  causal: bool; shift: i32; hasMask: bool; scale: f32; drop: f32; seedKey: u32;
  bBase: u32; hBase: u32; headsTotal: u32;
  mask: usize; maskStrides: usize; args: usize;

  init(args: usize, heads: usize, tq: usize, tk: usize, dh: usize, groups: usize, workgroups: usize, causal: usize, shift: usize,
    hasMask: usize, scale: usize, drop: usize, seed: usize, bBase: usize, hBase: usize, headsTotal: usize, mask: usize, maskOffset: usize, maskStrides: usize): Args {
    this.args = args;
    this.heads = u32At(args, heads);
    this.tq = i32At(args, tq);
    this.tk = i32At(args, tk);
    this.dh = i32At(args, dh);
    this.bh = i32At(args, workgroups) / max(1, i32At(args, groups));
    this.causal = u32At(args, causal) != 0;
    this.shift = i32At(args, shift);
    this.hasMask = u32At(args, hasMask) != 0;
    this.scale = f32At(args, scale);
    this.drop = f32At(args, drop);
    this.seedKey = hash(u32At(args, seed));
    this.bBase = u32At(args, bBase);
    this.hBase = u32At(args, hBase);
    this.headsTotal = u32At(args, headsTotal);
    this.mask = mask == 0 ? 0 : <usize>u32At(args, mask) + (<usize>u32At(args, maskOffset) << 2);
    this.maskStrides = maskStrides;
    return this;
  }

  head(bh: i32, out: Head): void {
    out.b = <u32>bh / this.heads;
    out.h = <u32>bh % this.heads;
    out.global = (this.bBase + out.b) * this.headsTotal + this.hBase + out.h;
  }

  /** Element offset of (b, h) in an operand with strides at `strides` (b, h, t). */
  base(offsetField: usize, strides: usize, hd: Head): u32 {
    return u32At(this.args, offsetField) + hd.b * u32Of(this.args, strides, 0) + hd.h * u32Of(this.args, strides, 1);
  }

  rowKey(hd: Head, i: i32): u32 {
    return hash(this.seedKey ^ (hd.global * <u32>this.tq + <u32>i));
  }

  /**
   * The bias of query i for keys j0 … j0 + n − 1 into `out`: the mask's values, or −inf for keys
   * past tk or (causal) past i + shift.
   */
  biasRow(hd: Head, i: i32, j0: i32, n: i32, out: usize): void {
    const limit = this.causal ? min(this.tk, i + this.shift + 1) : this.tk;
    const a = this.args, s = this.maskStrides;
    const row = this.hasMask ? this.mask + (<usize>(hd.b * u32Of(a, s, 0) + hd.h * u32Of(a, s, 1) + <u32>min(i, this.tq - 1) * u32Of(a, s, 2)) << 2) : 0;
    const sj = this.hasMask ? u32Of(a, s, 3) : 0;
    for (let j = 0; j < n; j++) {
      const key = j0 + j;
      store<f32>(out + (<usize>j << 2), key >= limit ? -Infinity : this.hasMask ? load<f32>(row + (<usize>(<u32>key * sj) << 2)) : 0);
    }
  }
}

/** e^x on four lanes, exactly 0 where x is −inf (a masked key's weight). */
// @ts-ignore: decorator
@inline function expOrZero(x: v128): v128 {
  return v128.andnot(vexp(x), f32x4.eq(x, f32x4.splat(-Infinity)));
}

// ---- forward -----------------------------------------------------------------------------

export function attention_forward(args: usize, scratch: usize): void {
  const A = changetype<Args>(scratch).init(args, F.heads, F.tq, F.tk, F.dh, F.groups, F.workgroups, F.causal, F.shift, F.has_mask, F.scale, F.drop, F.seed,
    F.b_base, F.h_base, F.heads_total, F.bind.mask, F.mask_offset, F.mask_strides);
  const work = scratch + STATE_BYTES;
  const q = <usize>u32At(args, F.bind.q), k = <usize>u32At(args, F.bind.k), v = <usize>u32At(args, F.bind.v);
  const o = <usize>u32At(args, F.bind.o);
  const lse = <usize>u32At(args, F.bind.lse) + (<usize>u32At(args, F.lse_offset) << 2);
  const dh = A.dh, dhp = roundUp(max(dh, 1), 8);
  // Scratch: scaled q rows, k columns, v rows, the scores, the output accumulator; m, l per row.
  const qs = work, kt = qs + (<usize>(ROWS * dhp) << 2), vs = kt + (<usize>(dhp * KEYS) << 2);
  const sc = vs + (<usize>(KEYS * dhp) << 2), acc = sc + (<usize>(ROWS * KEYS) << 2);
  const ms = acc + (<usize>(ROWS * dhp) << 2), ls = ms + (<usize>ROWS << 2), bias = ls + (<usize>ROWS << 2);
  const blocks = (A.tq + ROWS - 1) / ROWS;
  const tasks = A.bh * blocks;
  const hd = changetype<Head>(scratch + 128);
  for (let t = claim(args); t < tasks; t = claim(args)) {
    A.head(t / blocks, hd);
    const first = (t % blocks) * ROWS;
    const rows = min(ROWS, A.tq - first);
    const qb = A.base(F.q_offset, F.q_strides, hd), kb = A.base(F.k_offset, F.k_strides, hd), vb = A.base(F.v_offset, F.v_strides, hd);
    packRows(qs, dhp, q, qb, u32Of(args, F.q_strides, 2), first, rows, ROWS, A.tq, dh, A.scale);
    zero(acc, ROWS * dhp);
    for (let r = 0; r < ROWS; r++) {
      store<f32>(ms + (<usize>r << 2), -Infinity);
      store<f32>(ls + (<usize>r << 2), 0);
    }
    // Keys this block needs: all, or (causal) up to its last row's diagonal.
    let kend = A.tk;
    if (A.causal) kend = min(kend, first + rows + A.shift);
    for (let j0 = 0; j0 < kend; j0 += KEYS) {
      const nk = min(KEYS, A.tk - j0);
      packColumns(kt, KEYS, dhp, k, kb, u32Of(args, F.k_strides, 2), j0, nk, A.tk, dh, 1);
      packRows(vs, dhp, v, vb, u32Of(args, F.v_strides, 2), j0, nk, KEYS, A.tk, dh, 1);
      zero(sc, ROWS * KEYS);
      mm(qs, dhp, kt, KEYS, sc, KEYS, ROWS, KEYS, dhp);
      for (let r = 0; r < rows; r++) {
        const i = first + r;
        const row = sc + (<usize>(r * KEYS) << 2);
        A.biasRow(hd, i, j0, KEYS, bias);
        const mOld = load<f32>(ms + (<usize>r << 2));
        let mv = f32x4.splat(mOld);
        for (let j = 0; j < KEYS; j += 4) {
          const s = f32x4.add(v128.load(row + (<usize>j << 2)), v128.load(bias + (<usize>j << 2)));
          v128.store(row + (<usize>j << 2), s);
          mv = f32x4.max(mv, s);   // a max that keeps NaN
        }
        const mx = max(max(f32x4.extract_lane(mv, 0), f32x4.extract_lane(mv, 1)), max(f32x4.extract_lane(mv, 2), f32x4.extract_lane(mv, 3)));
        // A row with no key yet (all −inf) subtracts 0: its weights stay 0 and its sum 0.
        const ref = mx == -Infinity ? <f32>0 : mx;
        const alpha = mOld == -Infinity && ref == 0 ? <f32>1 : Mathf.exp(mOld - ref);
        const refv = f32x4.splat(ref);
        let sum = f32x4.splat(0);
        for (let j = 0; j < KEYS; j += 4) {
          const p = expOrZero(f32x4.sub(v128.load(row + (<usize>j << 2)), refv));
          v128.store(row + (<usize>j << 2), p);
          sum = f32x4.add(sum, p);
        }
        store<f32>(ls + (<usize>r << 2), load<f32>(ls + (<usize>r << 2)) * alpha + hsum(sum));
        store<f32>(ms + (<usize>r << 2), mx);
        if (A.drop > 0) {
          const key = A.rowKey(hd, i);
          for (let j = 0; j < nk; j++) store<f32>(row + (<usize>j << 2), load<f32>(row + (<usize>j << 2)) * dropFactor(key, <u32>(j0 + j), A.drop));
        }
        const av = f32x4.splat(alpha);
        const a = acc + (<usize>(r * dhp) << 2);
        for (let c = 0; c < dhp; c += 4) v128.store(a + (<usize>c << 2), f32x4.mul(v128.load(a + (<usize>c << 2)), av));
      }
      mm(sc, KEYS, vs, dhp, acc, dhp, ROWS, dhp, KEYS);
    }
    // A row whose keys are all masked has l = 0: its output is NaN, as softmax over −inf gives.
    const ob = A.base(F.o_offset, F.o_strides, hd), ors = u32Of(args, F.o_strides, 2);
    for (let r = 0; r < rows; r++) {
      const l = load<f32>(ls + (<usize>r << 2));
      const inv = <f32>1 / l;
      const a = acc + (<usize>(r * dhp) << 2);
      const dst = o + (<usize>(ob + <u32>(first + r) * ors) << 2);
      for (let c = 0; c < dh; c++) store<f32>(dst + (<usize>c << 2), load<f32>(a + (<usize>c << 2)) * inv);
      store<f32>(lse + (<usize>((hd.b * A.heads + hd.h) * <u32>A.tq + <u32>(first + r)) << 2), load<f32>(ms + (<usize>r << 2)) + Mathf.log(l));
    }
  }
}

// ---- backward ----------------------------------------------------------------------------

export function attention_row_stats(args: usize, scratch: usize): void {
  const rows = i32At(args, R.rows), heads = u32At(args, R.heads), tq = u32At(args, R.tq), dh = i32At(args, R.dh);
  const o = <usize>u32At(args, R.bind.o), dout = <usize>u32At(args, R.bind.dout);
  const lse = <usize>u32At(args, R.bind.lse) + (<usize>u32At(args, R.lse_offset) << 2);
  const stats = <usize>u32At(args, R.bind.stats) + (<usize>u32At(args, R.stats_offset) << 2);
  const CHUNK = 256;
  const tasks = (rows + CHUNK - 1) / CHUNK;
  for (let t = claim(args); t < tasks; t = claim(args)) {
    for (let g = t * CHUNK; g < min(rows, (t + 1) * CHUNK); g++) {
      const b = <u32>g / (heads * tq), h = (<u32>g / tq) % heads, i = <u32>g % tq;
      const ob = u32At(args, R.o_offset) + b * u32Of(args, R.o_strides, 0) + h * u32Of(args, R.o_strides, 1) + i * u32Of(args, R.o_strides, 2);
      const db = u32At(args, R.dout_offset) + b * u32Of(args, R.dout_strides, 0) + h * u32Of(args, R.dout_strides, 1) + i * u32Of(args, R.dout_strides, 2);
      let acc = f32x4.splat(0);
      let c = 0;
      for (; c + 4 <= dh; c += 4) acc = madd(v128.load(dout + (<usize>(db + <u32>c) << 2)), v128.load(o + (<usize>(ob + <u32>c) << 2)), acc);
      let d = hsum(acc);
      for (; c < dh; c++) d += load<f32>(dout + (<usize>(db + <u32>c) << 2)) * load<f32>(o + (<usize>(ob + <u32>c) << 2));
      store<f32>(stats + (<usize>(2 * g) << 2), load<f32>(lse + (<usize>g << 2)));
      store<f32>(stats + (<usize>(2 * g + 1) << 2), d);
    }
  }
}

/** (lse, D) of query row i of a head (clamped into the rows). */
// @ts-ignore: decorator
@inline function stat(stats: usize, A: Args, hd: Head, i: i32, which: i32): f32 {
  const g = (hd.b * A.heads + hd.h) * <u32>A.tq + <u32>min(i, A.tq - 1);
  return load<f32>(stats + (<usize>(2 * g + <u32>which) << 2));
}

export function attention_grad_q(args: usize, scratch: usize): void {
  const A = changetype<Args>(scratch).init(args, Q.heads, Q.tq, Q.tk, Q.dh, Q.groups, Q.workgroups, Q.causal, Q.shift, Q.has_mask, Q.scale, Q.drop, Q.seed,
    Q.b_base, Q.h_base, Q.heads_total, Q.bind.mask, Q.mask_offset, Q.mask_strides);
  const work = scratch + STATE_BYTES;
  const q = <usize>u32At(args, Q.bind.q), k = <usize>u32At(args, Q.bind.k), v = <usize>u32At(args, Q.bind.v);
  const dout = <usize>u32At(args, Q.bind.dout), dq = <usize>u32At(args, Q.bind.dq);
  const stats = <usize>u32At(args, Q.bind.stats) + (<usize>u32At(args, Q.stats_offset) << 2);
  const dh = A.dh, dhp = roundUp(max(dh, 1), 8);
  // Scratch: scaled q rows, dO rows, k columns, v columns, k rows, scores, dP, the dQ accumulator.
  const qs = work, ds = qs + (<usize>(ROWS * dhp) << 2), kt = ds + (<usize>(ROWS * dhp) << 2);
  const vt = kt + (<usize>(dhp * KEYS) << 2), kr = vt + (<usize>(dhp * KEYS) << 2), sc = kr + (<usize>(KEYS * dhp) << 2);
  const dp = sc + (<usize>(ROWS * KEYS) << 2), acc = dp + (<usize>(ROWS * KEYS) << 2), bias = acc + (<usize>(ROWS * dhp) << 2);
  const blocks = (A.tq + ROWS - 1) / ROWS;
  const tasks = A.bh * blocks;
  const hd = changetype<Head>(scratch + 128);
  for (let t = claim(args); t < tasks; t = claim(args)) {
    A.head(t / blocks, hd);
    const first = (t % blocks) * ROWS;
    const rows = min(ROWS, A.tq - first);
    const kb = A.base(Q.k_offset, Q.k_strides, hd), vb = A.base(Q.v_offset, Q.v_strides, hd);
    const krs = u32Of(args, Q.k_strides, 2), vrs = u32Of(args, Q.v_strides, 2);
    packRows(qs, dhp, q, A.base(Q.q_offset, Q.q_strides, hd), u32Of(args, Q.q_strides, 2), first, rows, ROWS, A.tq, dh, A.scale);
    packRows(ds, dhp, dout, A.base(Q.dout_offset, Q.dout_strides, hd), u32Of(args, Q.dout_strides, 2), first, rows, ROWS, A.tq, dh, 1);
    zero(acc, ROWS * dhp);
    let kend = A.tk;
    if (A.causal) kend = min(kend, first + rows + A.shift);
    for (let j0 = 0; j0 < kend; j0 += KEYS) {
      const nk = min(KEYS, A.tk - j0);
      packColumns(kt, KEYS, dhp, k, kb, krs, j0, nk, A.tk, dh, 1);
      packColumns(vt, KEYS, dhp, v, vb, vrs, j0, nk, A.tk, dh, 1);
      packRows(kr, dhp, k, kb, krs, j0, nk, KEYS, A.tk, dh, 1);
      zero(sc, ROWS * KEYS);
      zero(dp, ROWS * KEYS);
      mm(qs, dhp, kt, KEYS, sc, KEYS, ROWS, KEYS, dhp);
      mm(ds, dhp, vt, KEYS, dp, KEYS, ROWS, KEYS, dhp);
      // dS = P ∘ (dP·Z − D), into the scores' place (rows past tq weigh nothing).
      for (let r = 0; r < ROWS; r++) {
        const i = first + r;
        const row = sc + (<usize>(r * KEYS) << 2), prow = dp + (<usize>(r * KEYS) << 2);
        if (r >= rows) {
          zero(row, KEYS);
          continue;
        }
        const l = f32x4.splat(stat(stats, A, hd, i, 0)), d = f32x4.splat(stat(stats, A, hd, i, 1));
        A.biasRow(hd, i, j0, KEYS, bias);
        if (A.drop > 0) {
          const key = A.rowKey(hd, i);
          for (let j = 0; j < nk; j++) store<f32>(prow + (<usize>j << 2), load<f32>(prow + (<usize>j << 2)) * dropFactor(key, <u32>(j0 + j), A.drop));
        }
        for (let j = 0; j < KEYS; j += 4) {
          const o = <usize>j << 2;
          const p = expOrZero(f32x4.sub(f32x4.add(v128.load(row + o), v128.load(bias + o)), l));
          v128.store(row + o, f32x4.mul(p, f32x4.sub(v128.load(prow + o), d)));
        }
      }
      mm(sc, KEYS, kr, dhp, acc, dhp, ROWS, dhp, KEYS);
    }
    const qb = A.base(Q.dq_offset, Q.dq_strides, hd), qrs = u32Of(args, Q.dq_strides, 2);
    for (let r = 0; r < rows; r++) {
      const a = acc + (<usize>(r * dhp) << 2);
      const dst = dq + (<usize>(qb + <u32>(first + r) * qrs) << 2);
      for (let c = 0; c < dh; c++) store<f32>(dst + (<usize>c << 2), load<f32>(a + (<usize>c << 2)) * A.scale);
    }
  }
}

/** dK and dV of a block of keys into the scratch accumulators dka, dva [OWN_KEYS × dhp]. */
function keyGrads(args: usize, A: Args, hd: Head, first: i32, nkeys: i32, scratch: usize, dhp: i32,
  q: usize, qb: u32, qrs: u32, k: usize, kb: u32, krs: u32, v: usize, vb: u32, vrs: u32, dout: usize, db: u32, drs: u32, stats: usize): void {
  const dh = A.dh;
  // Scratch: scaled k columns, v columns, q rows, dO rows, scores (then P·Z, transposed), dP (then dS, transposed), accumulators.
  const kt = scratch, vt = kt + (<usize>(dhp * OWN_KEYS) << 2), qs = vt + (<usize>(dhp * OWN_KEYS) << 2);
  const ds = qs + (<usize>(QUERIES * dhp) << 2), sc = ds + (<usize>(QUERIES * dhp) << 2), dp = sc + (<usize>(QUERIES * OWN_KEYS) << 2);
  const pwt = dp + (<usize>(QUERIES * OWN_KEYS) << 2), dst = pwt + (<usize>(OWN_KEYS * QUERIES) << 2);
  const dka = dst + (<usize>(OWN_KEYS * QUERIES) << 2), dva = dka + (<usize>(OWN_KEYS * dhp) << 2);
  const bias = dva + (<usize>(OWN_KEYS * dhp) << 2);
  packColumns(kt, OWN_KEYS, dhp, k, kb, krs, first, nkeys, A.tk, dh, A.scale);
  packColumns(vt, OWN_KEYS, dhp, v, vb, vrs, first, nkeys, A.tk, dh, 1);
  zero(dka, OWN_KEYS * dhp);
  zero(dva, OWN_KEYS * dhp);
  // Queries that see these keys: all, or (causal) from the first key's diagonal on.
  const istart = A.causal ? max(first, A.shift) - A.shift : 0;
  for (let i0 = istart; i0 < A.tq; i0 += QUERIES) {
    const nq = min(QUERIES, A.tq - i0);
    packRows(qs, dhp, q, qb, qrs, i0, nq, QUERIES, A.tq, dh, 1);
    packRows(ds, dhp, dout, db, drs, i0, nq, QUERIES, A.tq, dh, 1);
    zero(sc, QUERIES * OWN_KEYS);
    zero(dp, QUERIES * OWN_KEYS);
    mm(qs, dhp, kt, OWN_KEYS, sc, OWN_KEYS, QUERIES, OWN_KEYS, dhp);
    mm(ds, dhp, vt, OWN_KEYS, dp, OWN_KEYS, QUERIES, OWN_KEYS, dhp);
    // P·Z and dS, transposed (keys × queries); queries past tq weigh nothing.
    for (let r = 0; r < QUERIES; r++) {
      const i = i0 + r;
      const srow = sc + (<usize>(r * OWN_KEYS) << 2), prow = dp + (<usize>(r * OWN_KEYS) << 2);
      if (r >= nq) {
        for (let j = 0; j < OWN_KEYS; j++) {
          store<f32>(pwt + (<usize>(j * QUERIES + r) << 2), 0);
          store<f32>(dst + (<usize>(j * QUERIES + r) << 2), 0);
        }
        continue;
      }
      const l = f32x4.splat(stat(stats, A, hd, i, 0)), d = stat(stats, A, hd, i, 1);
      A.biasRow(hd, i, first, OWN_KEYS, bias);
      // The weights w, in the scores' place.
      for (let j = 0; j < OWN_KEYS; j += 4) {
        const o = <usize>j << 2;
        v128.store(srow + o, expOrZero(f32x4.sub(f32x4.add(v128.load(srow + o), v128.load(bias + o)), l)));
      }
      const key = A.drop > 0 ? A.rowKey(hd, i) : 0;
      for (let j = 0; j < OWN_KEYS; j++) {
        const w = load<f32>(srow + (<usize>j << 2));
        const z: f32 = A.drop > 0 && j < nkeys ? dropFactor(key, <u32>(first + j), A.drop) : 1;
        store<f32>(pwt + (<usize>(j * QUERIES + r) << 2), w * z);
        store<f32>(dst + (<usize>(j * QUERIES + r) << 2), w * (load<f32>(prow + (<usize>j << 2)) * z - d));
      }
    }
    mm(pwt, QUERIES, ds, dhp, dva, dhp, OWN_KEYS, dhp, QUERIES);
    mm(dst, QUERIES, qs, dhp, dka, dhp, OWN_KEYS, dhp, QUERIES);
  }
}

/** Where keyGrads leaves dK (times 1/scale) and dV in the scratch. */
function gradsAt(scratch: usize, dhp: i32): usize {
  return scratch + (<usize>(2 * dhp * OWN_KEYS + 2 * QUERIES * dhp + 2 * QUERIES * OWN_KEYS + 2 * OWN_KEYS * QUERIES) << 2);
}

export function attention_grad_kv(args: usize, scratch: usize): void {
  const A = changetype<Args>(scratch).init(args, KV.heads, KV.tq, KV.tk, KV.dh, KV.groups, KV.workgroups, KV.causal, KV.shift, KV.has_mask, KV.scale, KV.drop, KV.seed,
    KV.b_base, KV.h_base, KV.heads_total, KV.bind.mask, KV.mask_offset, KV.mask_strides);
  const work = scratch + STATE_BYTES;
  const q = <usize>u32At(args, KV.bind.q), k = <usize>u32At(args, KV.bind.k), v = <usize>u32At(args, KV.bind.v), dout = <usize>u32At(args, KV.bind.dout);
  const dk = <usize>u32At(args, KV.bind.dk), dv = <usize>u32At(args, KV.bind.dv);
  const stats = <usize>u32At(args, KV.bind.stats) + (<usize>u32At(args, KV.stats_offset) << 2);
  const dh = A.dh, dhp = roundUp(max(dh, 1), 8);
  const blocks = (A.tk + OWN_KEYS - 1) / OWN_KEYS;
  const tasks = A.bh * blocks;
  const hd = changetype<Head>(scratch + 128);
  for (let t = claim(args); t < tasks; t = claim(args)) {
    A.head(t / blocks, hd);
    const first = (t % blocks) * OWN_KEYS;
    const n = min(OWN_KEYS, A.tk - first);
    keyGrads(args, A, hd, first, n, work, dhp,
      q, A.base(KV.q_offset, KV.q_strides, hd), u32Of(args, KV.q_strides, 2),
      k, A.base(KV.k_offset, KV.k_strides, hd), u32Of(args, KV.k_strides, 2),
      v, A.base(KV.v_offset, KV.v_strides, hd), u32Of(args, KV.v_strides, 2),
      dout, A.base(KV.dout_offset, KV.dout_strides, hd), u32Of(args, KV.dout_strides, 2), stats);
    storeKeyGrads(work, dhp, n, first, dh, A.scale,
      dk, A.base(KV.dk_offset, KV.dk_strides, hd), u32Of(args, KV.dk_strides, 2),
      dv, A.base(KV.dv_offset, KV.dv_strides, hd), u32Of(args, KV.dv_strides, 2));
  }
}

export function attention_grad_kv_packed(args: usize, scratch: usize): void {
  const A = changetype<Args>(scratch).init(args, KP.heads, KP.tq, KP.tk, KP.dh, KP.groups, KP.workgroups, KP.causal, KP.shift, KP.has_mask, KP.scale, KP.drop, KP.seed,
    KP.b_base, KP.h_base, KP.heads_total, KP.bind.mask, KP.mask_offset, KP.mask_strides);
  const work = scratch + STATE_BYTES;
  const q = <usize>u32At(args, KP.bind.q), k = <usize>u32At(args, KP.bind.k), v = <usize>u32At(args, KP.bind.v), dout = <usize>u32At(args, KP.bind.dout);
  const dkv = <usize>u32At(args, KP.bind.dkv);
  const stats = <usize>u32At(args, KP.bind.stats) + (<usize>u32At(args, KP.stats_offset) << 2);
  const dh = A.dh, dhp = roundUp(max(dh, 1), 8);
  const blocks = (A.tk + OWN_KEYS - 1) / OWN_KEYS;
  const tasks = A.bh * blocks;
  const hd = changetype<Head>(scratch + 128);
  for (let t = claim(args); t < tasks; t = claim(args)) {
    A.head(t / blocks, hd);
    const first = (t % blocks) * OWN_KEYS;
    const n = min(OWN_KEYS, A.tk - first);
    keyGrads(args, A, hd, first, n, work, dhp,
      q, A.base(KP.q_offset, KP.q_strides, hd), u32Of(args, KP.q_strides, 2),
      k, A.base(KP.k_offset, KP.k_strides, hd), u32Of(args, KP.k_strides, 2),
      v, A.base(KP.v_offset, KP.v_strides, hd), u32Of(args, KP.v_strides, 2),
      dout, A.base(KP.dout_offset, KP.dout_strides, hd), u32Of(args, KP.dout_strides, 2), stats);
    storeKeyGrads(work, dhp, n, first, dh, A.scale,
      dkv, A.base(KP.dk_offset, KP.dk_strides, hd), u32Of(args, KP.dk_strides, 2),
      dkv, A.base(KP.dv_offset, KP.dv_strides, hd), u32Of(args, KP.dv_strides, 2));
  }
}

function storeKeyGrads(scratch: usize, dhp: i32, n: i32, first: i32, dh: i32, scale: f32, dk: usize, kb: u32, krs: u32, dv: usize, vb: u32, vrs: u32): void {
  const dka = gradsAt(scratch, dhp), dva = dka + (<usize>(OWN_KEYS * dhp) << 2);
  for (let r = 0; r < n; r++) {
    const ka = dka + (<usize>(r * dhp) << 2), va = dva + (<usize>(r * dhp) << 2);
    const kd = dk + (<usize>(kb + <u32>(first + r) * krs) << 2), vd = dv + (<usize>(vb + <u32>(first + r) * vrs) << 2);
    for (let c = 0; c < dh; c++) {
      store<f32>(kd + (<usize>c << 2), load<f32>(ka + (<usize>c << 2)) * scale);
      store<f32>(vd + (<usize>c << 2), load<f32>(va + (<usize>c << 2)));
    }
  }
}
