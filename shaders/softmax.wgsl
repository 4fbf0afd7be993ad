// @prepend rows_subgroup.wgsl|rows_workgroup.wgsl rows_tree.wgsl
// Softmax and log-softmax along one axis, and their backward rules. A "row" is the 1-D slice
// along the axis; the host merges the other dimensions into M rows and passes strides, so any
// axis of any view is read in place.
//
// A workgroup holds TX rows × LANES lanes (WG = TX · LANES), like shaders/reduce.wgsl: lanes fold
// strided parts of their row, then combine (row_max / row_sum, from the prepended rows_*.wgsl).
// LANES_FAST puts adjacent invocations on adjacent lanes (the axis has the smallest stride); otherwise on
// adjacent rows. Forward is numerically stable: exp(x − max) / Σ exp(x − max). As in PyTorch, a row
// whose maximum is NaN or ±inf (a NaN in it, +inf, or only −inf) is NaN throughout: x − max is NaN
// there (inf − inf), whatever the device's exp makes of NaN (SwiftShader's exp(NaN) is inf).

override WG: u32 = 256;
override TX: u32 = 1;
override LANES_FAST: bool = true;
override LOG: bool = false;

struct Params {
  m: u32,           // rows
  k: u32,           // row length (the axis)
  blocks: u32,      // ceil(m / TX)
  krank: u32,       // rank of the merged row index space
  x_offset: u32,    // element offsets of the views in their bindings (forward: x, out;
  g_offset: u32,    // backward: g, y, out)
  y_offset: u32,
  out_offset: u32,
  in_stride: u32,   // element stride of `in` along the axis
  out_stride: u32,  // of the output (and, backward, of y: same contiguous layout)
  row_shape: array<vec4u, 2>,
  in_rows: array<vec4u, 2>,   // strides of `in` over the row index space
  out_rows: array<vec4u, 2>,
}

@group(0) @binding(0) var<uniform> p: Params;

// forward {x, out}: out = softmax(x) or log_softmax(x)
@group(0) @binding(1) var<storage, read> f_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> f_out: array<f32>;

// backward {g, y, out}: out = y · (g − Σ g·y)   (softmax, y its output)
//           out = g − exp(y) · Σ g   (log-softmax, y its output)
@group(0) @binding(1) var<storage, read> b_g: array<f32>;
@group(0) @binding(2) var<storage, read> b_y: array<f32>;
@group(0) @binding(3) var<storage, read_write> b_out: array<f32>;


// Uniform arrays are indexed in place (passing one to a function copies it: slow on SwiftShader).
fn row_offset(row: u32, of_out: bool) -> u32 {
  var rem = row;
  var o = 0u;
  for (var d = i32(p.krank) - 1; d >= 0; d--) {
    let n = p.row_shape[u32(d) / 4u][u32(d) % 4u];
    o += (rem % n) * select(p.in_rows[u32(d) / 4u][u32(d) % 4u], p.out_rows[u32(d) / 4u][u32(d) % 4u], of_out);
    rem = rem / n;
  }
  return o;
}

// -inf and NaN, made at run time (a constant infinity or NaN is a compile error).
fn neg_inf() -> f32 {
  var bits = 0xff800000u;
  return bitcast<f32>(bits);
}

fn nan_() -> f32 {
  var bits = 0x7fc00000u;
  return bitcast<f32>(bits);
}

struct Place {
  tx: u32,
  lane: u32,
  row: u32,   // clamped to the last row: rows past the end compute it again and write nothing
  live: bool,
}

fn place(wid: u32, lid: u32) -> Place {
  let lanes = WG / TX;
  var pl: Place;
  pl.tx = select(lid % TX, lid / lanes, LANES_FAST);
  pl.lane = select(lid / TX, lid % lanes, LANES_FAST);
  let row = wid * TX + pl.tx;
  pl.live = row < p.m;
  pl.row = min(row, p.m - 1u);
  return pl;
}

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_index) lid: u32) {
  let wid = workgroup_index(wg, nwg);
  if (wid >= p.blocks) { return; }
  let pl = place(wid, lid);
  let lanes = WG / TX;
  let xb = p.x_offset + row_offset(pl.row, false);
  var mx = neg_inf();
  for (var k = pl.lane; k < p.k; k += lanes) {
    mx = row_combine(mx, f_x[xb + k * p.in_stride], true);
  }
  mx = row_max(mx, pl.tx, pl.lane);
  let nan_row = !row_is_finite(mx);
  var s = 0.0;
  for (var k = pl.lane; k < p.k; k += lanes) {
    s += exp(f_x[xb + k * p.in_stride] - mx);
  }
  s = row_sum(s, pl.tx, pl.lane);
  if (!pl.live) { return; }
  let ob = p.out_offset + row_offset(pl.row, true);
  let log_s = log(s);
  let inv_s = 1.0 / s;
  for (var k = pl.lane; k < p.k; k += lanes) {
    let v = f_x[xb + k * p.in_stride] - mx;
    var y = exp(v) * inv_s;
    if (LOG) { y = v - log_s; }
    f_out[ob + k * p.out_stride] = select(y, nan_(), nan_row);
  }
}

@compute @workgroup_size(WG)
fn backward(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_index) lid: u32) {
  let wid = workgroup_index(wg, nwg);
  if (wid >= p.blocks) { return; }
  let pl = place(wid, lid);
  let lanes = WG / TX;
  let gb = p.g_offset + row_offset(pl.row, false);
  let ob = row_offset(pl.row, true);
  let yb = p.y_offset + ob;
  var s = 0.0;
  for (var k = pl.lane; k < p.k; k += lanes) {
    let g = b_g[gb + k * p.in_stride];
    if (LOG) {
      s += g;
    } else {
      s += g * b_y[yb + k * p.out_stride];
    }
  }
  s = row_sum(s, pl.tx, pl.lane);
  if (!pl.live) { return; }
  for (var k = pl.lane; k < p.k; k += lanes) {
    let g = b_g[gb + k * p.in_stride];
    let y = b_y[yb + k * p.out_stride];
    let o = p.out_offset + ob + k * p.out_stride;
    if (LOG) {
      b_out[o] = select(g - exp(y) * s, y, row_is_nan(y));
    } else {
      b_out[o] = y * (g - s);
    }
  }
}
