// @prepend rows_subgroup.wgsl|rows_workgroup.wgsl rows_tree.wgsl
// layerNorm and rmsNorm over rows of K contiguous elements (the normalized dimensions, merged),
// and their backward rules. CENTER: layerNorm (subtract the mean); otherwise rmsNorm.
//
// forward {x, w, b, y, stats}: one kernel per row. The statistics come from one read of the row:
//   each lane runs Welford's update over its strided elements (count n_i, mean m_i, M2_i), and
//   the lanes combine by Chan's rule as two row sums, mean = Σ n_i·m_i / K, then
//   M2 = Σ (M2_i + n_i·(m_i − mean)²) — every term ≥ 0, so a row with a large mean loses nothing
//   to cancellation (unlike Σx² − (Σx)²/K). rmsNorm sums x² (no cancellation to fear).
//   y = (x − mean)·rstd·w + b with rstd = 1/√(var + eps) (rmsNorm: mean 0, var = mean(x²)).
//   stats[row] = (mean, rstd): all that backward keeps besides x.
// backward {x, w, stats, g, dx}: one kernel per row, with x̂ = (x − mean)·rstd and ĝ = g·w,
//   dx = rstd·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂))   (rmsNorm: without mean(ĝ)).
// columns {x, stats, g, part}: dw = Σ_rows g·x̂ and db = Σ_rows g, deterministic (no atomics): one
//   invocation per column sums a chunk of rows in order into part[chunk, 0 | 1, column]; the host
//   sums the chunks (a column reduction, in a fixed order too).
//
// A workgroup holds TX rows × WG/TX lanes, a row's lanes adjacent invocations (as in
// shaders/reduce.wgsl); the row combining (row_sum) comes from the prepended rows_*.wgsl.
// Absent weight or bias (WEIGHT, BIAS false) are bound to a stand-in and never read.

override WG: u32 = 256;
override TX: u32 = 1;
override CENTER: bool = true;
override WEIGHT: bool = true;
override BIAS: bool = true;
const LANES_FAST = true;

struct Params {
  m: u32,            // rows in this dispatch
  k: u32,            // elements per row
  blocks: u32,       // workgroups of this dispatch
  eps: f32,
  chunk_len: u32,    // columns: rows per chunk
  x_offset: u32,     // element offsets of the views in their bindings
  w_offset: u32,
  b_offset: u32,
  y_offset: u32,
  stats_offset: u32,
  g_offset: u32,
  dx_offset: u32,
  part_offset: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

// forward {x, w, b, y, stats}
@group(0) @binding(1) var<storage, read> f_x: array<f32>;
@group(0) @binding(2) var<storage, read> f_w: array<f32>;
@group(0) @binding(3) var<storage, read> f_b: array<f32>;
@group(0) @binding(4) var<storage, read_write> f_y: array<f32>;
@group(0) @binding(5) var<storage, read_write> f_stats: array<f32>;

// backward {x, w, stats, g, dx}
@group(0) @binding(1) var<storage, read> b_x: array<f32>;
@group(0) @binding(2) var<storage, read> b_w: array<f32>;
@group(0) @binding(3) var<storage, read> b_stats: array<f32>;
@group(0) @binding(4) var<storage, read> b_g: array<f32>;
@group(0) @binding(5) var<storage, read_write> b_dx: array<f32>;

// columns {x, stats, g, part}
@group(0) @binding(1) var<storage, read> c_x: array<f32>;
@group(0) @binding(2) var<storage, read> c_stats: array<f32>;
@group(0) @binding(3) var<storage, read> c_g: array<f32>;
@group(0) @binding(4) var<storage, read_write> c_part: array<f32>;

struct Place {
  tx: u32,
  lane: u32,
  row: u32,   // clamped to the last row: rows past the end compute it again and write nothing
  live: bool,
}

fn place(wid: u32, lid: u32) -> Place {
  let lanes = WG / TX;
  var pl: Place;
  pl.tx = lid / lanes;
  pl.lane = lid % lanes;
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
  let xb = p.x_offset + pl.row * p.k;
  let inv_k = 1.0 / f32(p.k);
  var mean = 0.0;
  var variance: f32;
  if (CENTER) {
    var n = 0.0;
    var mu = 0.0;
    var m2 = 0.0;
    for (var c = pl.lane; c < p.k; c += lanes) {
      let v = f_x[xb + c];
      n += 1.0;
      let d = v - mu;
      mu += d / n;
      m2 += d * (v - mu);
    }
    mean = row_sum(n * mu, pl.tx, pl.lane) * inv_k;
    let d = mu - mean;
    variance = row_sum(m2 + n * d * d, pl.tx, pl.lane) * inv_k;
  } else {
    var s = 0.0;
    for (var c = pl.lane; c < p.k; c += lanes) {
      let v = f_x[xb + c];
      s += v * v;
    }
    variance = row_sum(s, pl.tx, pl.lane) * inv_k;
  }
  if (!pl.live) { return; }
  let rstd = inverseSqrt(variance + p.eps);
  let yb = p.y_offset + pl.row * p.k;
  for (var c = pl.lane; c < p.k; c += lanes) {
    var v = (f_x[xb + c] - mean) * rstd;
    if (WEIGHT) { v *= f_w[p.w_offset + c]; }
    if (BIAS) { v += f_b[p.b_offset + c]; }
    f_y[yb + c] = v;
  }
  if (pl.lane == 0u) {
    f_stats[p.stats_offset + 2u * pl.row] = mean;
    f_stats[p.stats_offset + 2u * pl.row + 1u] = rstd;
  }
}

@compute @workgroup_size(WG)
fn backward(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_index) lid: u32) {
  let wid = workgroup_index(wg, nwg);
  if (wid >= p.blocks) { return; }
  let pl = place(wid, lid);
  let lanes = WG / TX;
  let xb = p.x_offset + pl.row * p.k;
  let gb = p.g_offset + pl.row * p.k;
  let mean = b_stats[p.stats_offset + 2u * pl.row];
  let rstd = b_stats[p.stats_offset + 2u * pl.row + 1u];
  let inv_k = 1.0 / f32(p.k);
  var sg = 0.0;
  var sgx = 0.0;
  for (var c = pl.lane; c < p.k; c += lanes) {
    var g = b_g[gb + c];
    if (WEIGHT) { g *= b_w[p.w_offset + c]; }
    sg += g;
    sgx += g * (b_x[xb + c] - mean) * rstd;
  }
  let mean_gx = row_sum(sgx, pl.tx, pl.lane) * inv_k;
  var mean_g = 0.0;
  if (CENTER) { mean_g = row_sum(sg, pl.tx, pl.lane) * inv_k; }
  if (!pl.live) { return; }
  let ob = p.dx_offset + pl.row * p.k;
  for (var c = pl.lane; c < p.k; c += lanes) {
    var g = b_g[gb + c];
    if (WEIGHT) { g *= b_w[p.w_offset + c]; }
    let xhat = (b_x[xb + c] - mean) * rstd;
    b_dx[ob + c] = rstd * (g - mean_g - xhat * mean_gx);
  }
}

// Workgroups: ceil(k / WG) per chunk of rows, chunk-major.
@compute @workgroup_size(WG)
fn columns(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_index) lid: u32) {
  let wid = workgroup_index(wg, nwg);
  if (wid >= p.blocks) { return; }
  let col_groups = (p.k + WG - 1u) / WG;
  let chunk = wid / col_groups;
  let c = (wid % col_groups) * WG + lid;
  if (c >= p.k) { return; }
  let r0 = chunk * p.chunk_len;
  let r1 = min(r0 + p.chunk_len, p.m);
  var sw = 0.0;
  var sb = 0.0;
  for (var r = r0; r < r1; r++) {
    let g = c_g[p.g_offset + r * p.k + c];
    let xhat = (c_x[p.x_offset + r * p.k + c] - c_stats[p.stats_offset + 2u * r]) * c_stats[p.stats_offset + 2u * r + 1u];
    sw += g * xhat;
    sb += g;
  }
  let o = p.part_offset + chunk * 2u * p.k + c;
  c_part[o] = sw;
  c_part[o + p.k] = sb;
}
