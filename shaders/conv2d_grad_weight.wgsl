// @prepend operand_f32.wgsl|operand_f16.wgsl share_subgroup.wgsl|share_workgroup.wgsl tile_16x8.wgsl
// conv2d weight gradient: dw[o, (c, kh, kw)] = Σ_{n, oh, ow} dy[n, o, oh, ow] · x[n, c, ih, iw] with
// ih = oh·stride − pad + kh·dil: a GEMM with a long reduction over N·OH·OW. Each invocation
// computes a 16-output-channel × 8-column tile (Tile, from tile_16x8.wgsl; a column is one
// (c, kh, kw)), its eight columns WG apart; the 16 dy values of a step are loaded a quarter per
// invocation and shared among four (share(), from share_*.wgsl). When the tiles alone are
// too few to keep the device busy, the reduction is split into ranges of rows (n, oh) that write
// partial sums, added up by reduce_partials. grad_bias sums dy over N, OH, OW per channel.
// grad_weight's dy and x hold `Operand`s (operand_*.wgsl), converted to f32 as they are loaded;
// partials, grad_bias's dy (always f32) and the results are f32.

override WG: u32 = 64;

struct Params {
  n: u32, c: u32, h: u32, w: u32,
  o: u32, oh: u32, ow: u32, cols: u32,    // cols = C·kH·kW
  kh: u32, kw: u32, stride_h: u32, stride_w: u32,
  pad_h: i32, pad_w: i32, dil_h: u32, dil_w: u32,
  dy_offset: u32, x_offset: u32, dw_offset: u32,   // element offsets of the views in their bindings
  col_groups: u32,       // workgroups along the columns
  o_groups: u32,         // workgroups along the output channels
  rows_per_split: u32,   // rows (n, oh) each split reduces over
  groups: u32,           // col_groups · o_groups · splits
}

// reduce_partials {src: partials, sum}: sum[i] = Σ_s src[s·m + i]; grad_bias {src: dy, sum: db}: db[o] = Σ dy[n, o, ·].
struct SumParams {
  m: u32,          // reduce_partials: elements per partial; grad_bias: channels O
  splits: u32,     // reduce_partials: partials; grad_bias: N
  inner: u32,      // grad_bias: OH·OW
  src_offset: u32,  // element offsets of the views in their bindings
  sum_offset: u32,
}

// grad_weight {dy, x, dw}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<Operand>;
@group(0) @binding(2) var<storage, read> x: array<Operand>;
@group(0) @binding(3) var<storage, read_write> dw: array<f32>;

@group(0) @binding(0) var<uniform> ps: SumParams;
@group(0) @binding(1) var<storage, read> s_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> s_out: array<f32>;

var<workgroup> bias_sums: array<f32, WG>;

// Four x values at `at`, zero where the tap falls into the padding.
fn load4(at: vec4u, ok: vec4<bool>) -> vec4f {
  return select(vec4f(0.0), vec4f(vec4<Operand>(x[at.x], x[at.y], x[at.z], x[at.w])), ok);
}

// Store output channels o..o+3 of column k into dw (or a partial at `base`), skipping columns
// past the end and channels ≥ O.
fn store_col(v: vec4f, k: u32, o: u32, base: u32) {
  if (k >= p.cols) { return; }
  for (var i = 0u; i < 4u; i++) {
    if (o + i < p.o) { dw[p.dw_offset + base + (o + i) * p.cols + k] = v[i]; }
  }
}

fn store_tile(m: mat4x4f, k: vec4u, o: u32, base: u32) {
  store_col(m[0], k.x, o, base);
  store_col(m[1], k.y, o, base);
  store_col(m[2], k.z, o, base);
  store_col(m[3], k.w, o, base);
}

// Per column: the input channel's offset in an image plus the tap's row and column offsets.
struct Taps {
  plane: vec4u,  // c · H · W
  dy: vec4i,     // kh · dil − pad
  dx: vec4i,     // kw · dil − pad
}

fn taps(k: vec4u) -> Taps {
  let kk = p.kh * p.kw;
  let s = min(k, vec4u(p.cols - 1u));
  let t = s % kk;
  return Taps((s / kk) * p.h * p.w, vec4i(t / p.kw * p.dil_h) - p.pad_h, vec4i(t % p.kw * p.dil_w) - p.pad_w);
}

@compute @workgroup_size(WG)
fn grad_weight(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_index) lid: u32) {
  let wid = workgroup_index(wg, nwg);
  if (wid >= p.groups) { return; }
  let lane = share_lane(lid);
  let cg = wid % p.col_groups;
  let og = (wid / p.col_groups) % p.o_groups;
  let split = wid / (p.col_groups * p.o_groups);
  let o0 = og * 16u;

  let ka = cg * WG * 8u + lid + vec4u(0u, 1u, 2u, 3u) * WG;
  let kb = ka + 4u * WG;
  let ta = taps(ka);
  let tb = taps(kb);

  // This invocation's quarter of the 16 channels: dy rows o0 + 4·lane .. + 3 (clamped below O).
  let ohw = p.oh * p.ow;
  let mine = min(vec4u(o0 + 4u * lane) + vec4u(0u, 1u, 2u, 3u), vec4u(p.o - 1u)) * ohw;

  var acc = Tile();

  let h = i32(p.h);
  let w = i32(p.w);
  let chw = p.c * p.h * p.w;
  let row_end = min((split + 1u) * p.rows_per_split, p.n * p.oh);
  for (var row = split * p.rows_per_split; row < row_end; row++) {
    let n = row / p.oh;
    let oh = row % p.oh;
    let iy = i32(oh * p.stride_h);
    let ya = iy + ta.dy;
    let yb = iy + tb.dy;
    let rowa = (ya >= vec4i(0)) & (ya < vec4i(h));
    let rowb = (yb >= vec4i(0)) & (yb < vec4i(h));
    let xbase = i32(n * chw + p.x_offset);
    let basea = vec4i(ta.plane) + xbase + ya * w;
    let baseb = vec4i(tb.plane) + xbase + yb * w;
    var at_dy = mine + (n * p.o * ohw + oh * p.ow + p.dy_offset);
    var ix = 0;
    for (var ow = 0u; ow < p.ow; ow++) {
      let xa = ta.dx + ix;
      let xb = tb.dx + ix;
      let va = load4(vec4u(basea + xa), rowa & (xa >= vec4i(0)) & (xa < vec4i(w)));
      let vb = load4(vec4u(baseb + xb), rowb & (xb >= vec4i(0)) & (xb < vec4i(w)));
      acc = accumulate(acc, share(vec4f(vec4<Operand>(dy[at_dy.x], dy[at_dy.y], dy[at_dy.z], dy[at_dy.w])), lid), va, vb);
      at_dy += 1u;
      ix += i32(p.stride_w);
    }
  }
  let base = split * p.o * p.cols;
  store_tile(acc.a0, ka, o0 + 4u * lane, base); store_tile(acc.a1, kb, o0 + 4u * lane, base);
  store_tile(acc.a2, ka, o0 + 4u * (lane ^ 1u), base); store_tile(acc.a3, kb, o0 + 4u * (lane ^ 1u), base);
  store_tile(acc.a4, ka, o0 + 4u * (lane ^ 2u), base); store_tile(acc.a5, kb, o0 + 4u * (lane ^ 2u), base);
  store_tile(acc.a6, ka, o0 + 4u * (lane ^ 3u), base); store_tile(acc.a7, kb, o0 + 4u * (lane ^ 3u), base);
}

@compute @workgroup_size(WG)
fn reduce_partials(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
                   @builtin(local_invocation_index) lid: u32) {
  let i = workgroup_index(wg, nwg) * WG + lid;
  if (i >= ps.m) { return; }
  var s = 0.0;
  for (var k = 0u; k < ps.splits; k++) {
    s += s_in[ps.src_offset + k * ps.m + i];
  }
  s_out[ps.sum_offset + i] = s;
}

// One workgroup per channel: each invocation sums a strided share, then a tree in workgroup memory.
@compute @workgroup_size(WG)
fn grad_bias(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
             @builtin(local_invocation_index) lid: u32) {
  let o = workgroup_index(wg, nwg);
  if (o >= ps.m) { return; }
  var s = 0.0;
  for (var n = 0u; n < ps.splits; n++) {
    let base = ps.src_offset + (n * ps.m + o) * ps.inner;
    for (var i = lid; i < ps.inner; i += WG) {
      s += s_in[base + i];
    }
  }
  bias_sums[lid] = s;
  for (var half = WG / 2u; half > 0u; half /= 2u) {
    workgroupBarrier();
    if (lid < half) { bias_sums[lid] += bias_sums[lid + half]; }
  }
  if (lid == 0u) { s_out[ps.sum_offset + o] = bias_sums[0]; }
}
