// @prepend rows_subgroup.wgsl|rows_workgroup.wgsl rows_tree.wgsl
// Reductions over any set of axes: sum and max (with a scale, so mean is sum · 1/L), argmax
// (value and first index of the maximum), and the scatter that routes max's gradient back.
//
// The host describes an input view as M outputs × L reduced elements: output m and reduced index r
// (row-major over the reduced dimensions) live at offset + kept_offset(m) + reduced_offset(r).
// Adjacent dimensions that address memory alike are merged on the host first, so a reduction over
// axis 0 of [N, F] reads [F] columns through their strides without a transpose copy.
//
// A workgroup holds TX outputs × LANES lanes (WG = TX · LANES). Each lane folds a strided part of
// its output's elements, then the lanes combine (row_sum / row_max from the prepended rows_*.wgsl:
// subgroup operations where the device has them, a tree in workgroup memory otherwise; argmax
// keeps its own tree of value-index pairs). LANES_FAST puts
// adjacent invocations on adjacent lanes (the reduced dimension has the smallest stride: reads of
// one row coalesce); otherwise adjacent invocations take adjacent outputs (columns coalesce).
// A long reduction is cut into `chunks` pieces written as partials [M, chunks], which a second
// dispatch reduces, so that enough workgroups run in parallel.

override WG: u32 = 256;
override TX: u32 = 1;
override LANES_FAST: bool = true;
// reduce: 0 sum, 1 max (NaN propagates, like PyTorch).
override OP: u32 = 0;
// argmax: the input holds partial maxima from a first pass, and idx_in their indices.
override MERGE: bool = false;

struct Params {
  m: u32,          // outputs
  l: u32,          // reduced elements per output
  chunks: u32,     // pieces each output's reduction is cut into
  chunk_len: u32,  // reduced elements per piece
  blocks: u32,     // ceil(m / TX): workgroups per piece
  krank: u32,
  rrank: u32,
  scale: f32,      // multiplies each result (mean: 1/L)
  src_offset: u32, // element offsets of the views in their bindings
  out_offset: u32,
  idx_in_offset: u32,
  val_offset: u32,
  idx_offset: u32,
  g_offset: u32,
  kshape: array<vec4u, 2>,   // kept dimensions, merged
  kstrides: array<vec4u, 2>,
  rshape: array<vec4u, 2>,   // reduced dimensions, merged
  rstrides: array<vec4u, 2>,
}

@group(0) @binding(0) var<uniform> p: Params;

// reduce {src, out}: out[m * chunks + piece] = scale · fold(src)
@group(0) @binding(1) var<storage, read> r_src: array<f32>;
@group(0) @binding(2) var<storage, read_write> r_out: array<f32>;

// argmax {src, idx_in, val, idx}: (value, index) of the first maximum, as partials [m, chunks] like reduce
@group(0) @binding(1) var<storage, read> a_src: array<f32>;
@group(0) @binding(2) var<storage, read> a_idx_in: array<u32>;
@group(0) @binding(3) var<storage, read_write> a_val: array<f32>;
@group(0) @binding(4) var<storage, read_write> a_idx: array<u32>;

// scatter {g, idx, out}: out (contiguous, zero-filled) at output m's argmax position = g[m]
@group(0) @binding(1) var<storage, read> s_g: array<f32>;
@group(0) @binding(2) var<storage, read> s_idx: array<u32>;
@group(0) @binding(3) var<storage, read_write> s_out: array<f32>;

// argmax's tree: values in row_acc (rows_tree.wgsl), their indices here.
var<workgroup> acc_idx: array<u32, WG>;


fn kept_offset(m: u32) -> u32 {
  var rem = m;
  var o = 0u;
  for (var d = i32(p.krank) - 1; d >= 0; d--) {
    let n = p.kshape[u32(d) / 4u][u32(d) % 4u];
    o += (rem % n) * p.kstrides[u32(d) / 4u][u32(d) % 4u];
    rem = rem / n;
  }
  return o;
}

fn reduced_offset(r: u32) -> u32 {
  if (p.rrank == 1u) { return r * p.rstrides[0].x; }
  var rem = r;
  var o = 0u;
  for (var d = i32(p.rrank) - 1; d >= 0; d--) {
    let n = p.rshape[u32(d) / 4u][u32(d) % 4u];
    o += (rem % n) * p.rstrides[u32(d) / 4u][u32(d) % 4u];
    rem = rem / n;
  }
  return o;
}

// -inf, made at run time (a constant infinity is a compile error).
fn neg_inf() -> f32 {
  var bits = 0xff800000u;
  return bitcast<f32>(bits);
}

fn identity() -> f32 {
  if (OP == 1u) { return neg_inf(); }
  return 0.0;
}

fn combine(a: f32, b: f32) -> f32 {
  return row_combine(a, b, OP == 1u);
}

// True when (vb, ib) should replace (va, ia): larger, or equal with a smaller index; NaN counts
// as the largest value (like PyTorch's argmax).
fn arg_better(va: f32, ia: u32, vb: f32, ib: u32) -> bool {
  let na = row_is_nan(va);
  let nb = row_is_nan(vb);
  if (na || nb) { return nb && (!na || ib < ia); }
  return vb > va || (vb == va && ib < ia);
}

struct Place {
  tx: u32,
  lane: u32,
  m: u32,
  piece: u32,
}

// Where invocation `lid` of workgroup `wid` works: its output, lane and piece.
fn place(wid: u32, lid: u32) -> Place {
  let lanes = WG / TX;
  var pl: Place;
  pl.tx = select(lid % TX, lid / lanes, LANES_FAST);
  pl.lane = select(lid / TX, lid % lanes, LANES_FAST);
  pl.piece = wid / p.blocks;
  pl.m = (wid % p.blocks) * TX + pl.tx;
  return pl;
}

@compute @workgroup_size(WG)
fn reduce(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
          @builtin(local_invocation_index) lid: u32) {
  let wid = workgroup_index(wg, nwg);
  if (wid >= p.blocks * p.chunks) { return; }
  let pl = place(wid, lid);
  let lanes = WG / TX;
  var a = identity();
  if (pl.m < p.m) {
    let base = p.src_offset + kept_offset(pl.m);
    let start = pl.piece * p.chunk_len;
    let end = min(p.l, start + p.chunk_len);
    for (var r = start + pl.lane; r < end; r += lanes) {
      a = combine(a, r_src[base + reduced_offset(r)]);
    }
  }
  if (OP == 1u) { a = row_max(a, pl.tx, pl.lane); } else { a = row_sum(a, pl.tx, pl.lane); }
  if (pl.lane == 0u && pl.m < p.m) {
    r_out[p.out_offset + pl.m * p.chunks + pl.piece] = a * p.scale;
  }
}

@compute @workgroup_size(WG)
fn argmax(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
          @builtin(local_invocation_index) lid: u32) {
  let wid = workgroup_index(wg, nwg);
  if (wid >= p.blocks * p.chunks) { return; }
  let pl = place(wid, lid);
  let lanes = WG / TX;
  var v = neg_inf();
  var i = 0xffffffffu;
  if (pl.m < p.m) {
    let base = kept_offset(pl.m);
    let start = pl.piece * p.chunk_len;
    let end = min(p.l, start + p.chunk_len);
    for (var r = start + pl.lane; r < end; r += lanes) {
      let at = base + reduced_offset(r);
      let x = a_src[p.src_offset + at];
      let xi = select(r, a_idx_in[p.idx_in_offset + at], MERGE);
      if (arg_better(v, i, x, xi)) {
        v = x;
        i = xi;
      }
    }
  }
  if (lanes > 1u) {
    let s = row_slot(pl.tx, pl.lane);
    row_acc[s] = v;
    acc_idx[s] = i;
    workgroupBarrier();
    for (var h = lanes / 2u; h > 0u; h /= 2u) {
      if (pl.lane < h) {
        let o = row_slot(pl.tx, pl.lane + h);
        if (arg_better(row_acc[s], acc_idx[s], row_acc[o], acc_idx[o])) {
          row_acc[s] = row_acc[o];
          acc_idx[s] = acc_idx[o];
        }
      }
      workgroupBarrier();
    }
    v = row_acc[s];
    i = acc_idx[s];
  }
  if (pl.lane == 0u && pl.m < p.m) {
    a_val[p.val_offset + pl.m * p.chunks + pl.piece] = v;
    a_idx[p.idx_offset + pl.m * p.chunks + pl.piece] = i;
  }
}

// One invocation per output; the layout (kshape/rshape/strides) is that of the contiguous gradient.
@compute @workgroup_size(WG)
fn scatter(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_index) lid: u32) {
  let wid = workgroup_index(wg, nwg);
  if (wid >= p.blocks) { return; }
  let m = wid * WG + lid;
  if (m >= p.m) { return; }
  s_out[p.out_offset + kept_offset(m) + reduced_offset(s_idx[p.idx_offset + m])] = s_g[p.g_offset + m];
}
