// @prepend operand_f32.wgsl|operand_f16.wgsl share_subgroup.wgsl|share_workgroup.wgsl tile_16x8.wgsl
// conv2d input gradient: dx[n, c, ih, iw] = Σ_{o, kh, kw} dy[n, o, oh, ow] · w[o, c, kh, kw] over the
// taps with ih = oh·stride − pad + kh·dil (and the same along w): a transposed convolution, as
// a gather (each dx element is written once, no atomics).
//
// With stride s > 1 only every s-th tap reaches a given ih. The pixels are therefore split into
// s_h·s_w phases (ih mod s_h, iw mod s_w), one dispatch each: within a phase, whether a tap
// reaches the pixels is the same for all of them (a uniform skip) and oh = i + off is exact,
// so no work is spent on taps that miss.
//
// The tiling mirrors conv2d.wgsl: 16 input channels × 8 pixels per invocation (Tile, from
// tile_16x8.wgsl), the 16 weights of a step shared among four invocations (share(), from
// share_*.wgsl), the weight packed as [kH·kW, O, C16] by conv2d.wgsl's pack_weight, and the
// same two loop orders: output channels inside, or (TAPS_INNER, for few output channels) outside.
// dy and the packed weights hold `Operand`s (operand_*.wgsl), converted to f32 as they are loaded.

override WG: u32 = 64;
override TAPS_INNER: bool = false;

struct Params {
  n: u32, c: u32, h: u32, w: u32,
  o: u32, oh: u32, ow: u32, c_pad: u32,   // c_pad: C rounded up to the tile (16)
  kh: u32, kw: u32, stride_h: u32, stride_w: u32,
  pad_h: i32, pad_w: i32, dil_h: u32, dil_w: u32,
  dy_offset: u32, dx_offset: u32,   // element offsets of the views in their bindings
  phase_h: u32, phase_w: u32,   // this dispatch's pixels: ih = phase_h + stride_h·i, iw likewise
  rows: u32, cols: u32,         // how many i and j there are
  pixel_groups: u32,
  groups: u32,
}

// grad_input {dy, wp, dx}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<Operand>;
@group(0) @binding(2) var<storage, read> wp: array<Operand4>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

// Which of four output positions (y, x) lie inside the oh × ow output.
fn inside(y: vec4i, x: vec4i, oh: i32, ow: i32) -> vec4<bool> {
  return (y >= vec4i(0)) & (y < vec4i(oh)) & (x >= vec4i(0)) & (x < vec4i(ow));
}

// Four dy values at `at`, zero where the tap has no output position.
fn load4(at: vec4u, ok: vec4<bool>) -> vec4f {
  return select(vec4f(0.0), vec4f(vec4<Operand>(dy[at.x], dy[at.y], dy[at.z], dy[at.w])), ok);
}

// Store channels c..c+3 of phase pixel q (flat over N·rows·cols), skipping pixels past the end
// and channels ≥ C.
fn store_pixel(v: vec4f, q: u32, c: u32) {
  let per_image = p.rows * p.cols;
  if (q >= p.n * per_image) { return; }
  let r = q % per_image;
  let hw = p.h * p.w;
  let base = (q / per_image) * p.c * hw + (p.phase_h + p.stride_h * (r / p.cols)) * p.w + p.phase_w + p.stride_w * (r % p.cols);
  for (var i = 0u; i < 4u; i++) {
    if (c + i < p.c) { dx[p.dx_offset + base + (c + i) * hw] = v[i]; }
  }
}

fn store_tile(m: mat4x4f, q: vec4u, c: u32) {
  store_pixel(m[0], q.x, c);
  store_pixel(m[1], q.y, c);
  store_pixel(m[2], q.z, c);
  store_pixel(m[3], q.w, c);
}

@compute @workgroup_size(WG)
fn grad_input(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_index) lid: u32) {
  let wid = workgroup_index(wg, nwg);
  if (wid >= p.groups) { return; }
  let lane = share_lane(lid);
  let c0 = (wid / p.pixel_groups) * 16u;
  let per_image = p.rows * p.cols;
  let npix = p.n * per_image;
  let ohw = p.oh * p.ow;

  let qa = (wid % p.pixel_groups) * WG * 8u + lid + vec4u(0u, 1u, 2u, 3u) * WG;
  let qb = qa + 4u * WG;
  let ina = qa < vec4u(npix);
  let inb = qb < vec4u(npix);
  let sa = select(vec4u(0u), qa, ina);
  let sb = select(vec4u(0u), qb, inb);
  // Phase coordinates (i, j) of each pixel, and the start of its image in dy.
  let ia = vec4i((sa % per_image) / p.cols);
  let ib = vec4i((sb % per_image) / p.cols);
  let ja = vec4i((sa % per_image) % p.cols);
  let jb = vec4i((sb % per_image) % p.cols);
  let basea = vec4i((sa / per_image) * p.o * ohw + p.dy_offset);
  let baseb = vec4i((sb / per_image) * p.o * ohw + p.dy_offset);

  var acc = Tile();
  let oh = i32(p.oh);
  let ow = i32(p.ow);
  let sh = i32(p.stride_h);
  let sw = i32(p.stride_w);
  let c_vecs = p.c_pad / 4u;
  if (TAPS_INNER) {
    let taps = p.kh * p.kw;
    for (var o = 0u; o < p.o; o++) {
      let plane = i32(o * ohw);
      for (var t = 0u; t < taps; t++) {
        let th = i32(p.phase_h) + p.pad_h - i32(t / p.kw * p.dil_h);
        let tw = i32(p.phase_w) + p.pad_w - i32(t % p.kw * p.dil_w);
        if (th % sh != 0 || tw % sw != 0) { continue; }
        let ya = ia + th / sh;
        let yb = ib + th / sh;
        let xa = ja + tw / sw;
        let xb = jb + tw / sw;
        let va = load4(vec4u(basea + plane + ya * ow + xa), ina & inside(ya, xa, oh, ow));
        let vb = load4(vec4u(baseb + plane + yb * ow + xb), inb & inside(yb, xb, oh, ow));
        acc = accumulate(acc, share(vec4f(wp[(t * p.o + o) * c_vecs + c0 / 4u + lane]), lid), va, vb);
      }
    }
  } else {
    for (var kh = 0u; kh < p.kh; kh++) {
      // ih + pad − kh·dil = stride·oh must hold; within the phase it does for all pixels or none.
      let th = i32(p.phase_h) + p.pad_h - i32(kh * p.dil_h);
      if (th % sh != 0) { continue; }
      let ya = ia + th / sh;
      let yb = ib + th / sh;
      for (var kw = 0u; kw < p.kw; kw++) {
        let tw = i32(p.phase_w) + p.pad_w - i32(kw * p.dil_w);
        if (tw % sw != 0) { continue; }
        let xa = ja + tw / sw;
        let xb = jb + tw / sw;
        let oka = ina & inside(ya, xa, oh, ow);
        let okb = inb & inside(yb, xb, oh, ow);
        var ata = vec4u(basea + ya * ow + xa);
        var atb = vec4u(baseb + yb * ow + xb);
        var wi = (kh * p.kw + kw) * p.o * c_vecs + c0 / 4u + lane;
        for (var o = 0u; o < p.o; o++) {
          acc = accumulate(acc, share(vec4f(wp[wi]), lid), load4(ata, oka), load4(atb, okb));
          ata += ohw;
          atb += ohw;
          wi += c_vecs;
        }
      }
    }
  }
  store_tile(acc.a0, qa, c0 + 4u * lane); store_tile(acc.a1, qb, c0 + 4u * lane);
  store_tile(acc.a2, qa, c0 + 4u * (lane ^ 1u)); store_tile(acc.a3, qb, c0 + 4u * (lane ^ 1u));
  store_tile(acc.a4, qa, c0 + 4u * (lane ^ 2u)); store_tile(acc.a5, qb, c0 + 4u * (lane ^ 2u));
  store_tile(acc.a6, qa, c0 + 4u * (lane ^ 3u)); store_tile(acc.a7, qb, c0 + 4u * (lane ^ 3u));
}
