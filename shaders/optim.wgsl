// Optimizer updates, each fused into one pass over a parameter tensor: the parameter and its
// state (momentum, Adam moments) are read and written in place, the gradient is only read.
// Hyper-parameters arrive in the params uniform; bias corrections are computed on the CPU per
// step. (clipGradNorm's kernels are in grad_stats.wgsl.)
//
// Bindings follow the engine's layout (src/runtime/kernel.ts): params at 0, storage from 1.
// Entry points declare different variables at the same bindings; each uses only its own.

override WG: u32 = 256;
// sgd_momentum: use the Nesterov form of the update.
override NESTEROV: bool = false;
// adam: decoupled weight decay (AdamW) instead of L2 added to the gradient (Adam).
override DECOUPLED: bool = false;

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
