// @prepend width1.wgsl|width4.wgsl rows_subgroup.wgsl|rows_workgroup.wgsl rows_tree.wgsl
// layerNorm and rmsNorm over rows of K contiguous elements (the normalized dimensions, merged),
// and their backward rules. CENTER: layerNorm (subtract the mean); otherwise rmsNorm.
//
// forward {x, w, b, y, stats}: one kernel per row. The statistics come from one read of the row:
//   each lane sums its elements shifted by a value of its own (the mean of its first Vec), count
//   n, sum S and sum of squares Q, so its mean is shift + S/n and M2 = Q − S²/n (the cancellation
//   there is bounded by n, as the shift lies within the lane's spread: no division per element as
//   in Welford's update). The lanes combine by Chan's rule as two row sums, mean = Σ n_i·m_i / K,
//   then M2 = Σ (M2_i + n_i·(m_i − mean)²) — every term ≥ 0, so a row with a large mean keeps
//   its variance (unlike Σx² − (Σx)²/K). rmsNorm sums x² (no cancellation to fear).
//   y = (x − mean)·rstd·w + b with rstd = 1/√(var + eps) (rmsNorm: mean 0, var = mean(x²)).
//   stats[row] = (mean, rstd): all that backward keeps besides x.
// backward {x, w, stats, g, dx}: one kernel per row, with x̂ = (x − mean)·rstd and ĝ = g·w,
//   dx = rstd·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂))   (rmsNorm: without mean(ĝ)).
// columns {x, stats, g, part}: dw = Σ_rows g·x̂ and db = Σ_rows g, deterministic (no atomics): one
//   invocation per Vec of columns sums a chunk of rows in order into part[chunk, 0 | 1, columns];
//   the host sums the chunks (a column reduction, in a fixed order too).
//
// A workgroup holds TX rows × WG/TX lanes, a row's lanes adjacent invocations (as in
// shaders/reduce.wgsl); the row combining (row_sum) comes from the prepended rows_*.wgsl. Every
// invocation reads a Vec of VW consecutive elements at a time (width1.wgsl or width4.wgsl: then
// K and every offset are multiples of 4). Sizes and offsets in Params count f32 elements.
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
@group(0) @binding(1) var<storage, read> f_x: array<Vec>;
@group(0) @binding(2) var<storage, read> f_w: array<Vec>;
@group(0) @binding(3) var<storage, read> f_b: array<Vec>;
@group(0) @binding(4) var<storage, read_write> f_y: array<Vec>;
@group(0) @binding(5) var<storage, read_write> f_stats: array<f32>;

// backward {x, w, stats, g, dx}
@group(0) @binding(1) var<storage, read> b_x: array<Vec>;
@group(0) @binding(2) var<storage, read> b_w: array<Vec>;
@group(0) @binding(3) var<storage, read> b_stats: array<f32>;
@group(0) @binding(4) var<storage, read> b_g: array<Vec>;
@group(0) @binding(5) var<storage, read_write> b_dx: array<Vec>;

// columns {x, stats, g, part}
@group(0) @binding(1) var<storage, read> c_x: array<Vec>;
@group(0) @binding(2) var<storage, read> c_stats: array<f32>;
@group(0) @binding(3) var<storage, read> c_g: array<Vec>;
@group(0) @binding(4) var<storage, read_write> c_part: array<Vec>;

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
  let kv = p.k / VW;
  let xb = p.x_offset / VW + pl.row * kv;
  let inv_k = 1.0 / f32(p.k);
  var mean = 0.0;
  var variance: f32;
  if (CENTER) {
    let shift = total(f_x[xb + min(pl.lane, kv - 1u)]) / f32(VW);
    var n = 0u;
    var s = Vec(0.0);
    var q = Vec(0.0);
    for (var c = pl.lane; c < kv; c += lanes) {
      let d = f_x[xb + c] - shift;
      n += VW;
      s += d;
      q = fma(d, d, q);
    }
    let nf = f32(n);
    let ls = total(s);
    let lane_mean = shift + ls / max(nf, 1.0);
    let lane_m2 = max(total(q) - ls * ls / max(nf, 1.0), 0.0);
    mean = row_sum(nf * lane_mean, pl.tx, pl.lane) * inv_k;
    let d = lane_mean - mean;
    variance = row_sum(lane_m2 + nf * d * d, pl.tx, pl.lane) * inv_k;
  } else {
    var q = Vec(0.0);
    for (var c = pl.lane; c < kv; c += lanes) {
      let v = f_x[xb + c];
      q = fma(v, v, q);
    }
    variance = row_sum(total(q), pl.tx, pl.lane) * inv_k;
  }
  if (!pl.live) { return; }
  let rstd = inverseSqrt(variance + p.eps);
  let yb = p.y_offset / VW + pl.row * kv;
  for (var c = pl.lane; c < kv; c += lanes) {
    var v = (f_x[xb + c] - mean) * rstd;
    if (WEIGHT) { v *= f_w[p.w_offset / VW + c]; }
    if (BIAS) { v += f_b[p.b_offset / VW + c]; }
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
  let kv = p.k / VW;
  let xb = p.x_offset / VW + pl.row * kv;
  let gb = p.g_offset / VW + pl.row * kv;
  let mean = b_stats[p.stats_offset + 2u * pl.row];
  let rstd = b_stats[p.stats_offset + 2u * pl.row + 1u];
  let inv_k = 1.0 / f32(p.k);
  var sg = Vec(0.0);
  var sgx = Vec(0.0);
  for (var c = pl.lane; c < kv; c += lanes) {
    var g = b_g[gb + c];
    if (WEIGHT) { g *= b_w[p.w_offset / VW + c]; }
    sg += g;
    sgx = fma(g, b_x[xb + c] - mean, sgx);
  }
  let mean_gx = row_sum(total(sgx), pl.tx, pl.lane) * rstd * inv_k;
  var mean_g = 0.0;
  if (CENTER) { mean_g = row_sum(total(sg), pl.tx, pl.lane) * inv_k; }
  if (!pl.live) { return; }
  // dx = rstd·(ĝ − mean_g − (x − mean)·rstd·mean_gx)
  let a = rstd * mean_gx * rstd;
  let ob = p.dx_offset / VW + pl.row * kv;
  for (var c = pl.lane; c < kv; c += lanes) {
    var g = b_g[gb + c];
    if (WEIGHT) { g *= b_w[p.w_offset / VW + c]; }
    b_dx[ob + c] = rstd * (g - mean_g) - (b_x[xb + c] - mean) * a;
  }
}

// Workgroups: ceil(k / VW / WG) per chunk of rows, chunk-major.
@compute @workgroup_size(WG)
fn columns(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_index) lid: u32) {
  let wid = workgroup_index(wg, nwg);
  if (wid >= p.blocks) { return; }
  let kv = p.k / VW;
  let col_groups = (kv + WG - 1u) / WG;
  let chunk = wid / col_groups;
  let c = (wid % col_groups) * WG + lid;
  if (c >= kv) { return; }
  let r0 = chunk * p.chunk_len;
  let r1 = min(r0 + p.chunk_len, p.m);
  var sw = Vec(0.0);
  var sb = Vec(0.0);
  for (var r = r0; r < r1; r++) {
    let g = c_g[p.g_offset / VW + r * kv + c];
    let mean = c_stats[p.stats_offset + 2u * r];
    let rstd = c_stats[p.stats_offset + 2u * r + 1u];
    sw = fma(g, (c_x[p.x_offset / VW + r * kv + c] - mean) * rstd, sw);
    sb += g;
  }
  let o = p.part_offset / VW + chunk * 2u * kv + c;
  c_part[o] = sw;
  c_part[o + kv] = sb;
}
