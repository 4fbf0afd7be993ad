// Statistics over a model's gradients, with the semantics of shaders/grad_stats.wgsl: per tensor,
// sum_squares writes Σ g² of each WG·ITEMS-element chunk (one GPU workgroup's share) to
// partials[slot + chunk], and unscale_check multiplies g by `factor` in place and writes how many
// of the chunk's elements were inf or NaN; total adds the partials up (its square root with
// ROOT); clip_scale multiplies g by min(factor / (norm + 1e-6), 1). A task is one chunk.

import { claim, f32At, i32At, u32At } from './common';
import { sum_squares as Q, unscale_check as U, grad_total as T, clip_scale as C } from './generated/fields';
import { hsum } from './math';

// @ts-ignore: decorator
@inline function view(args: usize, binding: usize, offsetField: usize): usize {
  return <usize>u32At(args, binding) + (<usize>u32At(args, offsetField) << 2);
}

export function sum_squares(args: usize, scratch: usize): void {
  const n = i32At(args, Q.n), chunk = i32At(args, Q.WG) * i32At(args, Q.ITEMS);
  const g = view(args, Q.bind.g, Q.g_offset);
  const partials = view(args, Q.bind.partials, Q.partials_offset) + (<usize>u32At(args, Q.slot) << 2);
  const groups = i32At(args, Q.groups);
  for (let t = claim(args); t < groups; t = claim(args)) {
    const end = min(n, (t + 1) * chunk);
    let i = t * chunk;
    let acc = f32x4.splat(0);
    for (; i + 4 <= end; i += 4) {
      const v = v128.load(g + (<usize>i << 2));
      acc = f32x4.add(acc, f32x4.mul(v, v));
    }
    let s = hsum(acc);
    for (; i < end; i++) {
      const v = load<f32>(g + (<usize>i << 2));
      s += v * v;
    }
    store<f32>(partials + (<usize>t << 2), s);
  }
}

export function unscale_check(args: usize, scratch: usize): void {
  const n = i32At(args, U.n), chunk = i32At(args, U.WG) * i32At(args, U.ITEMS);
  const g = view(args, U.bind.g, U.g_offset);
  const partials = view(args, U.bind.partials, U.partials_offset) + (<usize>u32At(args, U.slot) << 2);
  const groups = i32At(args, U.groups);
  const factor = f32At(args, U.factor);
  const fv = f32x4.splat(factor), expBits = i32x4.splat(0x7f800000);
  for (let t = claim(args); t < groups; t = claim(args)) {
    const end = min(n, (t + 1) * chunk);
    let i = t * chunk;
    let bad = i32x4.splat(0);
    for (; i + 4 <= end; i += 4) {
      const p = g + (<usize>i << 2);
      const v = v128.load(p);
      // Inf or NaN: every exponent bit set (tested on the bits, like the WGSL). A lane's mask is −1.
      bad = i32x4.sub(bad, i32x4.eq(v128.and(v, expBits), expBits));
      v128.store(p, f32x4.mul(v, fv));
    }
    let count = i32x4.extract_lane(bad, 0) + i32x4.extract_lane(bad, 1) + i32x4.extract_lane(bad, 2) + i32x4.extract_lane(bad, 3);
    for (; i < end; i++) {
      const p = g + (<usize>i << 2);
      const v = load<f32>(p);
      if ((reinterpret<u32>(v) & 0x7f800000) == 0x7f800000) count++;
      store<f32>(p, v * factor);
    }
    store<f32>(partials + (<usize>t << 2), <f32>count);
  }
}

/** out = Σ partials[0..n) (ROOT: its square root); one task. */
export function grad_total(args: usize, scratch: usize): void {
  if (claim(args) != 0) return;
  const n = i32At(args, T.n);
  const partials = view(args, T.bind.partials, T.partials_offset);
  let s: f32 = 0;
  for (let i = 0; i < n; i++) s += load<f32>(partials + (<usize>i << 2));
  store<f32>(view(args, T.bind.out, T.out_offset), u32At(args, T.ROOT) != 0 ? Mathf.sqrt(s) : s);
}

export function clip_scale(args: usize, scratch: usize): void {
  const n = i32At(args, C.n);
  const g = view(args, C.bind.g, C.g_offset);
  const norm = load<f32>(view(args, C.bind.norm, C.norm_offset));
  const coef = min(f32At(args, C.factor) / (norm + 1e-6), <f32>1);
  const cv = f32x4.splat(coef);
  const CHUNK = 8192;
  const tasks = (n + CHUNK - 1) / CHUNK;
  for (let t = claim(args); t < tasks; t = claim(args)) {
    const end = min(n, (t + 1) * CHUNK);
    let i = t * CHUNK;
    for (; i + 4 <= end; i += 4) {
      const p = g + (<usize>i << 2);
      v128.store(p, f32x4.mul(v128.load(p), cv));
    }
    for (; i < end; i++) {
      const p = g + (<usize>i << 2);
      store<f32>(p, load<f32>(p) * coef);
    }
  }
}
