// 2-D convolution on NCHW tensors, forward and both gradients, with the semantics of
// shaders/conv2d.wgsl, conv2d_grad_input.wgsl and conv2d_grad_weight.wgsl, as GEMMs on the
// register-blocked core (gemm.ts) whose B panels are packed straight from the image: an
// im2col of one KC × NC block at a time, never of the whole image.
//
//   forward      out_n[O, OH·OW]  = W[O, C·kH·kW] · patches(x_n)[C·kH·kW, OH·OW]   (+ bias)
//   grad_input   dx_n[C, H·W]     = Wᵀ[C, O·kH·kW] · spread(dy_n)[O·kH·kW, H·W]
//   grad_weight  dw[O, C·kH·kW]  += dy[O, rows·OW] · patchesᵀ(x)[rows·OW, C·kH·kW]
//
// with ih = oh·stride − pad + kh·dil (and the same along w). The weight (binding `w`,
// which pack_weight reads in the WGSL path) is read through w_offset and four strides
// (w_stride_o/c/kh/kw), so any view of it works without a packing pass. grad_input gathers: an
// element of dx takes dy at oh = (ih + pad − kh·dil) / stride where that divides exactly, so
// every element of dx is written once. grad_weight reduces over the rows (n, oh) of one split
// (rows_per_split of them) and writes split s's sums at dw + s·O·C·kH·kW, like the WGSL: the
// host adds the splits with conv2d_reduce_partials when there is more than one.

import { claim, i32At, u32At } from './common';
import { conv2d as F, conv2d_grad_input as G, conv2d_grad_weight as D, conv2d_reduce_partials as R, conv2d_grad_bias as B } from './generated/fields';
import { A_PACK, B_PACK, gemmBlock, KC, LANES, MC, MR, NC, NR, packRows } from './gemm';

export function conv2d(args: usize, scratch: usize): void {
  const N = i32At(args, F.n), C = i32At(args, F.c), H = i32At(args, F.h), W = i32At(args, F.w);
  const O = i32At(args, F.o), OH = i32At(args, F.oh), OW = i32At(args, F.ow);
  const KH = i32At(args, F.kh), KW = i32At(args, F.kw);
  const sh = i32At(args, F.stride_h), sw = i32At(args, F.stride_w);
  const ph = i32At(args, F.pad_h), pw = i32At(args, F.pad_w);
  const dh = i32At(args, F.dil_h), dw = i32At(args, F.dil_w);
  const hasBias = u32At(args, F.HAS_BIAS) != 0;
  const x = <usize>u32At(args, F.bind.x) + (<usize>u32At(args, F.x_offset) << 2);
  const weight = <usize>u32At(args, F.bind.w) + (<usize>u32At(args, F.w_offset) << 2);
  const bias = <usize>u32At(args, F.bind.bias) + (<usize>u32At(args, F.bias_offset) << 2);
  const out = <usize>u32At(args, F.bind.out) + (<usize>u32At(args, F.out_offset) << 2);
  const so = i32At(args, F.w_stride_o), sc = i32At(args, F.w_stride_c);
  const skh = i32At(args, F.w_stride_kh), skw = i32At(args, F.w_stride_kw);
  const OHW = OH * OW, K = C * KH * KW;
  const mBlocks = (O + MC - 1) / MC, nBlocks = (OHW + NC - 1) / NC;
  const perImage = mBlocks * nBlocks;
  const tasks = N * perImage;
  for (let t = claim(args); t < tasks; t = claim(args)) {
    const n = t / perImage;
    const o0 = ((t % perImage) / nBlocks) * MC, q0 = (t % nBlocks) * NC;
    const mc = min(MC, O - o0), nc = min(NC, OHW - q0);
    const c = out + ((<usize>n * <usize>O * <usize>OHW + <usize>o0 * <usize>OHW + <usize>q0) << 2);
    if (hasBias) {
      for (let r = 0; r < mc; r++) fill(c + ((<usize>r * <usize>OHW) << 2), load<f32>(bias + (<usize>(o0 + r) << 2)), nc);
    } else if (K == 0) {
      for (let r = 0; r < mc; r++) fill(c + ((<usize>r * <usize>OHW) << 2), 0, nc);
    }
    const img = x + ((<usize>n * <usize>C * <usize>H * <usize>W) << 2);
    for (let k0 = 0; k0 < K; k0 += KC) {
      const kc = min(KC, K - k0);
      packRows(scratch + A_PACK, weight, so, sc, skh, skw, KH, KW, o0, mc, k0, kc);
      // Lanes of a B panel: output pixel q → window origin (oh·sh − ph, ow·sw − pw).
      packPatches(scratch, img, H, W, KH, KW, dh, dw, 1, 1, k0, kc, q0, nc, OW, sh, sw, -ph, -pw);
      gemmBlock(scratch + A_PACK, scratch + B_PACK, mc, nc, kc, c, OHW, hasBias || k0 > 0, scratch);
    }
  }
}

export function conv2d_grad_input(args: usize, scratch: usize): void {
  const N = i32At(args, G.n), C = i32At(args, G.c), H = i32At(args, G.h), W = i32At(args, G.w);
  const O = i32At(args, G.o), OH = i32At(args, G.oh), OW = i32At(args, G.ow);
  const KH = i32At(args, G.kh), KW = i32At(args, G.kw);
  const sh = i32At(args, G.stride_h), sw = i32At(args, G.stride_w);
  const ph = i32At(args, G.pad_h), pw = i32At(args, G.pad_w);
  const dh = i32At(args, G.dil_h), dw = i32At(args, G.dil_w);
  const dy = <usize>u32At(args, G.bind.dy) + (<usize>u32At(args, G.dy_offset) << 2);
  const weight = <usize>u32At(args, G.bind.w) + (<usize>u32At(args, G.w_offset) << 2);
  const dx = <usize>u32At(args, G.bind.dx) + (<usize>u32At(args, G.dx_offset) << 2);
  const so = i32At(args, G.w_stride_o), sc = i32At(args, G.w_stride_c);
  const skh = i32At(args, G.w_stride_kh), skw = i32At(args, G.w_stride_kw);
  const HW = H * W, K = O * KH * KW;
  const mBlocks = (C + MC - 1) / MC, nBlocks = (HW + NC - 1) / NC;
  const perImage = mBlocks * nBlocks;
  const tasks = N * perImage;
  for (let t = claim(args); t < tasks; t = claim(args)) {
    const n = t / perImage;
    const c0 = ((t % perImage) / nBlocks) * MC, q0 = (t % nBlocks) * NC;
    const mc = min(MC, C - c0), nc = min(NC, HW - q0);
    const c = dx + ((<usize>n * <usize>C * <usize>HW + <usize>c0 * <usize>HW + <usize>q0) << 2);
    if (K == 0) for (let r = 0; r < mc; r++) fill(c + ((<usize>r * <usize>HW) << 2), 0, nc);
    const img = dy + ((<usize>n * <usize>O * <usize>OH * <usize>OW) << 2);
    for (let k0 = 0; k0 < K; k0 += KC) {
      const kc = min(KC, K - k0);
      packRows(scratch + A_PACK, weight, sc, so, skh, skw, KH, KW, c0, mc, k0, kc);
      // Lanes: input pixel (ih, iw) reads dy at ((ih + ph − kh·dh) / sh, (iw + pw − kw·dw) / sw).
      packPatches(scratch, img, OH, OW, KH, KW, -dh, -dw, sh, sw, k0, kc, q0, nc, W, 1, 1, ph, pw);
      gemmBlock(scratch + A_PACK, scratch + B_PACK, mc, nc, kc, c, HW, k0 > 0, scratch);
    }
  }
}

/**
 * Pack B micro-panels of image patches: B(k, q) for k = (ch, i, j) over channels × kH × kW and
 * q a pixel of the output grid (qw columns wide). Lane q reads the source plane ch (sH × sW) at
 * y = qy·ys + y0 + i·ty, x = qx·xs + x0 + j·tx, divided by (dy, dx) — zero where that is not
 * exact or falls outside the plane. The forward pass has divisors 1; grad_input has the
 * stride as divisor and negative tap steps.
 */
function packPatches(scratch: usize, src: usize, sH: i32, sW: i32, KH: i32, KW: i32, ty: i32, tx: i32, divY: i32, divX: i32,
                     k0: i32, kc: i32, q0: i32, nc: i32, qw: i32, ys: i32, xs: i32, y0: i32, x0: i32): void {
  const dst = scratch + B_PACK;
  const ly = scratch + LANES;          // NR window origins along y, then along x
  const lx = ly + <usize>(NR * 4);
  const plane = sH * sW;
  const kk = KH * KW;
  const exact = divY == 1 && divX == 1;
  for (let j = 0; j < nc; j += NR) {
    const panel = dst + <usize>(j / NR) * <usize>(kc * NR * 4);
    // Window origin of each lane; lanes past the block read nothing (y far outside).
    for (let r = 0; r < NR; r++) {
      const q = q0 + j + r;
      const live = j + r < nc;
      store<i32>(ly + (<usize>r << 2), live ? (q / qw) * ys + y0 : -0x40000000);
      store<i32>(lx + (<usize>r << 2), live ? (q % qw) * xs + x0 : 0);
    }
    // One source row, consecutive columns: a run that can be copied two vectors at a time.
    const yFirst = load<i32>(ly), xFirst = load<i32>(lx);
    const run = exact && xs == 1 && j + NR <= nc && load<i32>(ly, (NR - 1) * 4) == yFirst && load<i32>(lx, (NR - 1) * 4) == xFirst + NR - 1;
    let ch = k0 / kk;
    let i = (k0 % kk) / KW;
    let jj = k0 % KW;
    let d = panel;
    for (let k = 0; k < kc; k++) {
      const p = src + ((<usize>ch * <usize>plane) << 2);
      const oy = i * ty, ox = jj * tx;
      if (run) {
        const y = yFirst + oy, x = xFirst + ox;
        if (<u32>y < <u32>sH && x >= 0 && x + NR <= sW) {
          const s = p + ((<usize>(y * sW + x)) << 2);
          v128.store(d, v128.load(s));
          v128.store(d, v128.load(s, 16), 16);
        } else {
          const inRow = <u32>y < <u32>sH;
          for (let r = 0; r < NR; r++) {
            const xr = x + r;
            store<f32>(d + (<usize>r << 2), inRow && <u32>xr < <u32>sW ? load<f32>(p + ((<usize>(y * sW + xr)) << 2)) : 0);
          }
        }
      } else if (exact) {
        for (let r = 0; r < NR; r++) {
          const y = load<i32>(ly + (<usize>r << 2)) + oy, x = load<i32>(lx + (<usize>r << 2)) + ox;
          store<f32>(d + (<usize>r << 2), <u32>y < <u32>sH && <u32>x < <u32>sW ? load<f32>(p + ((<usize>(y * sW + x)) << 2)) : 0);
        }
      } else {
        for (let r = 0; r < NR; r++) {
          const ey = load<i32>(ly + (<usize>r << 2)) + oy, ex = load<i32>(lx + (<usize>r << 2)) + ox;
          let v: f32 = 0;
          if (ey >= 0 && ex >= 0 && ey % divY == 0 && ex % divX == 0) {
            const y = ey / divY, x = ex / divX;
            if (y < sH && x < sW) v = load<f32>(p + ((<usize>(y * sW + x)) << 2));
          }
          store<f32>(d + (<usize>r << 2), v);
        }
      }
      d += NR * 4;
      if (++jj == KW) {
        jj = 0;
        if (++i == KH) {
          i = 0;
          ch++;
        }
      }
    }
  }
}

export function conv2d_grad_weight(args: usize, scratch: usize): void {
  const N = i32At(args, D.n), C = i32At(args, D.c), H = i32At(args, D.h), W = i32At(args, D.w);
  const O = i32At(args, D.o), OH = i32At(args, D.oh), OW = i32At(args, D.ow);
  const KH = i32At(args, D.kh), KW = i32At(args, D.kw);
  const sh = i32At(args, D.stride_h), sw = i32At(args, D.stride_w);
  const ph = i32At(args, D.pad_h), pw = i32At(args, D.pad_w);
  const dh = i32At(args, D.dil_h), dw = i32At(args, D.dil_w);
  const dy = <usize>u32At(args, D.bind.dy) + (<usize>u32At(args, D.dy_offset) << 2);
  const x = <usize>u32At(args, D.bind.x) + (<usize>u32At(args, D.x_offset) << 2);
  const out = <usize>u32At(args, D.bind.dw) + (<usize>u32At(args, D.dw_offset) << 2);
  const rowsPerSplit = max(1, i32At(args, D.rows_per_split));
  const cols = C * KH * KW;
  const rows = N * OH;
  // No rows (an empty batch): one split of zeros.
  const splits = max(1, (rows + rowsPerSplit - 1) / rowsPerSplit);
  const mBlocks = (O + MC - 1) / MC, nBlocks = (cols + NC - 1) / NC;
  const perSplit = mBlocks * nBlocks;
  const tasks = splits * perSplit;
  for (let t = claim(args); t < tasks; t = claim(args)) {
    const split = t / perSplit;
    const o0 = ((t % perSplit) / nBlocks) * MC, n0 = (t % nBlocks) * NC;
    const mc = min(MC, O - o0), nc = min(NC, cols - n0);
    const c = out + ((<usize>split * <usize>O * <usize>cols + <usize>o0 * <usize>cols + <usize>n0) << 2);
    // The reduction: (row, ow) pairs of this split's rows.
    const row0 = split * rowsPerSplit;
    const K = max(0, min(rows, row0 + rowsPerSplit) - row0) * OW;
    if (K == 0) for (let r = 0; r < mc; r++) fill(c + ((<usize>r * <usize>cols) << 2), 0, nc);
    for (let k0 = 0; k0 < K; k0 += KC) {
      const kc = min(KC, K - k0);
      packDy(scratch + A_PACK, dy, O, OH, OW, row0, o0, mc, k0, kc);
      packPatchesT(scratch + B_PACK, x, C, H, W, KH, KW, OH, OW, sh, sw, ph, pw, dh, dw, row0, n0, nc, k0, kc);
      gemmBlock(scratch + A_PACK, scratch + B_PACK, mc, nc, kc, c, cols, k0 > 0, scratch);
    }
  }
}

/** A panels of dy for grad_weight: A(o, k) with k = (row, ow) counted from row0, row = (n, oh). */
function packDy(dst: usize, dy: usize, O: i32, OH: i32, OW: i32, row0: i32, o0: i32, mc: i32, k0: i32, kc: i32): void {
  const OHW = OH * OW;
  for (let i = 0; i < mc; i += MR) {
    const panel = dst + <usize>(i / MR) * <usize>(kc * MR * 4);
    for (let r = 0; r < MR; r++) {
      let d = panel + (<usize>r << 2);
      if (i + r >= mc) {
        for (let k = 0; k < kc; k++) {
          store<f32>(d, 0);
          d += MR * 4;
        }
        continue;
      }
      // Pixels of one image are consecutive in dy; the next image starts O·OH·OW further.
      const first = row0 * OW + k0;       // flat (n, oh, ow) index of k0
      let n = first / OHW;
      let inImage = first % OHW;
      let s = dy + ((<usize>n * <usize>O * <usize>OHW + <usize>(o0 + i + r) * <usize>OHW + <usize>inImage) << 2);
      for (let k = 0; k < kc; k++) {
        store<f32>(d, load<f32>(s));
        d += MR * 4;
        s += 4;
        if (++inImage == OHW) {
          inImage = 0;
          s += <usize>((O - 1) * OHW) << 2;
        }
      }
    }
  }
}

/**
 * B panels for grad_weight: B(k, col) = x[n, ch, oh·sh − ph + i·dh, ow·sw − pw + j·dw] for
 * k = (row, ow) from row0 and col = (ch, i, j); zero in the padding.
 */
function packPatchesT(dst: usize, x: usize, C: i32, H: i32, W: i32, KH: i32, KW: i32, OH: i32, OW: i32, sh: i32, sw: i32,
                      ph: i32, pw: i32, dh: i32, dw: i32, row0: i32, n0: i32, nc: i32, k0: i32, kc: i32): void {
  const kk = KH * KW;
  const HW = H * W;
  for (let j = 0; j < nc; j += NR) {
    const panel = dst + <usize>(j / NR) * <usize>(kc * NR * 4);
    for (let r = 0; r < NR; r++) {
      let d = panel + (<usize>r << 2);
      if (j + r >= nc) {
        for (let k = 0; k < kc; k++) {
          store<f32>(d, 0);
          d += NR * 4;
        }
        continue;
      }
      const col = n0 + j + r;
      const ch = col / kk;
      const oy = ((col % kk) / KW) * dh - ph, ox = (col % KW) * dw - pw;
      const first = row0 * OW + k0;
      let row = first / OW;
      let ow = first % OW;
      let n = row / OH, oh = row % OH;
      let plane = x + ((<usize>n * <usize>C * <usize>HW + <usize>ch * <usize>HW) << 2);
      let y = oh * sh + oy;
      let xx = ow * sw + ox;
      for (let k = 0; k < kc; k++) {
        store<f32>(d, <u32>y < <u32>H && <u32>xx < <u32>W ? load<f32>(plane + (<usize>(y * W + xx) << 2)) : 0);
        d += NR * 4;
        xx += sw;
        if (++ow == OW) {
          ow = 0;
          xx = ox;
          y += sh;
          if (++oh == OH) {
            oh = 0;
            y = oy;
            plane += <usize>(C * HW) << 2;
          }
        }
      }
    }
  }
}

/** sum[i] = Σ_s src[s·m + i]: the splits of conv2d_grad_weight added up. */
export function conv2d_reduce_partials(args: usize, scratch: usize): void {
  const m = i32At(args, R.m), splits = i32At(args, R.splits);
  const src = <usize>u32At(args, R.bind.src) + (<usize>u32At(args, R.src_offset) << 2);
  const dst = <usize>u32At(args, R.bind.sum) + (<usize>u32At(args, R.sum_offset) << 2);
  const CHUNK = 4096;
  const tasks = (m + CHUNK - 1) / CHUNK;
  for (let t = claim(args); t < tasks; t = claim(args)) {
    const i0 = t * CHUNK, i1 = min(m, i0 + CHUNK);
    let i = i0;
    for (; i + 4 <= i1; i += 4) {
      let acc = f32x4.splat(0);
      for (let s = 0; s < splits; s++) acc = f32x4.add(acc, v128.load(src + ((<usize>s * <usize>m + <usize>i) << 2)));
      v128.store(dst + (<usize>i << 2), acc);
    }
    for (; i < i1; i++) {
      let acc: f32 = 0;
      for (let s = 0; s < splits; s++) acc += load<f32>(src + ((<usize>s * <usize>m + <usize>i) << 2));
      store<f32>(dst + (<usize>i << 2), acc);
    }
  }
}

/** sum[o] = Σ_{n, p} src[(n·m + o)·inner + p] (dy → the bias gradient): one task per channel. */
export function conv2d_grad_bias(args: usize, scratch: usize): void {
  const m = i32At(args, B.m), N = i32At(args, B.splits), inner = i32At(args, B.inner);
  const src = <usize>u32At(args, B.bind.src) + (<usize>u32At(args, B.src_offset) << 2);
  const dst = <usize>u32At(args, B.bind.sum) + (<usize>u32At(args, B.sum_offset) << 2);
  for (let o = claim(args); o < m; o = claim(args)) {
    let acc = f32x4.splat(0);
    let tail: f32 = 0;
    for (let n = 0; n < N; n++) {
      const p = src + ((<usize>(n * m + o) * <usize>inner) << 2);
      let i = 0;
      for (; i + 4 <= inner; i += 4) acc = f32x4.add(acc, v128.load(p + (<usize>i << 2)));
      for (; i < inner; i++) tail += load<f32>(p + (<usize>i << 2));
    }
    store<f32>(dst + (<usize>o << 2), f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) + f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3) + tail);
  }
}

function fill(p: usize, v: f32, n: i32): void {
  for (let i = 0; i < n; i++) store<f32>(p + (<usize>i << 2), v);
}
