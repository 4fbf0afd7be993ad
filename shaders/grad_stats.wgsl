// @prepend rows_subgroup.wgsl|rows_workgroup.wgsl rows_tree.wgsl
// Statistics over all of a model's gradients, in two passes with no CPU round trip: a per-tensor
// pass writes one partial per workgroup into a shared list (each tensor from its own slot on), and
// `total` (one workgroup) adds the list up into one value in GPU memory.
//   clipGradNorm: sum_squares (partials of Σ g²), total with ROOT (the norm), then clip_scale
//     rescales each gradient in place reading that norm.
//   the Trainer's finite check: unscale_check multiplies each gradient in place by 1/scale (loss
//     scaling; with factor 1 it writes nothing) and counts the elements that were inf or NaN;
//     total writes the count where the host reads it back.
// A workgroup is one row of the rows_*.wgsl combining (TX = 1): subgroup sums where the device
// has subgroups, a workgroup-memory tree otherwise.

override WG: u32 = 256;
override TX: u32 = 1;
override LANES_FAST: bool = true;
// Elements each invocation of the per-tensor passes takes before the workgroup combines.
override ITEMS: u32 = 8;
// total: write the square root of the sum (a norm from a sum of squares).
override ROOT: bool = false;

struct Params {
  n: u32,           // per-tensor passes: elements of this tensor; total: partials to add
  slot: u32,        // per-tensor passes: where this tensor's partials start
  groups: u32,      // per-tensor passes: workgroups of this dispatch
  factor: f32,      // clip_scale: max_norm; unscale_check: 1 / scale
  g_offset: u32,    // element offsets of the views in their bindings
  partials_offset: u32,
  out_offset: u32,
  norm_offset: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

// sum_squares {g, partials}: partials[slot + wid] = Σ g² over this workgroup's WG·ITEMS elements
@group(0) @binding(1) var<storage, read> sq_g: array<f32>;
@group(0) @binding(2) var<storage, read_write> sq_partials: array<f32>;

// unscale_check {g, partials}: g *= factor in place; partials[slot + wid] = how many g were inf or NaN
@group(0) @binding(1) var<storage, read_write> uc_g: array<f32>;
@group(0) @binding(2) var<storage, read_write> uc_partials: array<f32>;

// total {partials, out}: out[0] = Σ partials (or its square root)
@group(0) @binding(1) var<storage, read> t_partials: array<f32>;
@group(0) @binding(2) var<storage, read_write> t_out: array<f32>;

// clip_scale {norm, g}: g *= min(max_norm / (norm + 1e-6), 1)
@group(0) @binding(1) var<storage, read> cs_norm: array<f32>;
@group(0) @binding(2) var<storage, read_write> cs_g: array<f32>;


// Inf or NaN, tested on the bits (all exponent bits set): compilers may assume finite math.
fn non_finite(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7f800000u) == 0x7f800000u;
}

@compute @workgroup_size(WG)
fn sum_squares(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_index) lid: u32) {
  let wid = workgroup_index(wg, nwg);
  if (wid >= p.groups) { return; }
  let base = wid * WG * ITEMS;
  var acc = 0.0;
  for (var k = 0u; k < ITEMS; k++) {
    let i = base + k * WG + lid;
    if (i < p.n) {
      let x = sq_g[i + p.g_offset];
      acc += x * x;
    }
  }
  let s = row_sum(acc, 0u, lid);
  if (lid == 0u) { sq_partials[p.partials_offset + p.slot + wid] = s; }
}

@compute @workgroup_size(WG)
fn unscale_check(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_index) lid: u32) {
  let wid = workgroup_index(wg, nwg);
  if (wid >= p.groups) { return; }
  let base = wid * WG * ITEMS;
  var bad = 0.0;
  for (var k = 0u; k < ITEMS; k++) {
    let i = base + k * WG + lid;
    if (i < p.n) {
      let g = uc_g[i + p.g_offset];
      bad += select(0.0, 1.0, non_finite(g));
      if (p.factor != 1.0) { uc_g[i + p.g_offset] = g * p.factor; }
    }
  }
  let s = row_sum(bad, 0u, lid);
  if (lid == 0u) { uc_partials[p.partials_offset + p.slot + wid] = s; }
}

// One workgroup.
@compute @workgroup_size(WG)
fn total(@builtin(local_invocation_index) lid: u32) {
  var acc = 0.0;
  for (var i = lid; i < p.n; i += WG) {
    acc += t_partials[p.partials_offset + i];
  }
  let s = row_sum(acc, 0u, lid);
  if (lid == 0u) { t_out[p.out_offset] = select(s, sqrt(s), ROOT); }
}

@compute @workgroup_size(WG)
fn clip_scale(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_index) lid: u32) {
  let i = workgroup_index(wg, nwg) * WG + lid;
  if (i >= p.n) { return; }
  let coef = min(p.factor / (cs_norm[p.norm_offset] + 1e-6), 1.0);
  cs_g[i + p.g_offset] *= coef;
}
