// float32 → float16, for mixed precision's operand copies (src/ops/half.ts). Written in core WGSL
// (pack2x16float): it runs on every device, so it is tested on any adapter; only the kernels that
// read the halves need shader-f16. Each invocation converts two elements into one u32 word (no
// 16-bit stores). pack2x16float leaves values beyond the f16 range undefined, so overflow to ±inf
// and NaN are written explicitly: a scaled gradient that overflows f16 must reach the loss
// scaler's finite check as inf, not as some large finite value.

override WG: u32 = 256;

struct Params {
  n: u32,           // elements to convert
  src_offset: u32,  // element offset of the source in its binding
  dst_offset: u32,  // element offset of the destination (even: whole 32-bit words)
  groups: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>; // f16 pairs

// The f16 bits of x, rounded to nearest (x's sign kept for zero, inf and NaN).
fn half_bits(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  let sign = (b >> 16u) & 0x8000u;
  let mag = b & 0x7fffffffu;
  if (mag > 0x7f800000u) { return sign | 0x7e00u; }  // NaN
  if (mag >= 0x477ff000u) { return sign | 0x7c00u; } // |x| ≥ 65520 rounds past the largest half (65504)
  return pack2x16float(vec2f(clamp(x, -65504.0, 65504.0), 0.0)) & 0xffffu; // (65504, 65520) rounds to 65504
}

@compute @workgroup_size(WG)
fn to_half(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_index) lid: u32) {
  let wid = workgroup_index(wg, nwg);
  if (wid >= p.groups) { return; }
  let j = wid * WG + lid;
  let i = 2u * j;
  if (i >= p.n) { return; }
  var hi = 0u;
  if (i + 1u < p.n) { hi = half_bits(src[p.src_offset + i + 1u]) << 16u; }
  dst[p.dst_offset / 2u + j] = half_bits(src[p.src_offset + i]) | hi;
}
