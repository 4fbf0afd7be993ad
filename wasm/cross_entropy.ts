// Fused cross-entropy over logits [N, K] (read through row and column strides) and int32
// labels, with the semantics of shaders/cross_entropy.wgsl:
//   forward:  lse[row] = max + log Σ exp(x − max), loss[row] = lse − x[label]; a label outside
//             [0, K) raises `code` in status[0] (atomic max), as the device-side assert does
//   backward: dx[row·K + c] = (exp(x − lse[row]) − onehot(label)) · g[g_offset] · inv_n

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
      for (; j < k; j++) mx = max(mx, load<f32>(xr + (<usize>(j * sc) << 2)));
      const mxv = f32x4.splat(mx);
      let s: f32 = 0;
      j = 0;
      if (sc == 1) {
        let v = f32x4.splat(0);
        for (; j + 4 <= k; j += 4) v = f32x4.add(v, vexp(f32x4.sub(v128.load(xr + (<usize>j << 2)), mxv)));
        s = hsum(v);
      }
      for (; j < k; j++) s += f32x4.extract_lane(vexp(f32x4.splat(load<f32>(xr + (<usize>(j * sc) << 2)) - mx)), 0);
      const label = load<i32>(labels + (<usize>(row * ls) << 2));
      if (label < 0 || label >= k) raise(status, code);
      const l = mx + Mathf.log(s);
      store<f32>(lse + (<usize>row << 2), l);
      store<f32>(loss + (<usize>row << 2), l - load<f32>(xr + (<usize>(min(max(label, 0), k - 1) * sc) << 2)));
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
  const scale = load<f32>(<usize>u32At(args, B.bind.g) + (<usize>u32At(args, B.g_offset) << 2)) * f32At(args, B.inv_n);
  const sv = f32x4.splat(scale);
  const tasks = (n + GROUP - 1) / GROUP;
  for (let t = claim(args); t < tasks; t = claim(args)) {
    for (let row = t * GROUP; row < min(n, (t + 1) * GROUP); row++) {
      const xr = x + (<usize>(row * sr) << 2);
      const dr = dx + (<usize>(row * k) << 2);
      const l = f32x4.splat(load<f32>(lse + (<usize>row << 2)));
      let j = 0;
      if (sc == 1) {
        for (; j + 4 <= k; j += 4) v128.store(dr + (<usize>j << 2), f32x4.mul(vexp(f32x4.sub(v128.load(xr + (<usize>j << 2)), l)), sv));
      }
      for (; j < k; j++) {
        store<f32>(dr + (<usize>j << 2), f32x4.extract_lane(f32x4.mul(vexp(f32x4.sub(f32x4.splat(load<f32>(xr + (<usize>(j * sc) << 2))), l)), sv), 0));
      }
      const label = load<i32>(labels + (<usize>(row * ls) << 2));
      if (label >= 0 && label < k) {
        // (p − 1)·s, computed as in the WGSL rather than p·s − s.
        const p = f32x4.extract_lane(vexp(f32x4.sub(f32x4.splat(load<f32>(xr + (<usize>(label * sc) << 2))), l)), 0);
        store<f32>(dr + (<usize>label << 2), (p - 1) * scale);
      }
    }
  }
}
