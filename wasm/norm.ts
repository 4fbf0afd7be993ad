// layerNorm and rmsNorm over rows of K contiguous elements, with the semantics of
// shaders/norm.wgsl (CENTER: layerNorm, subtract the mean; otherwise rmsNorm):
//   forward {x, w, b, y, stats}: y = (x − mean)·rstd·w + b with rstd = 1/√(var + eps), and
//     stats[row] = (mean, rstd). The variance comes from two passes over the row (it is in
//     cache): the mean, then Σ (x − mean)², every term ≥ 0, so a row with a large mean keeps its
//     variance. rmsNorm: mean 0, var = mean(x²).
//   backward {x, w, stats, g, dx}: with x̂ = (x − mean)·rstd and ĝ = g·w,
//     dx = rstd·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂))   (rmsNorm: without mean(ĝ)).
//   columns {x, stats, g, part}: for each chunk of chunk_len rows, in row order,
//     part[chunk, 0, c] = Σ g·x̂ and part[chunk, 1, c] = Σ g (the host sums the chunks).
// A task is a group of rows (columns: a chunk of rows × a block of columns); four lanes at a time.

import { claim, f32At, i32At, u32At } from './common';
import { norm_forward as F, norm_backward as B, norm_columns as C } from './generated/fields';
import { hsum } from './math';

// @ts-ignore: decorator
@inline const GROUP: i32 = 4;
/** Columns per task of the column sums. */
// @ts-ignore: decorator
@inline const COLUMNS: i32 = 256;

// @ts-ignore: decorator
@inline function ptr(base: usize, i: i32): usize {
  return base + (<usize>i << 2);
}

/** Σ x over k elements at p. */
function rowSum(p: usize, k: i32): f32 {
  let v = f32x4.splat(0);
  let j = 0;
  for (; j + 4 <= k; j += 4) v = f32x4.add(v, v128.load(ptr(p, j)));
  let s = hsum(v);
  for (; j < k; j++) s += load<f32>(ptr(p, j));
  return s;
}

/** Σ (x − c)² over k elements at p. */
function rowSquares(p: usize, k: i32, c: f32): f32 {
  const cv = f32x4.splat(c);
  let v = f32x4.splat(0);
  let j = 0;
  for (; j + 4 <= k; j += 4) {
    const d = f32x4.sub(v128.load(ptr(p, j)), cv);
    v = f32x4.add(v, f32x4.mul(d, d));
  }
  let s = hsum(v);
  for (; j < k; j++) {
    const d = load<f32>(ptr(p, j)) - c;
    s += d * d;
  }
  return s;
}

export function norm_forward(args: usize, scratch: usize): void {
  const m = i32At(args, F.m), k = i32At(args, F.k);
  const eps = f32At(args, F.eps);
  const center = u32At(args, F.CENTER) != 0, weight = u32At(args, F.WEIGHT) != 0, bias = u32At(args, F.BIAS) != 0;
  const x = <usize>u32At(args, F.bind.x) + (<usize>u32At(args, F.x_offset) << 2);
  const w = <usize>u32At(args, F.bind.w) + (<usize>u32At(args, F.w_offset) << 2);
  const b = <usize>u32At(args, F.bind.b) + (<usize>u32At(args, F.b_offset) << 2);
  const y = <usize>u32At(args, F.bind.y) + (<usize>u32At(args, F.y_offset) << 2);
  const stats = <usize>u32At(args, F.bind.stats) + (<usize>u32At(args, F.stats_offset) << 2);
  const inv = <f32>1 / <f32>k;
  const tasks = (m + GROUP - 1) / GROUP;
  for (let t = claim(args); t < tasks; t = claim(args)) {
    for (let row = t * GROUP; row < min(m, (t + 1) * GROUP); row++) {
      const xr = x + (<usize>row * <usize>k << 2);
      const yr = y + (<usize>row * <usize>k << 2);
      const mean: f32 = center ? rowSum(xr, k) * inv : 0;
      const rstd = <f32>1 / Mathf.sqrt(rowSquares(xr, k, mean) * inv + eps);
      const mv = f32x4.splat(mean), rv = f32x4.splat(rstd);
      let j = 0;
      for (; j + 4 <= k; j += 4) {
        let v = f32x4.mul(f32x4.sub(v128.load(ptr(xr, j)), mv), rv);
        if (weight) v = f32x4.mul(v, v128.load(ptr(w, j)));
        if (bias) v = f32x4.add(v, v128.load(ptr(b, j)));
        v128.store(ptr(yr, j), v);
      }
      for (; j < k; j++) {
        let v = (load<f32>(ptr(xr, j)) - mean) * rstd;
        if (weight) v *= load<f32>(ptr(w, j));
        if (bias) v += load<f32>(ptr(b, j));
        store<f32>(ptr(yr, j), v);
      }
      store<f32>(ptr(stats, 2 * row), mean);
      store<f32>(ptr(stats, 2 * row + 1), rstd);
    }
  }
}

export function norm_backward(args: usize, scratch: usize): void {
  const m = i32At(args, B.m), k = i32At(args, B.k);
  const center = u32At(args, B.CENTER) != 0, weight = u32At(args, B.WEIGHT) != 0;
  const x = <usize>u32At(args, B.bind.x) + (<usize>u32At(args, B.x_offset) << 2);
  const w = <usize>u32At(args, B.bind.w) + (<usize>u32At(args, B.w_offset) << 2);
  const stats = <usize>u32At(args, B.bind.stats) + (<usize>u32At(args, B.stats_offset) << 2);
  const g = <usize>u32At(args, B.bind.g) + (<usize>u32At(args, B.g_offset) << 2);
  const dx = <usize>u32At(args, B.bind.dx) + (<usize>u32At(args, B.dx_offset) << 2);
  const inv = <f32>1 / <f32>k;
  const tasks = (m + GROUP - 1) / GROUP;
  for (let t = claim(args); t < tasks; t = claim(args)) {
    for (let row = t * GROUP; row < min(m, (t + 1) * GROUP); row++) {
      const off = <usize>row * <usize>k << 2;
      const xr = x + off, gr = g + off, dr = dx + off;
      const mean = load<f32>(ptr(stats, 2 * row)), rstd = load<f32>(ptr(stats, 2 * row + 1));
      const mv = f32x4.splat(mean);
      // Σ ĝ and Σ ĝ·(x − mean)
      let sg = f32x4.splat(0), sgx = f32x4.splat(0);
      let j = 0;
      for (; j + 4 <= k; j += 4) {
        let gv = v128.load(ptr(gr, j));
        if (weight) gv = f32x4.mul(gv, v128.load(ptr(w, j)));
        sg = f32x4.add(sg, gv);
        sgx = f32x4.add(sgx, f32x4.mul(gv, f32x4.sub(v128.load(ptr(xr, j)), mv)));
      }
      let sgs = hsum(sg), sgxs = hsum(sgx);
      for (; j < k; j++) {
        let gj = load<f32>(ptr(gr, j));
        if (weight) gj *= load<f32>(ptr(w, j));
        sgs += gj;
        sgxs += gj * (load<f32>(ptr(xr, j)) - mean);
      }
      const meanGx = sgxs * rstd * inv;
      const meanG: f32 = center ? sgs * inv : 0;
      // dx = rstd·(ĝ − mean_g) − (x − mean)·rstd·mean_gx·rstd
      const a = rstd * meanGx * rstd;
      const rv = f32x4.splat(rstd), gm = f32x4.splat(meanG), av = f32x4.splat(a);
      j = 0;
      for (; j + 4 <= k; j += 4) {
        let gv = v128.load(ptr(gr, j));
        if (weight) gv = f32x4.mul(gv, v128.load(ptr(w, j)));
        v128.store(ptr(dr, j), f32x4.sub(f32x4.mul(rv, f32x4.sub(gv, gm)), f32x4.mul(f32x4.sub(v128.load(ptr(xr, j)), mv), av)));
      }
      for (; j < k; j++) {
        let gj = load<f32>(ptr(gr, j));
        if (weight) gj *= load<f32>(ptr(w, j));
        store<f32>(ptr(dr, j), rstd * (gj - meanG) - (load<f32>(ptr(xr, j)) - mean) * a);
      }
    }
  }
}

export function norm_columns(args: usize, scratch: usize): void {
  const m = i32At(args, C.m), k = i32At(args, C.k);
  const chunkLen = max(1, i32At(args, C.chunk_len));
  const x = <usize>u32At(args, C.bind.x) + (<usize>u32At(args, C.x_offset) << 2);
  const stats = <usize>u32At(args, C.bind.stats) + (<usize>u32At(args, C.stats_offset) << 2);
  const g = <usize>u32At(args, C.bind.g) + (<usize>u32At(args, C.g_offset) << 2);
  const part = <usize>u32At(args, C.bind.part) + (<usize>u32At(args, C.part_offset) << 2);
  const chunks = (m + chunkLen - 1) / chunkLen;
  const colBlocks = (k + COLUMNS - 1) / COLUMNS;
  const tasks = chunks * colBlocks;
  for (let t = claim(args); t < tasks; t = claim(args)) {
    const chunk = t / colBlocks;
    const c0 = (t % colBlocks) * COLUMNS, c1 = min(k, c0 + COLUMNS);
    const r0 = chunk * chunkLen, r1 = min(m, r0 + chunkLen);
    const pw = part + (<usize>(chunk * 2) * <usize>k << 2);
    const pb = pw + (<usize>k << 2);
    // Sums of this block of columns, in row order, kept in the output as they grow (rows outer:
    // each row's block is read once, the sums stay in L1).
    for (let c = c0; c < c1; c++) {
      store<f32>(ptr(pw, c), 0);
      store<f32>(ptr(pb, c), 0);
    }
    for (let r = r0; r < r1; r++) {
      const off = <usize>r * <usize>k << 2;
      const xr = x + off, gr = g + off;
      const mean = load<f32>(ptr(stats, 2 * r)), rstd = load<f32>(ptr(stats, 2 * r + 1));
      const mv = f32x4.splat(mean), rv = f32x4.splat(rstd);
      let c = c0;
      for (; c + 4 <= c1; c += 4) {
        const gv = v128.load(ptr(gr, c));
        const xhat = f32x4.mul(f32x4.sub(v128.load(ptr(xr, c)), mv), rv);
        v128.store(ptr(pw, c), f32x4.add(v128.load(ptr(pw, c)), f32x4.mul(gv, xhat)));
        v128.store(ptr(pb, c), f32x4.add(v128.load(ptr(pb, c)), gv));
      }
      for (; c < c1; c++) {
        const gj = load<f32>(ptr(gr, c));
        store<f32>(ptr(pw, c), load<f32>(ptr(pw, c)) + gj * ((load<f32>(ptr(xr, c)) - mean) * rstd));
        store<f32>(ptr(pb, c), load<f32>(ptr(pb, c)) + gj);
      }
    }
  }
}
