// 2-D pooling on NCHW with the semantics of shaders/pool.wgsl: max (padding is −inf, the first
// maximum wins, NaN wins; argmax = h·W + w in its plane) and average (padding counts as zero,
// divided by kH·kW), forward, and backward as gathers (every input element sums the windows that
// cover it); max_backward_tiled for windows that tile the input exactly. The source `src` (x
// forward, the output gradient backward) is read through src_strides (N, C, H, W); the other
// tensors are contiguous; each from its <binding>_offset. Tasks are groups of rows of the elements a kernel writes (output
// rows forward, input rows backward, window rows for the tiled case); within a row, columns are
// counted, never divided out.

import { claim, i32At, u32At, u32Of } from './common';
import { max_pool_forward as MF, avg_pool_forward as AF, max_pool_backward as MB, max_pool_backward_tiled as MT, avg_pool_backward as AB } from './generated/fields';

/** Elements per task, roughly: whole rows of them. */
// @ts-ignore: decorator
@inline const CHUNK: i32 = 2048;

/** Rows per task for rows of `cols` elements. */
// @ts-ignore: decorator
@inline function rowsPerTask(cols: i32): i32 {
  return max(1, CHUNK / max(cols, 1));
}

/** The pooling geometry; every entry point's fields start with the same names, at the same offsets. */
class Geo {
  total: i32; channels: i32; inH: i32; inW: i32; outH: i32; outW: i32;
  kH: i32; kW: i32; sH: i32; sW: i32; pH: i32; pW: i32;
  sN: i32; sC: i32; sRow: i32; sCol: i32;
  src: usize;
}

// @ts-ignore: decorator
@inline function geo(g: Geo, args: usize, srcField: usize): void {
  // Every pooling kernel has the same Params (offsets as max_pool_forward's); the bindings follow.
  g.total = i32At(args, MF.total); g.channels = i32At(args, MF.channels);
  g.inH = i32At(args, MF.in_h); g.inW = i32At(args, MF.in_w); g.outH = i32At(args, MF.out_h); g.outW = i32At(args, MF.out_w);
  g.kH = i32At(args, MF.k_h); g.kW = i32At(args, MF.k_w); g.sH = i32At(args, MF.s_h); g.sW = i32At(args, MF.s_w);
  g.pH = i32At(args, MF.p_h); g.pW = i32At(args, MF.p_w);
  g.sN = <i32>u32Of(args, MF.src_strides, 0); g.sC = <i32>u32Of(args, MF.src_strides, 1);
  g.sRow = <i32>u32Of(args, MF.src_strides, 2); g.sCol = <i32>u32Of(args, MF.src_strides, 3);
  g.src = <usize>u32At(args, srcField) + (<usize>u32At(args, MF.src_offset) << 2);
}

/** A binding of a pooling kernel plus its view's element offset (a Params field). */
// @ts-ignore: decorator
@inline function view(args: usize, binding: usize, offsetField: usize): usize {
  return <usize>u32At(args, binding) + (<usize>u32At(args, offsetField) << 2);
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
  geo(g, args, MF.bind.src);
  const out = view(args, MF.bind.out, MF.out_offset), argmax = view(args, MF.bind.argmax, MF.argmax_offset);
  const rows = g.total / g.outW, per = rowsPerTask(g.outW);
  const tasks = (rows + per - 1) / per;
  const kH = g.kH, kW = g.kW, sW = g.sW, inW = g.inW, sRow = g.sRow, sCol = g.sCol;
  for (let t = claim(args); t < tasks; t = claim(args)) {
    for (let row = t * per; row < min(rows, (t + 1) * per); row++) {
      const oh = row % g.outH;
      const base = plane(g, row / g.outH);
      const h0 = oh * g.sH - g.pH;
      const hLo = max(h0, 0), hHi = min(h0 + kH, g.inH);
      let i = row * g.outW;
      let ow = 0, w0 = -g.pW;
      if (kW == 2 && sW == 2 && w0 == 0 && sCol == 1) {
        // Four windows side by side: the even and odd lanes of eight inputs per window row.
        for (; ow + 4 <= g.outW && w0 + 8 <= inW; ow += 4, w0 += 8, i += 4) {
          let best = f32x4.splat(0), arg = i32x4.splat(-1);
          for (let h = hLo; h < hHi; h++) {
            const p = base + (<usize>(h * sRow + w0) << 2);
            const lo4 = v128.load(p), hi4 = v128.load(p, 16);
            const idx = i32x4.add(i32x4.splat(h * inW + w0), i32x4(0, 2, 4, 6));
            for (let dw = 0; dw < 2; dw++) {
              const v = dw == 0 ? v128.shuffle<f32>(lo4, hi4, 0, 2, 4, 6) : v128.shuffle<f32>(lo4, hi4, 1, 3, 5, 7);
              const take = v128.or(v128.or(i32x4.lt_s(arg, i32x4.splat(0)), f32x4.gt(v, best)), f32x4.ne(v, v));
              best = v128.bitselect(v, best, take);
              arg = v128.bitselect(i32x4.add(idx, i32x4.splat(dw)), arg, take);
            }
          }
          v128.store(out + (<usize>i << 2), best);
          v128.store(argmax + (<usize>i << 2), arg);
        }
      }
      for (; ow < g.outW; ow++, w0 += sW, i++) {
        const wLo = max(w0, 0), wHi = min(w0 + kW, inW);
        let best: f32 = 0;
        let arg = -1;
        for (let h = hLo; h < hHi; h++) {
          const p = base + (<usize>(h * sRow) << 2);
          for (let w = wLo; w < wHi; w++) {
            const v = load<f32>(p + (<usize>(w * sCol) << 2));
            if (arg < 0 || v > best || v != v) {
              best = v;
              arg = h * inW + w;
            }
          }
        }
        store<f32>(out + (<usize>i << 2), best);
        store<i32>(argmax + (<usize>i << 2), arg);
      }
    }
  }
}

export function avg_pool_forward(args: usize, scratch: usize): void {
  const g = changetype<Geo>(scratch);
  geo(g, args, AF.bind.src);
  const out = view(args, AF.bind.out, AF.out_offset);
  const inv: f32 = 1 / <f32>(g.kH * g.kW);
  const rows = g.total / g.outW, per = rowsPerTask(g.outW);
  const tasks = (rows + per - 1) / per;
  const kH = g.kH, kW = g.kW, sW = g.sW, inW = g.inW, sRow = g.sRow, sCol = g.sCol;
  for (let t = claim(args); t < tasks; t = claim(args)) {
    for (let row = t * per; row < min(rows, (t + 1) * per); row++) {
      const oh = row % g.outH;
      const base = plane(g, row / g.outH);
      const h0 = oh * g.sH - g.pH;
      const hLo = max(h0, 0), hHi = min(h0 + kH, g.inH);
      let i = row * g.outW;
      for (let ow = 0, w0 = -g.pW; ow < g.outW; ow++, w0 += sW, i++) {
        const wLo = max(w0, 0), wHi = min(w0 + kW, inW);
        let acc: f32 = 0;
        for (let h = hLo; h < hHi; h++) {
          const p = base + (<usize>(h * sRow) << 2);
          for (let w = wLo; w < wHi; w++) acc += load<f32>(p + (<usize>(w * sCol) << 2));
        }
        store<f32>(out + (<usize>i << 2), acc * inv);
      }
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
  geo(g, args, MB.bind.src);
  const argmax = view(args, MB.bind.argmax, MB.argmax_offset), dx = view(args, MB.bind.dx, MB.dx_offset);
  const rows = g.total / g.inW, per = rowsPerTask(g.inW);
  const tasks = (rows + per - 1) / per;
  for (let t = claim(args); t < tasks; t = claim(args)) {
    for (let row = t * per; row < min(rows, (t + 1) * per); row++) {
      const y = row % g.inH, p = row / g.inH;
      const base = plane(g, p);
      const am = argmax + (<usize>(p * g.outH * g.outW) << 2);
      const ohLo = lo(y, g.kH, g.sH, g.pH), ohHi = hi(y, g.sH, g.pH, g.outH);
      let i = row * g.inW;
      for (let x = 0; x < g.inW; x++, i++) {
        const me = y * g.inW + x;
        const owLo = lo(x, g.kW, g.sW, g.pW), owHi = hi(x, g.sW, g.pW, g.outW);
        let acc: f32 = 0;
        for (let oh = ohLo; oh < ohHi; oh++) {
          for (let ow = owLo; ow < owHi; ow++) {
            if (load<i32>(am + (<usize>(oh * g.outW + ow) << 2)) == me) acc += load<f32>(at(g, base, oh, ow));
          }
        }
        store<f32>(dx + (<usize>i << 2), acc);
      }
    }
  }
}

/** Windows tile the input (stride = kernel, no padding): each window writes its kH·kW gradients. */
export function max_pool_backward_tiled(args: usize, scratch: usize): void {
  const g = changetype<Geo>(scratch);
  geo(g, args, MT.bind.src);
  const argmax = view(args, MT.bind.argmax, MT.argmax_offset), dx = view(args, MT.bind.dx, MT.dx_offset);
  const rows = g.total / g.outW, per = rowsPerTask(g.outW);
  const tasks = (rows + per - 1) / per;
  const kH = g.kH, kW = g.kW, inW = g.inW;
  for (let t = claim(args); t < tasks; t = claim(args)) {
    for (let row = t * per; row < min(rows, (t + 1) * per); row++) {
      const oh = row % g.outH, p = row / g.outH;
      const src = plane(g, p) + (<usize>(oh * g.sRow) << 2);
      const d = dx + (<usize>(p * g.inH * inW) << 2);
      let i = row * g.outW;
      let ow = 0;
      if (kW == 2 && g.sCol == 1) {
        // Four windows at once: each window row is eight consecutive elements of dx.
        for (; ow + 4 <= g.outW; ow += 4, i += 4) {
          const v = v128.load(src + (<usize>ow << 2)), a = v128.load(argmax + (<usize>i << 2));
          const v0 = v128.shuffle<f32>(v, v, 0, 0, 1, 1), v1 = v128.shuffle<f32>(v, v, 2, 2, 3, 3);
          const a0 = v128.shuffle<i32>(a, a, 0, 0, 1, 1), a1 = v128.shuffle<i32>(a, a, 2, 2, 3, 3);
          for (let dh = 0; dh < kH; dh++) {
            const me = (oh * kH + dh) * inW + ow * 2;
            const m0 = i32x4.add(i32x4.splat(me), i32x4(0, 1, 2, 3)), m1 = i32x4.add(m0, i32x4.splat(4));
            v128.store(d + (<usize>me << 2), v128.and(v0, i32x4.eq(m0, a0)));
            v128.store(d + (<usize>me << 2), v128.and(v1, i32x4.eq(m1, a1)), 16);
          }
        }
      }
      for (; ow < g.outW; ow++, i++) {
        const v = load<f32>(src + (<usize>(ow * g.sCol) << 2));
        const a = load<i32>(argmax + (<usize>i << 2));
        for (let dh = 0; dh < kH; dh++) {
          let me = (oh * kH + dh) * inW + ow * kW;
          for (let dw = 0; dw < kW; dw++, me++) store<f32>(d + (<usize>me << 2), me == a ? v : 0);
        }
      }
    }
  }
}

export function avg_pool_backward(args: usize, scratch: usize): void {
  const g = changetype<Geo>(scratch);
  geo(g, args, AB.bind.src);
  const dx = view(args, AB.bind.dx, AB.dx_offset);
  const inv: f32 = 1 / <f32>(g.kH * g.kW);
  const rows = g.total / g.inW, per = rowsPerTask(g.inW);
  const tasks = (rows + per - 1) / per;
  for (let t = claim(args); t < tasks; t = claim(args)) {
    for (let row = t * per; row < min(rows, (t + 1) * per); row++) {
      const y = row % g.inH;
      const base = plane(g, row / g.inH);
      const ohLo = lo(y, g.kH, g.sH, g.pH), ohHi = hi(y, g.sH, g.pH, g.outH);
      let i = row * g.inW;
      for (let x = 0; x < g.inW; x++, i++) {
        const owLo = lo(x, g.kW, g.sW, g.pW), owHi = hi(x, g.sW, g.pW, g.outW);
        let acc: f32 = 0;
        for (let oh = ohLo; oh < ohHi; oh++) {
          for (let ow = owLo; ow < owHi; ow++) acc += load<f32>(at(g, base, oh, ow));
        }
        store<f32>(dx + (<usize>i << 2), acc * inv);
      }
    }
  }
}
