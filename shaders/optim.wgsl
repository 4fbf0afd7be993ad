// Optimizer updates, each fused into one pass over a parameter tensor: the parameter and its
// state (momentum, Adam moments) are read and written in place, the gradient is only read.
// Hyper-parameters arrive in the params uniform; bias corrections are computed on the CPU per
// step. (clipGradNorm's kernels are in grad_stats.wgsl.)
//
// Bindings follow the engine's layout (src/kernels/kernel.ts): params at 0, storage from 1.
// Entry points declare different variables at the same bindings; each uses only its own.

override WG: u32 = 256;
// sgd_momentum: use the Nesterov form of the update.
override NESTEROV: bool = false;
// adam: decoupled weight decay (AdamW) instead of L2 added to the gradient (Adam).
override DECOUPLED: bool = false;

fn flat_index(wg: vec3u, nwg: vec3u, lid: u32) -> u32 {
  return workgroup_index(wg, nwg) * WG + lid;
}

struct Params {
  n: u32,
  lr: f32,
  weight_decay: f32,
  first: u32,        // SGD: 1 on the step that creates the momentum buffer: it starts as d_p
  momentum: f32,     // SGD
  dampening: f32,
  beta1: f32,        // Adam
  beta2: f32,
  eps: f32,
  step_size: f32,    // Adam: lr / (1 − beta1^t)
  bc2_sqrt: f32,     // Adam: sqrt(1 − beta2^t)
  param_offset: u32, // element offsets of the views in their bindings
  grad_offset: u32,
  buf_offset: u32,
  m_offset: u32,
  v_offset: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

// ---- SGD (torch.optim.SGD) {param, grad} or, with momentum, {param, grad, buf} -----------------

@group(0) @binding(1) var<storage, read_write> sgd_param: array<f32>;
@group(0) @binding(2) var<storage, read> sgd_grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> sgd_buf: array<f32>;

// param -= lr · (grad + wd · param)
@compute @workgroup_size(WG)
fn sgd(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
       @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wg, nwg, lid);
  if (i >= p.n) { return; }
  let ip = i + p.param_offset;
  let x = sgd_param[ip];
  let d = sgd_grad[i + p.grad_offset] + p.weight_decay * x;
  sgd_param[ip] = x - p.lr * d;
}

// buf = momentum · buf + (1 − dampening) · d_p;  param -= lr · (d_p + momentum · buf | buf)
@compute @workgroup_size(WG)
fn sgd_momentum(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wg, nwg, lid);
  if (i >= p.n) { return; }
  let ip = i + p.param_offset;
  let x = sgd_param[ip];
  var d = sgd_grad[i + p.grad_offset] + p.weight_decay * x;
  var b = d;
  if (p.first == 0u) {
    b = p.momentum * sgd_buf[p.buf_offset + i] + (1.0 - p.dampening) * d;
  }
  sgd_buf[p.buf_offset + i] = b;
  if (NESTEROV) {
    d = d + p.momentum * b;
  } else {
    d = b;
  }
  sgd_param[ip] = x - p.lr * d;
}

// ---- Adam and AdamW (torch.optim.Adam / AdamW) {param, grad, m, v} -------------------------

@group(0) @binding(1) var<storage, read_write> adam_param: array<f32>;
@group(0) @binding(2) var<storage, read> adam_grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> adam_m: array<f32>;
@group(0) @binding(4) var<storage, read_write> adam_v: array<f32>;

@compute @workgroup_size(WG)
fn adam(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wg, nwg, lid);
  if (i >= p.n) { return; }
  let ip = i + p.param_offset;
  var x = adam_param[ip];
  var g = adam_grad[i + p.grad_offset];
  if (DECOUPLED) {
    x = x * (1.0 - p.lr * p.weight_decay);
  } else {
    g = g + p.weight_decay * x;
  }
  let im = p.m_offset + i;
  let iv = p.v_offset + i;
  let m = adam_m[im] + (1.0 - p.beta1) * (g - adam_m[im]);
  let v = p.beta2 * adam_v[iv] + (1.0 - p.beta2) * g * g;
  adam_m[im] = m;
  adam_v[iv] = v;
  adam_param[ip] = x - p.step_size * m / (sqrt(v) / p.bc2_sqrt + p.eps);
}
