// Softmax and log-softmax along one axis, forward and backward, with the semantics of
// shaders/softmax.wgsl: m rows of length k, row i of the input (x, or g) at row_offset(i) with
// element stride in_stride, the output (and, backward, y) at row_offset(i, out) with out_stride,
// each from its <binding>_offset.
//   forward:  exp(x − max) / Σ exp(x − max)     (LOG: x − max − log Σ)
//   backward: y · (g − Σ g·y)                    (LOG: g − exp(y) · Σ g)
// A task is a group of rows; rows with unit strides run four lanes at a time.

import { claim, i32At, u32At, u32Of } from './common';
import { softmax_forward as F, softmax_backward as B } from './generated/fields';
import { hmax, hsum, vexp } from './math';

// @ts-ignore: decorator
@inline const GROUP: i32 = 8;

function rowOffset(args: usize, shapeAt: usize, stridesAt: usize, rank: i32, row: u32): u32 {
  let rem = row;
  let o: u32 = 0;
  for (let d = rank - 1; d >= 0; d--) {
    const n = u32Of(args, shapeAt, d);
    o += (rem % n) * u32Of(args, stridesAt, d);
    rem /= n;
  }
  return o;
}

// @ts-ignore: decorator
@inline function at(p: usize, i: i32, stride: i32): usize {
  return p + (<usize>(i * stride) << 2);
}

export function softmax_forward(args: usize, scratch: usize): void {
  const m = i32At(args, F.m), k = i32At(args, F.k), krank = i32At(args, F.krank);
  const sIn = i32At(args, F.in_stride), sOut = i32At(args, F.out_stride);
  const log = u32At(args, F.LOG) != 0;
  const x = <usize>u32At(args, F.bind.x) + (<usize>u32At(args, F.x_offset) << 2);
  const out = <usize>u32At(args, F.bind.out) + (<usize>u32At(args, F.out_offset) << 2);
  const unit = sIn == 1 && sOut == 1;
  const tasks = (m + GROUP - 1) / GROUP;
  for (let t = claim(args); t < tasks; t = claim(args)) {
    for (let row = t * GROUP; row < min(m, (t + 1) * GROUP); row++) {
      const xr = x + (<usize>rowOffset(args, F.row_shape, F.in_rows, krank, row) << 2);
      const yr = out + (<usize>rowOffset(args, F.row_shape, F.out_rows, krank, row) << 2);
      let j = 0;
      let mx: f32 = -Infinity;
      if (unit) {
        let v = f32x4.splat(-Infinity);
        for (; j + 4 <= k; j += 4) v = f32x4.max(v, v128.load(xr + (<usize>j << 2)));
        mx = hmax(v);
      }
      for (; j < k; j++) mx = max(mx, load<f32>(at(xr, j, sIn)));
      const mxv = f32x4.splat(mx);
      let s: f32 = 0;
      j = 0;
      if (unit) {
        let v = f32x4.splat(0);
        for (; j + 4 <= k; j += 4) v = f32x4.add(v, vexp(f32x4.sub(v128.load(xr + (<usize>j << 2)), mxv)));
        s = hsum(v);
      }
      for (; j < k; j++) s += f32x4.extract_lane(vexp(f32x4.splat(load<f32>(at(xr, j, sIn)) - mx)), 0);
      const logS = f32x4.splat(Mathf.log(s));
      const inv = f32x4.splat(1 / s);
      j = 0;
      if (unit) {
        for (; j + 4 <= k; j += 4) {
          const v = f32x4.sub(v128.load(xr + (<usize>j << 2)), mxv);
          v128.store(yr + (<usize>j << 2), log ? f32x4.sub(v, logS) : f32x4.mul(vexp(v), inv));
        }
      }
      for (; j < k; j++) {
        const v = f32x4.splat(load<f32>(at(xr, j, sIn)) - mx);
        store<f32>(at(yr, j, sOut), f32x4.extract_lane(log ? f32x4.sub(v, logS) : f32x4.mul(vexp(v), inv), 0));
      }
    }
  }
}

export function softmax_backward(args: usize, scratch: usize): void {
  const m = i32At(args, B.m), k = i32At(args, B.k), krank = i32At(args, B.krank);
  const sIn = i32At(args, B.in_stride), sOut = i32At(args, B.out_stride);
  const log = u32At(args, B.LOG) != 0;
  const g = <usize>u32At(args, B.bind.g) + (<usize>u32At(args, B.g_offset) << 2);
  const y = <usize>u32At(args, B.bind.y) + (<usize>u32At(args, B.y_offset) << 2);
  const out = <usize>u32At(args, B.bind.out) + (<usize>u32At(args, B.out_offset) << 2);
  const unit = sIn == 1 && sOut == 1;
  const tasks = (m + GROUP - 1) / GROUP;
  for (let t = claim(args); t < tasks; t = claim(args)) {
    for (let row = t * GROUP; row < min(m, (t + 1) * GROUP); row++) {
      const gr = g + (<usize>rowOffset(args, B.row_shape, B.in_rows, krank, row) << 2);
      const yo = <usize>rowOffset(args, B.row_shape, B.out_rows, krank, row) << 2;
      const yr = y + yo, or = out + yo;
      let j = 0;
      let s: f32 = 0;
      if (unit) {
        let v = f32x4.splat(0);
        for (; j + 4 <= k; j += 4) {
          const gv = v128.load(gr + (<usize>j << 2));
          v = f32x4.add(v, log ? gv : f32x4.mul(gv, v128.load(yr + (<usize>j << 2))));
        }
        s = hsum(v);
      }
      for (; j < k; j++) {
        const gv = load<f32>(at(gr, j, sIn));
        s += log ? gv : gv * load<f32>(at(yr, j, sOut));
      }
      const sv = f32x4.splat(s);
      j = 0;
      if (unit) {
        for (; j + 4 <= k; j += 4) {
          const gv = v128.load(gr + (<usize>j << 2)), yv = v128.load(yr + (<usize>j << 2));
          v128.store(or + (<usize>j << 2), log ? f32x4.sub(gv, f32x4.mul(vexp(yv), sv)) : f32x4.mul(yv, f32x4.sub(gv, sv)));
        }
      }
      for (; j < k; j++) {
        const gv = f32x4.splat(load<f32>(at(gr, j, sIn))), yv = f32x4.splat(load<f32>(at(yr, j, sOut)));
        const r = log ? f32x4.sub(gv, f32x4.mul(vexp(yv), sv)) : f32x4.mul(yv, f32x4.sub(gv, sv));
        store<f32>(at(or, j, sOut), f32x4.extract_lane(r, 0));
      }
    }
  }
}
