// Optimizer updates, each fused into one pass over a parameter tensor: the parameter and its
// state (momentum, Adam moments) are read and written in place, the gradient is only read.
// Hyper-parameters arrive in the params uniform; bias corrections are computed on the CPU per
// step. Also the gradient-norm kernels of clipGradNorm: per-tensor partial sums of squares, one
// reduction of all partials into the total norm, and an in-place rescale that reads that norm
// from GPU memory (no CPU round trip).
//
// Bindings follow the engine's layout (src/runtime/kernel.ts): params at 0, storage from 1.
// Entry points declare different variables at the same bindings; each uses only its own.

override WG: u32 = 256;
// sgd_momentum: use the Nesterov form of the update.
override NESTEROV: bool = false;
// adam: decoupled weight decay (AdamW) instead of L2 added to the gradient (Adam).
override DECOUPLED: bool = false;
// sum_squares: elements each invocation accumulates before the workgroup reduction.
override ITEMS: u32 = 8;

fn flat_index(wg: vec3u, nwg: vec3u, lid: u32) -> u32 {
  let wid = wg.x + wg.y * nwg.x + wg.z * nwg.x * nwg.y;
  return wid * WG + lid;
}

// ---- SGD (torch.optim.SGD) -------------------------------------------------------------------

struct SgdParams {
  n: u32,
  param_offset: u32,
  grad_offset: u32,
  first: u32,        // 1 on the step that creates the momentum buffer: it starts as d_p
  lr: f32,
  weight_decay: f32,
  momentum: f32,
  dampening: f32,
}

@group(0) @binding(0) var<uniform> sgd_p: SgdParams;
@group(0) @binding(1) var<storage, read_write> sgd_param: array<f32>;
@group(0) @binding(2) var<storage, read> sgd_grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> sgd_buf: array<f32>;

// param -= lr · (grad + wd · param)
@compute @workgroup_size(WG)
fn sgd(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
       @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wg, nwg, lid);
  if (i >= sgd_p.n) { return; }
  let ip = i + sgd_p.param_offset;
  let x = sgd_param[ip];
  let d = sgd_grad[i + sgd_p.grad_offset] + sgd_p.weight_decay * x;
  sgd_param[ip] = x - sgd_p.lr * d;
}

// buf = momentum · buf + (1 − dampening) · d_p;  param -= lr · (d_p + momentum · buf | buf)
@compute @workgroup_size(WG)
fn sgd_momentum(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wg, nwg, lid);
  if (i >= sgd_p.n) { return; }
  let ip = i + sgd_p.param_offset;
  let x = sgd_param[ip];
  var d = sgd_grad[i + sgd_p.grad_offset] + sgd_p.weight_decay * x;
  var b = d;
  if (sgd_p.first == 0u) {
    b = sgd_p.momentum * sgd_buf[i] + (1.0 - sgd_p.dampening) * d;
  }
  sgd_buf[i] = b;
  if (NESTEROV) {
    d = d + sgd_p.momentum * b;
  } else {
    d = b;
  }
  sgd_param[ip] = x - sgd_p.lr * d;
}

// ---- Adam and AdamW (torch.optim.Adam / AdamW) ----------------------------------------------

struct AdamParams {
  n: u32,
  param_offset: u32,
  grad_offset: u32,
  lr: f32,
  beta1: f32,
  beta2: f32,
  eps: f32,
  weight_decay: f32,
  step_size: f32,   // lr / (1 − beta1^t)
  bc2_sqrt: f32,    // sqrt(1 − beta2^t)
}

@group(0) @binding(0) var<uniform> adam_p: AdamParams;
@group(0) @binding(1) var<storage, read_write> adam_param: array<f32>;
@group(0) @binding(2) var<storage, read> adam_grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> adam_m: array<f32>;
@group(0) @binding(4) var<storage, read_write> adam_v: array<f32>;

@compute @workgroup_size(WG)
fn adam(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wg, nwg, lid);
  if (i >= adam_p.n) { return; }
  let ip = i + adam_p.param_offset;
  var x = adam_param[ip];
  var g = adam_grad[i + adam_p.grad_offset];
  if (DECOUPLED) {
    x = x * (1.0 - adam_p.lr * adam_p.weight_decay);
  } else {
    g = g + adam_p.weight_decay * x;
  }
  let m = adam_m[i] + (1.0 - adam_p.beta1) * (g - adam_m[i]);
  let v = adam_p.beta2 * adam_v[i] + (1.0 - adam_p.beta2) * g * g;
  adam_m[i] = m;
  adam_v[i] = v;
  adam_param[ip] = x - adam_p.step_size * m / (sqrt(v) / adam_p.bc2_sqrt + adam_p.eps);
}

// ---- gradient norm (clipGradNorm) -------------------------------------------------------------

struct NormParams {
  n: u32,           // sum_squares: elements of this tensor; norm_total: partials to add
  offset: u32,      // sum_squares / clip_scale: element offset of the tensor
  slot: u32,        // sum_squares: where this tensor's partials start
  groups: u32,      // sum_squares: workgroups of this dispatch
  max_norm: f32,    // clip_scale
}

@group(0) @binding(0) var<uniform> norm_p: NormParams;

// sum_squares: partials[slot + wid] = Σ x² over this workgroup's chunk of WG·ITEMS elements
@group(0) @binding(1) var<storage, read> sq_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> sq_partials: array<f32>;

// norm_total: norm[0] = sqrt(Σ partials)
@group(0) @binding(1) var<storage, read> nt_partials: array<f32>;
@group(0) @binding(2) var<storage, read_write> nt_norm: array<f32>;

// clip_scale: g *= min(max_norm / (norm + 1e-6), 1)
@group(0) @binding(1) var<storage, read> cs_norm: array<f32>;
@group(0) @binding(2) var<storage, read_write> cs_g: array<f32>;

var<workgroup> scratch: array<f32, WG>;

// Tree sum of scratch (WG a power of two); every invocation of the workgroup must call it.
fn workgroup_sum(lid: u32, value: f32) -> f32 {
  scratch[lid] = value;
  workgroupBarrier();
  for (var half = WG / 2u; half > 0u; half /= 2u) {
    if (lid < half) {
      scratch[lid] += scratch[lid + half];
    }
    workgroupBarrier();
  }
  return scratch[0];
}

@compute @workgroup_size(WG)
fn sum_squares(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_index) lid: u32) {
  let wid = wg.x + wg.y * nwg.x + wg.z * nwg.x * nwg.y;
  if (wid >= norm_p.groups) { return; }
  let base = wid * WG * ITEMS;
  var acc = 0.0;
  for (var k = 0u; k < ITEMS; k++) {
    let i = base + k * WG + lid;
    if (i < norm_p.n) {
      let x = sq_x[i + norm_p.offset];
      acc += x * x;
    }
  }
  let total = workgroup_sum(lid, acc);
  if (lid == 0u) {
    sq_partials[norm_p.slot + wid] = total;
  }
}

// One workgroup.
@compute @workgroup_size(WG)
fn norm_total(@builtin(local_invocation_index) lid: u32) {
  var acc = 0.0;
  for (var i = lid; i < norm_p.n; i += WG) {
    acc += nt_partials[i];
  }
  let total = workgroup_sum(lid, acc);
  if (lid == 0u) {
    nt_norm[0] = sqrt(total);
  }
}

@compute @workgroup_size(WG)
fn clip_scale(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wg, nwg, lid);
  if (i >= norm_p.n) { return; }
  let coef = min(norm_p.max_norm / (cs_norm[0] + 1e-6), 1.0);
  cs_g[i + norm_p.offset] *= coef;
}
