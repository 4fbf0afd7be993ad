// 2-D pooling on NCHW with the semantics of shaders/pool.wgsl: max (padding is −inf, the first
// maximum wins, NaN wins; argmax = h·W + w in its plane) and average (padding counts as zero,
// divided by kH·kW), forward, and backward as gathers (every input element sums the windows that
// cover it); max_backward_tiled for windows that tile the input exactly. The source (x forward,
// the output gradient backward) is read through src_strides (N, C, H, W) from src_offset; the
// other tensors are contiguous. Tasks are runs of CHUNK elements (windows, for the tiled case).

import { claim, i32At, u32At, u32Of } from './common';
import { max_pool_forward as MF, avg_pool_forward as AF, max_pool_backward as MB, max_pool_backward_tiled as MT, avg_pool_backward as AB } from './generated/fields';

// @ts-ignore: decorator
@inline const CHUNK: i32 = 1024;

/** The pooling geometry; every entry point's fields start with the same names, at the same offsets. */
class Geo {
  total: i32; channels: i32; inH: i32; inW: i32; outH: i32; outW: i32;
  kH: i32; kW: i32; sH: i32; sW: i32; pH: i32; pW: i32;
  sN: i32; sC: i32; sRow: i32; sCol: i32;
  src: usize;
}

// @ts-ignore: decorator
@inline function geo(g: Geo, args: usize, srcField: usize): void {
  g.total = i32At(args, MF.total); g.channels = i32At(args, MF.channels);
  g.inH = i32At(args, MF.in_h); g.inW = i32At(args, MF.in_w); g.outH = i32At(args, MF.out_h); g.outW = i32At(args, MF.out_w);
  g.kH = i32At(args, MF.k_h); g.kW = i32At(args, MF.k_w); g.sH = i32At(args, MF.s_h); g.sW = i32At(args, MF.s_w);
  g.pH = i32At(args, MF.p_h); g.pW = i32At(args, MF.p_w);
  g.sN = <i32>u32Of(args, MF.src_strides, 0); g.sC = <i32>u32Of(args, MF.src_strides, 1);
  g.sRow = <i32>u32Of(args, MF.src_strides, 2); g.sCol = <i32>u32Of(args, MF.src_strides, 3);
  g.src = <usize>u32At(args, srcField) + (<usize>u32At(args, MF.src_offset) << 2);
}

// @ts-ignore: decorator
@inline function plane(g: Geo, p: i32): usize {
  return g.src + (<usize>((p / g.channels) * g.sN + (p % g.channels) * g.sC) << 2);
}

// @ts-ignore: decorator
@inline function at(g: Geo, base: usize, row: i32, col: i32): usize {
  return base + (<usize>(row * g.sRow + col * g.sCol) << 2);
}

export function max_pool_forward(args: usize, scratch: usize): void {
  const g = changetype<Geo>(scratch);
  geo(g, args, MF.x);
  const out = <usize>u32At(args, MF.out), argmax = <usize>u32At(args, MF.argmax);
  const tasks = (g.total + CHUNK - 1) / CHUNK;
  for (let t = claim(args); t < tasks; t = claim(args)) {
    for (let i = t * CHUNK; i < min(g.total, (t + 1) * CHUNK); i++) {
      const ow = i % g.outW, oh = (i / g.outW) % g.outH;
      const base = plane(g, i / (g.outW * g.outH));
      const h0 = oh * g.sH - g.pH, w0 = ow * g.sW - g.pW;
      let best: f32 = 0;
      let arg = -1;
      for (let h = max(h0, 0); h < min(h0 + g.kH, g.inH); h++) {
        for (let w = max(w0, 0); w < min(w0 + g.kW, g.inW); w++) {
          const v = load<f32>(at(g, base, h, w));
          if (arg < 0 || v > best || v != v) {
            best = v;
            arg = h * g.inW + w;
          }
        }
      }
      store<f32>(out + (<usize>i << 2), best);
      store<i32>(argmax + (<usize>i << 2), arg);
    }
  }
}

export function avg_pool_forward(args: usize, scratch: usize): void {
  const g = changetype<Geo>(scratch);
  geo(g, args, AF.x);
  const out = <usize>u32At(args, AF.out);
  const inv: f32 = 1 / <f32>(g.kH * g.kW);
  const tasks = (g.total + CHUNK - 1) / CHUNK;
  for (let t = claim(args); t < tasks; t = claim(args)) {
    for (let i = t * CHUNK; i < min(g.total, (t + 1) * CHUNK); i++) {
      const ow = i % g.outW, oh = (i / g.outW) % g.outH;
      const base = plane(g, i / (g.outW * g.outH));
      const h0 = oh * g.sH - g.pH, w0 = ow * g.sW - g.pW;
      let acc: f32 = 0;
      for (let h = max(h0, 0); h < min(h0 + g.kH, g.inH); h++) {
        for (let w = max(w0, 0); w < min(w0 + g.kW, g.inW); w++) acc += load<f32>(at(g, base, h, w));
      }
      store<f32>(out + (<usize>i << 2), acc * inv);
    }
  }
}

/** Output rows (or columns) whose window covers input position x: [lo, hi). */
// @ts-ignore: decorator
@inline function lo(x: i32, k: i32, stride: i32, pad: i32): i32 {
  return max(x + pad - k + stride, 0) / stride;
}

// @ts-ignore: decorator
@inline function hi(x: i32, stride: i32, pad: i32, outLen: i32): i32 {
  return min((x + pad) / stride + 1, outLen);
}

export function max_pool_backward(args: usize, scratch: usize): void {
  const g = changetype<Geo>(scratch);
  geo(g, args, MB.g);
  const argmax = <usize>u32At(args, MB.argmax), dx = <usize>u32At(args, MB.dx);
  const tasks = (g.total + CHUNK - 1) / CHUNK;
  for (let t = claim(args); t < tasks; t = claim(args)) {
    for (let i = t * CHUNK; i < min(g.total, (t + 1) * CHUNK); i++) {
      const x = i % g.inW, y = (i / g.inW) % g.inH, p = i / (g.inW * g.inH);
      const base = plane(g, p);
      const am = argmax + (<usize>(p * g.outH * g.outW) << 2);
      const me = y * g.inW + x;
      let acc: f32 = 0;
      for (let oh = lo(y, g.kH, g.sH, g.pH); oh < hi(y, g.sH, g.pH, g.outH); oh++) {
        for (let ow = lo(x, g.kW, g.sW, g.pW); ow < hi(x, g.sW, g.pW, g.outW); ow++) {
          if (load<i32>(am + (<usize>(oh * g.outW + ow) << 2)) == me) acc += load<f32>(at(g, base, oh, ow));
        }
      }
      store<f32>(dx + (<usize>i << 2), acc);
    }
  }
}

/** Windows tile the input (stride = kernel, no padding): each window writes its kH·kW gradients. */
export function max_pool_backward_tiled(args: usize, scratch: usize): void {
  const g = changetype<Geo>(scratch);
  geo(g, args, MT.g);
  const argmax = <usize>u32At(args, MT.argmax), dx = <usize>u32At(args, MT.dx);
  const tasks = (g.total + CHUNK - 1) / CHUNK;
  for (let t = claim(args); t < tasks; t = claim(args)) {
    for (let i = t * CHUNK; i < min(g.total, (t + 1) * CHUNK); i++) {
      const ow = i % g.outW, oh = (i / g.outW) % g.outH, p = i / (g.outW * g.outH);
      const v = load<f32>(at(g, plane(g, p), oh, ow));
      const a = load<i32>(argmax + (<usize>i << 2));
      const d = dx + (<usize>(p * g.inH * g.inW) << 2);
      for (let dh = 0; dh < g.kH; dh++) {
        const h = oh * g.kH + dh;
        for (let dw = 0; dw < g.kW; dw++) {
          const me = h * g.inW + ow * g.kW + dw;
          store<f32>(d + (<usize>me << 2), me == a ? v : 0);
        }
      }
    }
  }
}

export function avg_pool_backward(args: usize, scratch: usize): void {
  const g = changetype<Geo>(scratch);
  geo(g, args, AB.g);
  const dx = <usize>u32At(args, AB.dx);
  const inv: f32 = 1 / <f32>(g.kH * g.kW);
  const tasks = (g.total + CHUNK - 1) / CHUNK;
  for (let t = claim(args); t < tasks; t = claim(args)) {
    for (let i = t * CHUNK; i < min(g.total, (t + 1) * CHUNK); i++) {
      const x = i % g.inW, y = (i / g.inW) % g.inH;
      const base = plane(g, i / (g.inW * g.inH));
      let acc: f32 = 0;
      for (let oh = lo(y, g.kH, g.sH, g.pH); oh < hi(y, g.sH, g.pH, g.outH); oh++) {
        for (let ow = lo(x, g.kW, g.sW, g.pW); ow < hi(x, g.sW, g.pW, g.outW); ow++) acc += load<f32>(at(g, base, oh, ow));
      }
      store<f32>(dx + (<usize>i << 2), acc * inv);
    }
  }
}
