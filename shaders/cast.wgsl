// float32 → float16, for mixed precision's operand copies and weights stored in f16, and back
// (src/ops/half.ts). Written in core WGSL (pack2x16float, unpack2x16float): it runs on every
// device, so it is tested on any adapter; only the kernels that read the halves need shader-f16. Each invocation converts two elements into one u32 word (no
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
// {src, dst}: to_half
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>; // f16 pairs
// {src, dst}: to_float (the same bindings, the other way round)
@group(0) @binding(1) var<storage, read> src_halves: array<u32>; // f16 pairs
@group(0) @binding(2) var<storage, read_write> dst_floats: array<f32>;

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

// The f32 value of f16 bits, decoded by hand (exact for subnormals, infinities and NaN, which
// unpack2x16float need not keep).
fn half_value(h: u32) -> f32 {
  let sign = (h & 0x8000u) << 16u;
  let e = (h >> 10u) & 0x1fu;
  let frac = h & 0x3ffu;
  if (e == 0u) {
    let mag = f32(frac) * 5.9604644775390625e-8; // frac · 2^-24: zero or a subnormal half
    return select(mag, -mag, sign != 0u);
  }
  if (e == 31u) { return bitcast<f32>(sign | 0x7f800000u | (frac << 13u)); } // inf, NaN
  return bitcast<f32>(sign | ((e + 112u) << 23u) | (frac << 13u));
}

// float16 → float32 (exact: every f16 value is an f32 value). src_offset is even (whole words of
// halves); each invocation expands one word into two floats.
@compute @workgroup_size(WG)
fn to_float(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_index) lid: u32) {
  let wid = workgroup_index(wg, nwg);
  if (wid >= p.groups) { return; }
  let j = wid * WG + lid;
  let i = 2u * j;
  if (i >= p.n) { return; }
  let w = src_halves[p.src_offset / 2u + j];
  dst_floats[p.dst_offset + i] = half_value(w & 0xffffu);
  if (i + 1u < p.n) { dst_floats[p.dst_offset + i + 1u] = half_value(w >> 16u); }
}
