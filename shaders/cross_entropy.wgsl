// @prepend rows_subgroup.wgsl|rows_workgroup.wgsl rows_tree.wgsl
// Fused cross-entropy over logits [N, K] and int32 labels [N].
//   forward:  per row, lse = logsumexp(x) (max-subtracted) and loss = lse − x[label]; the host
//             then takes the mean of the losses. A label outside [0, K) raises the device-side
//             assert (see Executor.deviceAssert): the next readback throws.
//   backward: one invocation per logit: dx = (exp(x − lse) − onehot(label)) · g / N.
// Logits and labels are read through strides (views need no copy). Rows are laid out like
// shaders/softmax.wgsl: TX rows × LANES lanes per workgroup, LANES_FAST when the class
// dimension has the smaller stride.

override WG: u32 = 256;
override TX: u32 = 1;
override LANES_FAST: bool = true;

struct Params {
  n: u32,             // rows
  k: u32,             // classes
  groups: u32,        // workgroups of this dispatch
  code: u32,          // device-assert code for a bad label
  x_row: u32,         // element strides of the logits
  x_col: u32,
  labels_stride: u32,
  inv_n: f32,         // 1 / rows of the whole batch (a dispatch may cover a block of them)
  x_offset: u32,      // element offsets of the views in their bindings
  labels_offset: u32,
  loss_offset: u32,
  lse_offset: u32,
  g_offset: u32,      // backward: the scalar upstream gradient
  dx_offset: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

// forward {x, labels, loss, lse, status}
@group(0) @binding(1) var<storage, read> f_x: array<f32>;
@group(0) @binding(2) var<storage, read> f_labels: array<i32>;
@group(0) @binding(3) var<storage, read_write> f_loss: array<f32>;
@group(0) @binding(4) var<storage, read_write> f_lse: array<f32>;
@group(0) @binding(5) var<storage, read_write> f_status: array<atomic<u32>>;

// backward {x, labels, lse, g, dx}
@group(0) @binding(1) var<storage, read> b_x: array<f32>;
@group(0) @binding(2) var<storage, read> b_labels: array<i32>;
@group(0) @binding(3) var<storage, read> b_lse: array<f32>;
@group(0) @binding(4) var<storage, read> b_g: array<f32>;
@group(0) @binding(5) var<storage, read_write> b_dx: array<f32>;

// -inf, made at run time (a constant infinity is a compile error).
fn neg_inf() -> f32 {
  var bits = 0xff800000u;
  return bitcast<f32>(bits);
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
    mx = max(mx, f_x[xb + c * p.x_col]);
  }
  mx = row_max(mx, tx, lane);
  var s = 0.0;
  for (var c = lane; c < p.k; c += lanes) {
    s += exp(f_x[xb + c * p.x_col] - mx);
  }
  s = row_sum(s, tx, lane);
  if (!live || lane != 0u) { return; }
  let label = f_labels[p.labels_offset + row * p.labels_stride];
  let ok = label >= 0 && label < i32(p.k);
  if (!ok) { atomicMax(&f_status[0], p.code); }
  let lse = mx + log(s);
  f_lse[p.lse_offset + row] = lse;
  f_loss[p.loss_offset + row] = lse - f_x[xb + u32(clamp(label, 0, i32(p.k) - 1)) * p.x_col];
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
  let onehot = select(0.0, 1.0, i32(c) == label);
  b_dx[p.dx_offset + i] = (exp(x - b_lse[p.lse_offset + row]) - onehot) * (b_g[p.g_offset] * p.inv_n);
}
