// 2-D pooling on NCHW: max and average, forward and backward. One invocation per output element
// in the forward kernels, one per input element in the backward kernels. The backward kernels
// gather instead of scatter (no atomics): an input element visits every output window that can
// contain it, so overlapping windows (stride < kernel) need no special case.
//
// Padding: max pooling treats padded positions as -inf; average pooling counts them as zeros and
// always divides by kH·kW (PyTorch's default count_include_pad=True).
//
// Bindings follow the engine's layout (src/kernels/kernel.ts): params at 0, storage from 1.
// Entry points declare different storage variables at the same binding; each uses only its own.
// `src` is the tensor an entry point reads through its strides (x forward, the output gradient
// backward); the others are contiguous.

override WG: u32 = 256;

struct Params {
  total: u32,       // invocations: output elements (forward) or input elements (backward)
  channels: u32,    // C
  in_h: u32,
  in_w: u32,
  out_h: u32,
  out_w: u32,
  k_h: u32,
  k_w: u32,
  s_h: u32,
  s_w: u32,
  p_h: u32,
  p_w: u32,
  src_strides: vec4u, // element strides (N, C, H, W) of src
  src_offset: u32,    // element offsets of the views in their bindings
  out_offset: u32,
  argmax_offset: u32,
  dx_offset: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

// max_forward {src, out, argmax}: out = max over the window, argmax = h·W + w of the (first) maximum in its plane
@group(0) @binding(1) var<storage, read> mf_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> mf_out: array<f32>;
@group(0) @binding(3) var<storage, read_write> mf_argmax: array<i32>;

// avg_forward {src, out}: out = sum over the window / (kH·kW)
@group(0) @binding(1) var<storage, read> af_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> af_out: array<f32>;

// max_backward, max_backward_tiled {src, argmax, dx}: dx = Σ g over the windows whose argmax is this element
@group(0) @binding(1) var<storage, read> mb_g: array<f32>;
@group(0) @binding(2) var<storage, read> mb_argmax: array<i32>;
@group(0) @binding(3) var<storage, read_write> mb_dx: array<f32>;

// avg_backward {src, dx}: dx = Σ g / (kH·kW) over the windows that contain this element
@group(0) @binding(1) var<storage, read> ab_g: array<f32>;
@group(0) @binding(2) var<storage, read_write> ab_dx: array<f32>;

fn flat_index(wg: vec3u, nwg: vec3u, lid: u32) -> u32 {
  return workgroup_index(wg, nwg) * WG + lid;
}

// Element i of a contiguous [N, C, rows, cols] tensor as (plane n·C + c, row, col).
fn split(i: u32, rows: u32, cols: u32) -> vec3u {
  let col = i % cols;
  let row = (i / cols) % rows;
  return vec3u(i / (cols * rows), row, col);
}

// Offset of (plane, row, col) in the strided source.
fn src_index(plane: u32, row: u32, col: u32) -> u32 {
  let n = plane / p.channels;
  let c = plane % p.channels;
  let s = p.src_strides;
  return p.src_offset + n * s.x + c * s.y + row * s.z + col * s.w;
}

// The output rows (or columns) whose window covers input position x: [lo, hi), for windows
// starting at o·stride − pad with length k.
fn covering(x: u32, k: u32, stride: u32, pad: u32, out_len: u32) -> vec2u {
  let xp = i32(x + pad);
  let lo = max(xp - i32(k) + i32(stride), 0) / i32(stride); // ceil((xp − k + 1) / stride), ≥ 0
  let hi = min(u32(xp) / stride + 1u, out_len);
  return vec2u(u32(lo), hi);
}

// By the bits: compilers that assume no NaNs (SwiftShader does) fold `v != v` to false.
fn is_nan(v: f32) -> bool {
  return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

@compute @workgroup_size(WG)
fn max_forward(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wg, nwg, lid);
  if (i >= p.total) { return; }
  let o = split(i, p.out_h, p.out_w);
  let h0 = i32(o.y * p.s_h) - i32(p.p_h);
  let w0 = i32(o.z * p.s_w) - i32(p.p_w);
  // Padded positions are never candidates (-inf); the validated shapes leave every window at
  // least one real element, which the first iteration that reaches one takes.
  var best = 0.0;
  var arg = -1;
  for (var dh = 0u; dh < p.k_h; dh++) {
    let h = h0 + i32(dh);
    if (h < 0 || h >= i32(p.in_h)) { continue; }
    for (var dw = 0u; dw < p.k_w; dw++) {
      let w = w0 + i32(dw);
      if (w < 0 || w >= i32(p.in_w)) { continue; }
      let v = mf_x[src_index(o.x, u32(h), u32(w))];
      // Strictly greater keeps the first maximum; NaN wins, so it propagates like PyTorch.
      if (arg < 0 || v > best || is_nan(v)) {
        best = v;
        arg = h * i32(p.in_w) + w;
      }
    }
  }
  mf_out[p.out_offset + i] = best;
  mf_argmax[p.argmax_offset + i] = arg;
}

@compute @workgroup_size(WG)
fn avg_forward(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wg, nwg, lid);
  if (i >= p.total) { return; }
  let o = split(i, p.out_h, p.out_w);
  let h0 = i32(o.y * p.s_h) - i32(p.p_h);
  let w0 = i32(o.z * p.s_w) - i32(p.p_w);
  var acc = 0.0;
  for (var dh = 0u; dh < p.k_h; dh++) {
    let h = h0 + i32(dh);
    if (h < 0 || h >= i32(p.in_h)) { continue; }
    for (var dw = 0u; dw < p.k_w; dw++) {
      let w = w0 + i32(dw);
      if (w < 0 || w >= i32(p.in_w)) { continue; }
      acc += af_x[src_index(o.x, u32(h), u32(w))];
    }
  }
  af_out[p.out_offset + i] = acc / f32(p.k_h * p.k_w);
}

@compute @workgroup_size(WG)
fn max_backward(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wg, nwg, lid);
  if (i >= p.total) { return; }
  let x = split(i, p.in_h, p.in_w);
  let rows = covering(x.y, p.k_h, p.s_h, p.p_h, p.out_h);
  let cols = covering(x.z, p.k_w, p.s_w, p.p_w, p.out_w);
  let me = i32(x.y * p.in_w + x.z);
  let plane = x.x * p.out_h * p.out_w;
  var acc = 0.0;
  for (var oh = rows.x; oh < rows.y; oh++) {
    for (var ow = cols.x; ow < cols.y; ow++) {
      if (mb_argmax[p.argmax_offset + plane + oh * p.out_w + ow] == me) {
        acc += mb_g[src_index(x.x, oh, ow)];
      }
    }
  }
  mb_dx[p.dx_offset + i] = acc;
}

// max_backward when the windows tile the input exactly (stride = kernel, no padding, sizes that
// divide): one invocation per window writes its kH·kW input gradients, the gradient at the
// argmax and zeros elsewhere. A quarter of the invocations of max_backward for 2×2 pools, and
// no per-element search over covering windows. (`total` counts windows here.)
@compute @workgroup_size(WG)
fn max_backward_tiled(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
                      @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wg, nwg, lid);
  if (i >= p.total) { return; }
  let o = split(i, p.out_h, p.out_w);
  let g = mb_g[src_index(o.x, o.y, o.z)];
  let at = mb_argmax[p.argmax_offset + i];
  let plane = o.x * p.in_h * p.in_w;
  for (var dh = 0u; dh < p.k_h; dh++) {
    let h = o.y * p.k_h + dh;
    for (var dw = 0u; dw < p.k_w; dw++) {
      let me = h * p.in_w + o.z * p.k_w + dw;
      mb_dx[p.dx_offset + plane + me] = select(0.0, g, i32(me) == at);
    }
  }
}

@compute @workgroup_size(WG)
fn avg_backward(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wg, nwg, lid);
  if (i >= p.total) { return; }
  let x = split(i, p.in_h, p.in_w);
  let rows = covering(x.y, p.k_h, p.s_h, p.p_h, p.out_h);
  let cols = covering(x.z, p.k_w, p.s_w, p.p_w, p.out_w);
  var acc = 0.0;
  for (var oh = rows.x; oh < rows.y; oh++) {
    for (var ow = cols.x; ow < cols.y; ow++) {
      acc += ab_g[src_index(x.x, oh, ow)];
    }
  }
  ab_dx[p.dx_offset + i] = acc / f32(p.k_h * p.k_w);
}
