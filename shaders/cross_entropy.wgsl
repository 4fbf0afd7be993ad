// @prepend rows_subgroup.wgsl|rows_workgroup.wgsl rows_tree.wgsl
// Fused cross-entropy over logits [N, K] and int32 labels [N], with label smoothing ε and an
// ignored label (as PyTorch's F.cross_entropy).
//   forward:  per row, lse = logsumexp(x) (max-subtracted) and
//             loss = (1 − ε)·(lse − x[label]) + ε·(lse − mean(x)), with a weight 1; a row whose
//             label is the ignored one gets loss 0 and weight 0. The host then divides the sum of
//             the losses by the sum of the weights (the rows that count). A label outside [0, K)
//             that is not the ignored one raises the device-side assert (Executor.deviceAssert):
//             the next readback throws.
//   backward: one invocation per logit: dx = (softmax(x) − (1 − ε)·onehot(label) − ε/K) · g / rows
//             counted (· g alone for the sum, MEAN false), and 0 in ignored rows.
// Logits and labels are read through strides (views need no copy). Rows are laid out like
// shaders/softmax.wgsl: TX rows × LANES lanes per workgroup, LANES_FAST when the class
// dimension has the smaller stride.

override WG: u32 = 256;
override TX: u32 = 1;
override LANES_FAST: bool = true;
// Label smoothing is on (ε > 0): the forward pass also sums each row.
override SMOOTH: bool = false;
// backward: the loss was the mean over the rows counted (false: their sum).
override MEAN: bool = true;

struct Params {
  n: u32,             // rows
  k: u32,             // classes
  groups: u32,        // workgroups of this dispatch
  code: u32,          // device-assert code for a bad label
  x_row: u32,         // element strides of the logits
  x_col: u32,
  labels_stride: u32,
  ignore: i32,        // the ignored label
  smoothing: f32,     // ε
  x_offset: u32,      // element offsets of the views in their bindings
  labels_offset: u32,
  loss_offset: u32,   // forward: per row, [loss, weight] (the host's stats [N, 2])
  lse_offset: u32,
  g_offset: u32,      // backward: the scalar upstream gradient
  totals_offset: u32, // backward: [Σ loss, Σ weight]; Σ weight is the rows counted
  dx_offset: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

// forward {x, labels, loss, lse, status}
@group(0) @binding(1) var<storage, read> f_x: array<f32>;
@group(0) @binding(2) var<storage, read> f_labels: array<i32>;
@group(0) @binding(3) var<storage, read_write> f_loss: array<f32>;
@group(0) @binding(4) var<storage, read_write> f_lse: array<f32>;
@group(0) @binding(5) var<storage, read_write> f_status: array<atomic<u32>>;

// backward {x, labels, lse, g, totals, dx}
@group(0) @binding(1) var<storage, read> b_x: array<f32>;
@group(0) @binding(2) var<storage, read> b_labels: array<i32>;
@group(0) @binding(3) var<storage, read> b_lse: array<f32>;
@group(0) @binding(4) var<storage, read> b_g: array<f32>;
@group(0) @binding(5) var<storage, read> b_totals: array<f32>;
@group(0) @binding(6) var<storage, read_write> b_dx: array<f32>;

// -inf and NaN, made at run time (a constant infinity or NaN is a compile error).
fn neg_inf() -> f32 {
  var bits = 0xff800000u;
  return bitcast<f32>(bits);
}

fn nan() -> f32 {
  var bits = 0x7fc00000u;
  return bitcast<f32>(bits);
}

// log Σ exp(x) of a row from its max and Σ exp(x − max), NaN where PyTorch's log-softmax gives
// NaN: a NaN in the row, a +Inf (Inf − Inf), or every element −Inf. Spelled out, because
// compilers may assume finite math (max() drops NaN, exp(NaN) can come out as Inf).
fn row_lse(mx: f32, s: f32) -> f32 {
  let finite = (bitcast<u32>(mx) & 0x7f800000u) != 0x7f800000u;
  return select(nan(), mx + log(s), finite);
}

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_index) lid: u32) {
  let wid = workgroup_index(wg, nwg);
  if (wid >= p.groups) { return; }
  let lanes = WG / TX;
  let tx = select(lid % TX, lid / lanes, LANES_FAST);
  let lane = select(lid / TX, lid % lanes, LANES_FAST);
  // Rows past the end compute the last row again and write nothing.
  let live = wid * TX + tx < p.n;
  let row = min(wid * TX + tx, p.n - 1u);
  let xb = p.x_offset + row * p.x_row;
  var mx = neg_inf();
  for (var c = lane; c < p.k; c += lanes) {
    mx = row_combine(mx, f_x[xb + c * p.x_col], true); // a max that keeps NaN
  }
  mx = row_max(mx, tx, lane);
  var s = 0.0;
  var total = 0.0;
  for (var c = lane; c < p.k; c += lanes) {
    let x = f_x[xb + c * p.x_col];
    s += exp(x - mx);
    if (SMOOTH) { total += x; }
  }
  s = row_sum(s, tx, lane);
  if (SMOOTH) { total = row_sum(total, tx, lane); }
  if (!live || lane != 0u) { return; }
  let label = f_labels[p.labels_offset + row * p.labels_stride];
  let ignored = label == p.ignore;
  let ok = ignored || (label >= 0 && label < i32(p.k));
  if (!ok) { atomicMax(&f_status[0], p.code); }
  let lse = row_lse(mx, s);
  f_lse[p.lse_offset + row] = lse;
  var loss = lse - f_x[xb + u32(clamp(label, 0, i32(p.k) - 1)) * p.x_col];
  if (SMOOTH) { loss = (1.0 - p.smoothing) * loss + p.smoothing * (lse - total / f32(p.k)); }
  f_loss[p.loss_offset + 2u * row] = select(loss, 0.0, ignored);
  f_loss[p.loss_offset + 2u * row + 1u] = select(1.0, 0.0, ignored);
}

@compute @workgroup_size(WG)
fn backward(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_index) lid: u32) {
  let wid = workgroup_index(wg, nwg);
  if (wid >= p.groups) { return; }
  let i = wid * WG + lid;
  if (i >= p.n * p.k) { return; }
  let row = i / p.k;
  let c = i % p.k;
  let x = b_x[p.x_offset + row * p.x_row + c * p.x_col];
  let label = b_labels[p.labels_offset + row * p.labels_stride];
  let want = select(0.0, 1.0 - p.smoothing, i32(c) == label) + p.smoothing / f32(p.k);
  let lse = b_lse[p.lse_offset + row];
  var d = (exp(x - lse) - want) * (b_g[p.g_offset] / select(1.0, b_totals[p.totals_offset + 1u], MEAN));
  if (row_is_nan(lse)) { d = lse; } // a NaN row (see row_lse) has NaN gradients, as in PyTorch
  b_dx[p.dx_offset + i] = select(d, 0.0, label == p.ignore);
}
