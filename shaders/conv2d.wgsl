// @prepend operand_f32.wgsl|operand_f16.wgsl share_subgroup.wgsl|share_workgroup.wgsl tile_16x8.wgsl
// conv2d forward as an implicit GEMM: out[O, N·OH·OW] = W[O, C·kH·kW] · im2col(x), without
// materialising im2col. Each invocation computes a 16-channel × 8-pixel output tile (Tile, from
// tile_16x8.wgsl), so every loaded x value feeds 16 multiply-adds. The 16 weights of a step are
// loaded a quarter per invocation and shared among four invocations (share(), from
// share_*.wgsl); both files are prepended at pipeline creation. The eight pixels of an
// invocation are WG apart, so that neighbouring invocations read neighbouring addresses.
//
// The weights are first packed (pack_weight) into [kH·kW, C, O16]: for a tap (kh, kw) and input
// channel c, the tile's 16 output channels are four consecutive vec4s, zero beyond O.
//
// Two loop orders over the reduction (C · taps): with many channels, taps outside and channels
// inside, so each pixel's bounds check and address are computed once per tap and only advanced by
// H·W per channel; with few channels (TAPS_INNER), channels outside and taps inside, because on
// SwiftShader entering and leaving a short inner loop costs more than recomputing addresses.
// Measured there (N=16, 28×28, O=32, k=5): C=1 0.29 → 0.83 GFLOP per CPU-second, C=8 0.88 → 0.98;
// at C=16 and more the first order wins (1.32 vs 1.19).
//
// Also measured on SwiftShader (N=32 C=32 28×28 O=64 k=5): 16×8 tiles with shared weights beat
// 8×8 tiles loading their own weights by about 1.4×; 16×16 tiles spill and run 2.5× slower, and
// unrolling the reduction by 2 or 4 is slower too.
//
// x and the packed weights hold `Operand`s (operand_*.wgsl: f32, or f16 for mixed precision, which
// pack_weight then writes), converted to f32 as they are loaded; bias, output and arithmetic are f32.

override WG: u32 = 64;
override HAS_BIAS: bool = false;
override TAPS_INNER: bool = false;

struct Params {
  n: u32, c: u32, h: u32, w: u32,
  o: u32, oh: u32, ow: u32, o_pad: u32,   // o_pad: O rounded up to the tile (16)
  kh: u32, kw: u32, stride_h: u32, stride_w: u32,
  pad_h: i32, pad_w: i32, dil_h: u32, dil_w: u32,
  x_offset: u32, bias_offset: u32, out_offset: u32,   // element offsets of the views in their bindings
  pixel_groups: u32,  // workgroups along the pixels; the channel tile is wid / pixel_groups
  groups: u32,        // workgroups in all
}

// pack_weight: w[o, c, kh, kw] (any strides) → packed[(kh·kW + kw)·R + r][l], l < L padded to
// cols_pad with zeros. (r, l) = (c, o) for the forward pass, (o, c) for the input gradient.
struct PackParams {
  rows: u32,        // R
  cols: u32,        // L
  cols_pad: u32,
  kw: u32,
  stride_row: u32,  // element stride of w along r's dimension
  stride_col: u32,  // element stride of w along l's dimension
  stride_kh: u32,
  stride_kw: u32,
  w_offset: u32,
  n: u32,           // kH·kW · R · cols_pad
}

// conv2d {x, wp, bias, out}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<Operand>;
@group(0) @binding(2) var<storage, read> wp: array<Operand4>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

// pack_weight {w, packed} (Params: PackParams)
@group(0) @binding(0) var<uniform> pk: PackParams;
@group(0) @binding(1) var<storage, read> pk_w: array<f32>;
@group(0) @binding(2) var<storage, read_write> pk_out: array<Operand>;

// Which of four input positions (y, x) lie inside the h × w image (the others are padding).
fn inside(y: vec4i, x: vec4i, h: i32, w: i32) -> vec4<bool> {
  return (y >= vec4i(0)) & (y < vec4i(h)) & (x >= vec4i(0)) & (x < vec4i(w));
}

// Four x values at `at`, zero where the tap falls into the padding. Addresses of padding taps
// may fall outside x; they are read (clamped) and dropped.
fn load4(at: vec4u, ok: vec4<bool>) -> vec4f {
  return select(vec4f(0.0), vec4f(vec4<Operand>(x[at.x], x[at.y], x[at.z], x[at.w])), ok);
}

// Store channels o..o+3 of pixel q (flat over N·OH·OW), skipping pixels past the end and
// channels ≥ O.
fn store_pixel(v: vec4f, q: u32, o: u32) {
  let ohw = p.oh * p.ow;
  if (q >= p.n * ohw) { return; }
  let base = (q / ohw) * p.o * ohw + q % ohw;
  for (var i = 0u; i < 4u; i++) {
    if (o + i < p.o) { out[p.out_offset + base + (o + i) * ohw] = v[i]; }
  }
}

fn store_tile(m: mat4x4f, q: vec4u, o: u32) {
  store_pixel(m[0], q.x, o);
  store_pixel(m[1], q.y, o);
  store_pixel(m[2], q.z, o);
  store_pixel(m[3], q.w, o);
}

fn splat(b: vec4f) -> mat4x4f {
  return mat4x4f(b, b, b, b);
}

fn bias4(o: u32) -> vec4f {
  let i = min(vec4u(o) + vec4u(0u, 1u, 2u, 3u), vec4u(p.o - 1u)) + p.bias_offset;
  let b = vec4f(bias[i.x], bias[i.y], bias[i.z], bias[i.w]);
  return select(vec4f(0.0), b, vec4u(o) + vec4u(0u, 1u, 2u, 3u) < vec4u(p.o));
}

@compute @workgroup_size(WG)
fn conv2d(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
          @builtin(local_invocation_index) lid: u32) {
  let wid = workgroup_index(wg, nwg);
  if (wid >= p.groups) { return; }
  let lane = share_lane(lid);
  let o0 = (wid / p.pixel_groups) * 16u;
  let ohw = p.oh * p.ow;
  let npix = p.n * ohw;
  let hw = p.h * p.w;

  // The tile's pixels (flat over N·OH·OW); those past the end are computed on pixel 0 and dropped.
  let qa = (wid % p.pixel_groups) * WG * 8u + lid + vec4u(0u, 1u, 2u, 3u) * WG;
  let qb = qa + 4u * WG;
  let ina = qa < vec4u(npix);
  let inb = qb < vec4u(npix);
  let sa = select(vec4u(0u), qa, ina);
  let sb = select(vec4u(0u), qb, inb);
  // Top-left input position of each pixel's window, and the start of its image in x.
  let ya = vec4i((sa % ohw) / p.ow * p.stride_h) - p.pad_h;
  let yb = vec4i((sb % ohw) / p.ow * p.stride_h) - p.pad_h;
  let xa = vec4i((sa % ohw) % p.ow * p.stride_w) - p.pad_w;
  let xb = vec4i((sb % ohw) % p.ow * p.stride_w) - p.pad_w;
  let basea = vec4i((sa / ohw) * p.c * hw + p.x_offset);
  let baseb = vec4i((sb / ohw) * p.c * hw + p.x_offset);

  var acc = Tile();
  if (HAS_BIAS) {
    let b = mat4x4f(bias4(o0 + 4u * lane), bias4(o0 + 4u * (lane ^ 1u)), bias4(o0 + 4u * (lane ^ 2u)), bias4(o0 + 4u * (lane ^ 3u)));
    acc = Tile(splat(b[0]), splat(b[0]), splat(b[1]), splat(b[1]), splat(b[2]), splat(b[2]), splat(b[3]), splat(b[3]));
  }

  let h = i32(p.h);
  let w = i32(p.w);
  let c = p.c;
  let o_vecs = p.o_pad / 4u;
  if (TAPS_INNER) {
    let taps = p.kh * p.kw;
    for (var ci = 0u; ci < c; ci++) {
      let plane = i32(ci * hw);
      for (var t = 0u; t < taps; t++) {
        let iya = ya + i32(t / p.kw * p.dil_h);
        let iyb = yb + i32(t / p.kw * p.dil_h);
        let ixa = xa + i32(t % p.kw * p.dil_w);
        let ixb = xb + i32(t % p.kw * p.dil_w);
        let va = load4(vec4u(basea + plane + iya * w + ixa), ina & inside(iya, ixa, h, w));
        let vb = load4(vec4u(baseb + plane + iyb * w + ixb), inb & inside(iyb, ixb, h, w));
        acc = accumulate(acc, share(vec4f(wp[(t * c + ci) * o_vecs + o0 / 4u + lane]), lid), va, vb);
      }
    }
  } else {
    for (var kh = 0u; kh < p.kh; kh++) {
      let iya = ya + i32(kh * p.dil_h);
      let iyb = yb + i32(kh * p.dil_h);
      for (var kw = 0u; kw < p.kw; kw++) {
        let ixa = xa + i32(kw * p.dil_w);
        let ixb = xb + i32(kw * p.dil_w);
        let oka = ina & inside(iya, ixa, h, w);
        let okb = inb & inside(iyb, ixb, h, w);
        var ata = vec4u(basea + iya * w + ixa);
        var atb = vec4u(baseb + iyb * w + ixb);
        var wi = (kh * p.kw + kw) * c * o_vecs + o0 / 4u + lane;
        for (var ci = 0u; ci < c; ci++) {
          acc = accumulate(acc, share(vec4f(wp[wi]), lid), load4(ata, oka), load4(atb, okb));
          ata += hw;
          atb += hw;
          wi += o_vecs;
        }
      }
    }
  }
  store_tile(acc.a0, qa, o0 + 4u * lane); store_tile(acc.a1, qb, o0 + 4u * lane);
  store_tile(acc.a2, qa, o0 + 4u * (lane ^ 1u)); store_tile(acc.a3, qb, o0 + 4u * (lane ^ 1u));
  store_tile(acc.a4, qa, o0 + 4u * (lane ^ 2u)); store_tile(acc.a5, qb, o0 + 4u * (lane ^ 2u));
  store_tile(acc.a6, qa, o0 + 4u * (lane ^ 3u)); store_tile(acc.a7, qb, o0 + 4u * (lane ^ 3u));
}

@compute @workgroup_size(WG)
fn pack_weight(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_index) lid: u32) {
  let i = workgroup_index(wg, nwg) * WG + lid;
  if (i >= pk.n) { return; }
  let l = i % pk.cols_pad;
  let r = (i / pk.cols_pad) % pk.rows;
  let tap = i / (pk.cols_pad * pk.rows);
  let src = pk.w_offset + min(l, pk.cols - 1u) * pk.stride_col + r * pk.stride_row + (tap / pk.kw) * pk.stride_kh +
            (tap % pk.kw) * pk.stride_kw;
  pk_out[i] = Operand(select(0.0, pk_w[src], l < pk.cols));
}
