// Fused cross-entropy over logits [N, K] (read through row and column strides) and int32
// labels, with label smoothing ε and an ignored label, as shaders/cross_entropy.wgsl:
//   forward:  lse[row] = max + log Σ exp(x − max) (NaN where the max is NaN or ±inf, as PyTorch's
//             log-softmax), and loss[2·row .. +1] = (loss, 1) with
//             loss = (1 − ε)·(lse − x[label]) + ε·(lse − mean(x)), or (0, 0) for an ignored row; a
//             label outside [0, K) that is not the ignored one raises `code` in status[0] (atomic max)
//   backward: dx[row·K + c] = (exp(x − lse) − (1 − ε)·onehot(label) − ε/K) · g / (rows counted:
//             totals[1]; under MEAN, else · g alone: the sum); NaN through a NaN row, 0 in an ignored row

import { claim, f32At, i32At, u32At } from './common';
import { cross_entropy_forward as F, cross_entropy_backward as B } from './generated/fields';
import { hmax, hsum, vexp } from './math';

// @ts-ignore: decorator
@inline const GROUP: i32 = 8;

export function cross_entropy_forward(args: usize, scratch: usize): void {
  const n = i32At(args, F.n), k = i32At(args, F.k);
  const sr = i32At(args, F.x_row), sc = i32At(args, F.x_col);
  const x = <usize>u32At(args, F.bind.x) + (<usize>u32At(args, F.x_offset) << 2);
  const labels = <usize>u32At(args, F.bind.labels) + (<usize>u32At(args, F.labels_offset) << 2);
  const ls = i32At(args, F.labels_stride);
  const loss = <usize>u32At(args, F.bind.loss) + (<usize>u32At(args, F.loss_offset) << 2);
  const lse = <usize>u32At(args, F.bind.lse) + (<usize>u32At(args, F.lse_offset) << 2);
  const status = <usize>u32At(args, F.bind.status);
  const code = u32At(args, F.code);
  const ignore = i32At(args, F.ignore);
  const smoothing = f32At(args, F.smoothing);
  const smooth = u32At(args, F.SMOOTH) != 0;
  const tasks = (n + GROUP - 1) / GROUP;
  for (let t = claim(args); t < tasks; t = claim(args)) {
    for (let row = t * GROUP; row < min(n, (t + 1) * GROUP); row++) {
      const xr = x + (<usize>(row * sr) << 2);
      let j = 0;
      let mx: f32 = -Infinity;
      if (sc == 1) {
        let v = f32x4.splat(-Infinity);
        for (; j + 4 <= k; j += 4) v = f32x4.max(v, v128.load(xr + (<usize>j << 2)));
        mx = hmax(v);
      }
      for (; j < k; j++) mx = max(mx, load<f32>(xr + (<usize>(j * sc) << 2)));   // a max that keeps NaN
      const mxv = f32x4.splat(mx);
      let s: f32 = 0, total: f32 = 0;
      j = 0;
      if (sc == 1) {
        let v = f32x4.splat(0), tv = f32x4.splat(0);
        for (; j + 4 <= k; j += 4) {
          const xv = v128.load(xr + (<usize>j << 2));
          v = f32x4.add(v, vexp(f32x4.sub(xv, mxv)));
          tv = f32x4.add(tv, xv);
        }
        s = hsum(v);
        total = hsum(tv);
      }
      for (; j < k; j++) {
        const xj = load<f32>(xr + (<usize>(j * sc) << 2));
        s += f32x4.extract_lane(vexp(f32x4.splat(xj - mx)), 0);
        total += xj;
      }
      const label = load<i32>(labels + (<usize>(row * ls) << 2));
      const ignored = label == ignore;
      if (!ignored && (label < 0 || label >= k)) raise(status, code);
      const l = isFinite(mx) ? mx + Mathf.log(s) : NaN;
      store<f32>(lse + (<usize>row << 2), l);
      let r = l - load<f32>(xr + (<usize>(min(max(label, 0), k - 1) * sc) << 2));
      if (smooth) r = (1 - smoothing) * r + smoothing * (l - total / <f32>k);
      store<f32>(loss + (<usize>(2 * row) << 2), ignored ? 0 : r);
      store<f32>(loss + (<usize>(2 * row + 1) << 2), ignored ? 0 : 1);
    }
  }
}

/** status = max(status, code), atomically (wasm has no atomic max: a compare-exchange loop). */
function raise(status: usize, code: u32): void {
  let seen = atomic.load<u32>(status);
  while (seen < code) {
    const was = atomic.cmpxchg<u32>(status, seen, code);
    if (was == seen) return;
    seen = was;
  }
}

export function cross_entropy_backward(args: usize, scratch: usize): void {
  const n = i32At(args, B.n), k = i32At(args, B.k);
  const sr = i32At(args, B.x_row), sc = i32At(args, B.x_col);
  const x = <usize>u32At(args, B.bind.x) + (<usize>u32At(args, B.x_offset) << 2);
  const labels = <usize>u32At(args, B.bind.labels) + (<usize>u32At(args, B.labels_offset) << 2);
  const ls = i32At(args, B.labels_stride);
  const lse = <usize>u32At(args, B.bind.lse) + (<usize>u32At(args, B.lse_offset) << 2);
  const dx = <usize>u32At(args, B.bind.dx) + (<usize>u32At(args, B.dx_offset) << 2);
  const ignore = i32At(args, B.ignore);
  const smoothing = f32At(args, B.smoothing);
  const counted = load<f32>(<usize>u32At(args, B.bind.totals) + (<usize>(u32At(args, B.totals_offset) + 1) << 2));
  const g = load<f32>(<usize>u32At(args, B.bind.g) + (<usize>u32At(args, B.g_offset) << 2));
  const scale = u32At(args, B.MEAN) != 0 ? g / counted : g;
  const sv = f32x4.splat(scale);
  const floor = smoothing / <f32>k;
  const fv = f32x4.splat(floor);
  const tasks = (n + GROUP - 1) / GROUP;
  for (let t = claim(args); t < tasks; t = claim(args)) {
    for (let row = t * GROUP; row < min(n, (t + 1) * GROUP); row++) {
      const xr = x + (<usize>(row * sr) << 2);
      const dr = dx + (<usize>(row * k) << 2);
      const label = load<i32>(labels + (<usize>(row * ls) << 2));
      const lrow = load<f32>(lse + (<usize>row << 2));
      if (label == ignore || isNaN(lrow)) {
        // An ignored row has no gradient; a NaN row (see the forward) is NaN throughout.
        const v = label == ignore ? <f32>0 : lrow;
        for (let j = 0; j < k; j++) store<f32>(dr + (<usize>j << 2), v);
        continue;
      }
      const l = f32x4.splat(lrow);
      let j = 0;
      if (sc == 1) {
        for (; j + 4 <= k; j += 4) v128.store(dr + (<usize>j << 2), f32x4.mul(f32x4.sub(vexp(f32x4.sub(v128.load(xr + (<usize>j << 2)), l)), fv), sv));
      }
      for (; j < k; j++) {
        const p = f32x4.extract_lane(vexp(f32x4.sub(f32x4.splat(load<f32>(xr + (<usize>(j * sc) << 2))), l)), 0);
        store<f32>(dr + (<usize>j << 2), (p - floor) * scale);
      }
      if (label >= 0 && label < k) {
        // (p − (1 − ε) − ε/K)·s, computed as the WGSL does rather than from the stored value.
        const p = f32x4.extract_lane(vexp(f32x4.sub(f32x4.splat(load<f32>(xr + (<usize>(label * sc) << 2))), l)), 0);
        store<f32>(dr + (<usize>label << 2), (p - ((1 - smoothing) + floor)) * scale);
      }
    }
  }
}
