// Elementwise kernels: unary and binary float ops with NumPy broadcasting, read through strides
// (so transposed and broadcast views need no copy), plus the in-place y += alpha * x used to
// accumulate gradients. The op is an override constant: each op is its own specialised pipeline.
//
// Bindings follow the engine's layout (src/runtime/kernel.ts): params at 0, storage from 1.
// Entry points declare different storage variables at the same binding; each uses only its own.

override WG: u32 = 256;
// When true, every operand is contiguous with the output's shape: index them flat.
override CONTIG: bool = false;
// When true, every operand is contiguous and broadcast only along leading dimensions (a bias
// over [B, F] is [F]): element i reads i mod the operand's size (its period). One modulo
// instead of a division per dimension.
override PERIODIC: bool = false;
// Dimensions of the (coalesced) output shape when not CONTIG: a constant, so the index loop
// unrolls and reads shapes and strides at constant indices (SwiftShader turns the variable-index
// loop into slow per-lane code).
override RANK: u32 = 8;
override OP: u32 = 0;

struct Params {
  n: u32,          // output elements
  alpha: f32,      // scalar operands of the op, where it has them (axpy: the factor)
  beta: f32,
  seed: u32,       // dropout: the seed of its mask
  base: u32,       // flat index of element 0 in the whole tensor (work cut into chunks)
  a_offset: u32,   // element offsets of the operands in their bindings (axpy: x and y)
  b_offset: u32,
  a_period: u32,   // PERIODIC: elements of a and of b
  b_period: u32,
  x_offset: u32,
  y_offset: u32,
  out_offset: u32,
  shape: array<vec4u, 2>,     // output shape, up to 8 dimensions
  a_strides: array<vec4u, 2>, // element strides of a (0 along broadcast dimensions)
  b_strides: array<vec4u, 2>,
}

@group(0) @binding(0) var<uniform> p: Params;

// unary {a, out}: out = f(a)
@group(0) @binding(1) var<storage, read> u_a: array<f32>;
@group(0) @binding(2) var<storage, read_write> u_out: array<f32>;

// binary {a, b, out}: out = f(a, b)
@group(0) @binding(1) var<storage, read> b_a: array<f32>;
@group(0) @binding(2) var<storage, read> b_b: array<f32>;
@group(0) @binding(3) var<storage, read_write> b_out: array<f32>;

// axpy {x, y}: y += alpha * x (both contiguous, same size)
@group(0) @binding(1) var<storage, read> x_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> x_y: array<f32>;

fn flat_index(wg: vec3u, nwg: vec3u, lid: u32) -> u32 {
  return workgroup_index(wg, nwg) * WG + lid;
}

// Offsets of output element i in a and b, walking the output shape from the last dimension.
fn offsets(i: u32) -> vec2u {
  var rem = i;
  var oa = p.a_offset;
  var ob = p.b_offset;
  for (var d = i32(RANK) - 1; d >= 0; d--) {
    let q = u32(d) / 4u;
    let r = u32(d) % 4u;
    let size = p.shape[q][r];
    let c = rem % size;
    rem = rem / size;
    oa += c * p.a_strides[q][r];
    ob += c * p.b_strides[q][r];
  }
  return vec2u(oa, ob);
}

// erfc(z) with fractional error below 1.2e-7 everywhere (Chebyshev fit, Numerical Recipes
// "erfcc"); gelu uses it so that the far negative tail keeps its relative accuracy.
fn erfc_(z: f32) -> f32 {
  let az = abs(z);
  let t = 1.0 / (1.0 + 0.5 * az);
  let r = t * exp(-az * az - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
          t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
          t * (-0.82215223 + t * 0.17087277)))))))));
  return select(2.0 - r, r, z >= 0.0);
}

const INV_SQRT2: f32 = 0.70710678118654752;
const INV_SQRT_2PI: f32 = 0.39894228040143268;

fn gelu_(x: f32) -> f32 {
  return 0.5 * x * erfc_(-x * INV_SQRT2);
}

// tanh without overflow for large |x| (exp(2|x|) may be inf: the result is then ±1).
fn tanh_(x: f32) -> f32 {
  let e = exp(-2.0 * abs(x));
  return sign(x) * (1.0 - e) / (1.0 + e);
}

fn sigmoid_(x: f32) -> f32 {
  let e = exp(-abs(x));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), x >= 0.0);
}

// Unary ops (OP values mirror UNARY in src/ops/elementwise.ts).
fn unary_op(x: f32) -> f32 {
  switch OP {
    case 0u: { return -x; }
    case 1u: { return exp(x); }
    case 2u: { return log(x); }
    case 3u: { return sqrt(x); }
    case 4u: { return max(x, 0.0); }
    case 5u: { return gelu_(x); }
    case 6u: { return tanh_(x); }
    case 7u: { return sigmoid_(x); }
    case 8u: { return p.alpha * x + p.beta; }           // affine
    case 9u: { return pow_(x, p.alpha); }               // x ** alpha
    case 10u: { return 1.0 / x; }                       // reciprocal
    case 11u: { return abs(x); }
    case 12u: { return clamp(x, p.alpha, p.beta); }     // clamp
    case 14u: { return select(0.0, 1.0, (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u); } // isnan (x != x folds to false on some compilers)
    default: { return x; }
  }
}

// x ** y for any sign of x where y is an integer, like PyTorch.
fn pow_(x: f32, y: f32) -> f32 {
  if (y == 0.0) { return 1.0; }
  if (y == 1.0) { return x; }
  if (y == 2.0) { return x * x; }
  let r = pow(abs(x), y);
  if (x < 0.0) {
    if (y == floor(y)) {
      return select(r, -r, (i32(y) & 1) == 1);
    }
    var nan_bits = 0x7fc00000u; // a var, so that NaN is made at run time (const NaN is an error)
    return bitcast<f32>(nan_bits);
  }
  return r;
}

// Binary ops (OP values mirror BINARY in src/ops/elementwise.ts). The *_grad ops are the
// backward rules of unary ops: a is the incoming gradient, b the op's input (or output).
fn binary_op(a: f32, b: f32) -> f32 {
  switch OP {
    case 0u: { return a + b; }
    case 1u: { return a - b; }
    case 2u: { return a * b; }
    case 3u: { return a / b; }
    case 4u: { return max(a, b); }
    case 7u: { return select(0.0, 1.0, a == b); }                      // eq as 0/1
    case 8u: { return select(0.0, a, b > 0.0); }                       // relu_grad(g, x)
    case 9u: {                                                         // gelu_grad(g, x)
      let cdf = 0.5 * erfc_(-b * INV_SQRT2);
      let pdf = INV_SQRT_2PI * exp(-0.5 * b * b);
      return a * (cdf + b * pdf);
    }
    case 10u: { return a * (1.0 - b * b); }                            // tanh_grad(g, y)
    case 11u: { return a * b * (1.0 - b); }                            // sigmoid_grad(g, y)
    case 13u: { return a * sign(b); }                                  // abs_grad(g, x)
    default: { return a; }
  }
}

// A 32-bit integer hash (lowbias32), for dropout masks that are a pure function of (seed, index):
// the backward pass recomputes the same mask instead of storing it.
fn hash_u32(x: u32) -> u32 {
  var h = x;
  h ^= h >> 16u;
  h *= 0x7feb352du;
  h ^= h >> 15u;
  h *= 0x846ca68bu;
  h ^= h >> 16u;
  return h;
}

const DROPOUT: u32 = 16u;

@compute @workgroup_size(WG)
fn unary(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
         @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wg, nwg, lid);
  if (i >= p.n) { return; }
  var ia = i + p.a_offset;
  if (!CONTIG) { ia = offsets(i).x; }
  if (OP == DROPOUT) {
    // alpha = drop probability, beta = 1 / (1 - p).
    let r = f32(hash_u32((p.base + i) ^ hash_u32(p.seed)) >> 8u) * (1.0 / 16777216.0);
    u_out[p.out_offset + i] = select(0.0, u_a[ia] * p.beta, r >= p.alpha);
    return;
  }
  u_out[p.out_offset + i] = unary_op(u_a[ia]);
}

@compute @workgroup_size(WG)
fn binary(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
          @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wg, nwg, lid);
  if (i >= p.n) { return; }
  var o = vec2u(i + p.a_offset, i + p.b_offset);
  if (PERIODIC) {
    o = vec2u(i % p.a_period + p.a_offset, i % p.b_period + p.b_offset);
  } else if (!CONTIG) {
    o = offsets(i);
  }
  b_out[p.out_offset + i] = binary_op(b_a[o.x], b_b[o.y]);
}

@compute @workgroup_size(WG)
fn axpy(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wg, nwg, lid);
  if (i >= p.n) { return; }
  x_y[i + p.y_offset] = x_y[i + p.y_offset] + p.alpha * x_x[i + p.x_offset];
}
