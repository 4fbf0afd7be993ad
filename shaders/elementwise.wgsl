// Elementwise kernels: unary, binary and ternary (where) float ops with NumPy broadcasting, read
// through strides (so transposed and broadcast views need no copy), plus the in-place
// y += alpha * x used to accumulate gradients. The op is an override constant: each op is its own
// specialised pipeline. A binary op with a number as its second operand runs in the unary entry
// (OP = SCALAR + the binary op, the number in alpha): no tensor is made for the number.
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
// The mask operand (b of masked_fill/masked_keep, c of where) holds int32 instead of float32.
override MASK_INT: bool = false;
// The operands of a comparison hold int32: compared as integers (exactly, at any magnitude).
override INT_OPERANDS: bool = false;

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
  c_offset: u32,   // where: the condition
  cols: u32,       // tril/triu: the last two dimensions of the output
  rows: u32,
  diag: i32,       // tril/triu: which diagonal (0 the main one, > 0 above it)
  int_scalar: i32, // a comparison of int32 elements with an integer: the integer
  shape: array<vec4u, 2>,     // output shape, up to 8 dimensions
  a_strides: array<vec4u, 2>, // element strides of a (0 along broadcast dimensions)
  b_strides: array<vec4u, 2>,
  c_strides: array<vec4u, 2>,
}

@group(0) @binding(0) var<uniform> p: Params;

// unary {a, out}: out = f(a)
@group(0) @binding(1) var<storage, read> u_a: array<f32>;
@group(0) @binding(2) var<storage, read_write> u_out: array<f32>;

// binary {a, b, out}: out = f(a, b)
@group(0) @binding(1) var<storage, read> b_a: array<f32>;
@group(0) @binding(2) var<storage, read> b_b: array<f32>;
@group(0) @binding(3) var<storage, read_write> b_out: array<f32>;

// ternary {c, a, b, out}: out = c ? a : b
@group(0) @binding(1) var<storage, read> t_c: array<f32>;
@group(0) @binding(2) var<storage, read> t_a: array<f32>;
@group(0) @binding(3) var<storage, read> t_b: array<f32>;
@group(0) @binding(4) var<storage, read_write> t_out: array<f32>;

// axpy {x, y}: y += alpha * x (both contiguous, same size)
@group(0) @binding(1) var<storage, read> x_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> x_y: array<f32>;

fn flat_index(wg: vec3u, nwg: vec3u, lid: u32) -> u32 {
  return workgroup_index(wg, nwg) * WG + lid;
}

// Offsets of output element i in a, b and c, walking the output shape from the last dimension.
fn offsets(i: u32) -> vec3u {
  var rem = i;
  var o = vec3u(p.a_offset, p.b_offset, p.c_offset);
  for (var d = i32(RANK) - 1; d >= 0; d--) {
    let q = u32(d) / 4u;
    let r = u32(d) % 4u;
    let size = p.shape[q][r];
    let c = rem % size;
    rem = rem / size;
    o += c * vec3u(p.a_strides[q][r], p.b_strides[q][r], p.c_strides[q][r]);
  }
  return o;
}

// NaN tests on the bits: compilers may assume finite math and fold `x != x` (or an ordered
// comparison with NaN) away.
fn is_nan(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

// A comparison as 0/1. NaN compares unequal to everything (itself included) and neither less nor
// greater, as in PyTorch.
fn cmp(holds: bool, a: f32, b: f32) -> f32 {
  return select(0.0, 1.0, holds && !is_nan(a) && !is_nan(b));
}

// A comparison of int32 operands (op: eq, ne, lt, le, gt, ge as in binary_op).
fn int_cmp(op: u32, a: i32, b: i32) -> f32 {
  switch op {
    case 7u: { return select(0.0, 1.0, a == b); }
    case 15u: { return select(0.0, 1.0, a != b); }
    case 16u: { return select(0.0, 1.0, a < b); }
    case 17u: { return select(0.0, 1.0, a <= b); }
    case 18u: { return select(0.0, 1.0, a > b); }
    default: { return select(0.0, 1.0, a >= b); }
  }
}

// A mask element as a boolean: nonzero (NaN included, -0 not) is true, as bool(x) in PyTorch.
fn truthy(x: f32) -> bool {
  if (MASK_INT) { return bitcast<u32>(x) != 0u; }
  return (bitcast<u32>(x) & 0x7fffffffu) != 0u;
}

// Infinity and NaN, tested on the bits and made at run time (a constant infinity or NaN is a
// compile error).
fn is_inf(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7fffffffu) == 0x7f800000u;
}

fn inf() -> f32 {
  var bits = 0x7f800000u;
  return bitcast<f32>(bits);
}

fn nan() -> f32 {
  var bits = 0x7fc00000u;
  return bitcast<f32>(bits);
}

// log and sqrt with IEEE's answers at 0, below 0 and at +inf, which fast approximations (such as
// SwiftShader's log: log(0) = -88, log(-x) = log(x)) do not give.
fn log_(x: f32) -> f32 {
  if (x == 0.0) { return -inf(); }
  if (x < 0.0) { return nan(); }
  if (is_inf(x)) { return x; }
  return log(x);
}

fn sqrt_(x: f32) -> f32 {
  return select(sqrt(x), nan(), x < 0.0);
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

// GELU's tanh approximation (PyTorch's approximate='tanh', GPT-2's gelu_new):
// x/2 · (1 + tanh(u)) with u = √(2/π)·(x + 0.044715·x³), computed as x · sigmoid(2u), the same
// value without the cancellation of 1 + tanh(u) for negative x (−inf gives NaN, −inf · 0, as PyTorch).
const GELU_TANH_K: f32 = 0.79788456080286536; // √(2/π)
const GELU_TANH_C: f32 = 0.044715;

fn gelu_tanh_(x: f32) -> f32 {
  return x * sigmoid_(2.0 * GELU_TANH_K * (x + GELU_TANH_C * x * x * x));
}

// d/dx: s + x · 2s(1 − s) · u'(x), s = sigmoid(2u), u' = √(2/π)·(1 + 3·0.044715·x²).
fn gelu_tanh_grad_(x: f32) -> f32 {
  let s = sigmoid_(2.0 * GELU_TANH_K * (x + GELU_TANH_C * x * x * x));
  return s + x * 2.0 * s * (1.0 - s) * GELU_TANH_K * (1.0 + 3.0 * GELU_TANH_C * x * x);
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

// Unary ops (OP values mirror UNARY in src/ops/pointwise.ts).
fn unary_op(x: f32) -> f32 {
  switch OP {
    case 0u: { return -x; }
    case 1u: { return exp(x); }
    case 2u: { return log_(x); }
    case 3u: { return sqrt_(x); }
    case 4u: { return max(x, 0.0); }
    case 5u: { return gelu_(x); }
    case 6u: { return tanh_(x); }
    case 7u: { return sigmoid_(x); }
    case 8u: { return p.alpha * x + p.beta; }           // affine
    case 9u: { return pow_(x, p.alpha); }               // x ** alpha
    case 10u: { return 1.0 / x; }                       // reciprocal
    case 11u: { return abs(x); }
    case 12u: { return clamp(x, p.alpha, p.beta); }     // clamp
    case 14u: { return select(0.0, 1.0, is_nan(x)); }    // isnan
    case 19u: { return x / (1.0 + exp(-x)); }           // silu, as PyTorch computes it (silu(-inf) is NaN)
    case 20u: { return gelu_tanh_(x); }
    default: { return x; }
  }
}

// x ** y as PyTorch computes it: its special exponents (0 → 1 even for NaN, 1, 0.5 → sqrt, 2, 3,
// -0.5, -1, -2), else C's pow — exact at 0 and ±inf, the sign of an odd integer power of a negative
// x, pow(-inf, y) = pow(inf, y) for other y, and NaN for a negative finite x to a fractional power.
fn pow_(x: f32, y: f32) -> f32 {
  if (y == 0.0) { return 1.0; }
  if (y == 1.0) { return x; }
  if (y == 0.5) { return sqrt_(x); }
  if (y == 2.0) { return x * x; }
  if (y == 3.0) { return x * x * x; }
  if (y == -0.5) { return 1.0 / sqrt_(x); }
  if (y == -1.0) { return 1.0 / x; }
  if (y == -2.0) { return 1.0 / (x * x); }
  if (is_nan(x) || is_nan(y)) { return x + y; }
  let ax = abs(x);
  var r: f32;
  if (ax == 0.0) {
    r = select(inf(), 0.0, y > 0.0);
  } else if (is_inf(ax)) {
    r = select(0.0, inf(), y > 0.0);
  } else {
    r = pow(ax, y);
  }
  if (x < 0.0) {
    if (y == floor(y)) {
      // An odd integer power keeps the sign (|y| ≥ 2^24 is always even).
      return select(r, -r, abs(y) < 16777216.0 && (i32(y) & 1) == 1);
    }
    return select(nan(), r, is_inf(x));
  }
  return r;
}

// Binary ops (OP values mirror BINARY in src/ops/pointwise.ts). The *_grad ops are the
// backward rules of unary ops: a is the incoming gradient, b the op's input (or output).
// `op` is always OP or OP % SCALAR, constants: each pipeline keeps one case.
fn binary_op(op: u32, a: f32, b: f32) -> f32 {
  switch op {
    case 0u: { return a + b; }
    case 1u: { return a - b; }
    case 2u: { return a * b; }
    case 3u: { return a / b; }
    case 4u: { return select(max(a, b), a + b, is_nan(a) || is_nan(b)); } // NaN wins, like torch.maximum
    case 7u: { return cmp(a == b, a, b); }                             // eq as 0/1
    case 15u: { return 1.0 - cmp(a == b, a, b); }                      // ne (NaN != anything)
    case 16u: { return cmp(a < b, a, b); }                             // lt
    case 17u: { return cmp(a <= b, a, b); }                            // le
    case 18u: { return cmp(a > b, a, b); }                             // gt
    case 19u: { return cmp(a >= b, a, b); }                            // ge
    case 20u: { return select(a, p.alpha, truthy(b)); }                // masked_fill(a, mask b, alpha)
    case 21u: { return select(p.alpha, a, truthy(b)); }                // masked_keep(a, mask b, alpha)
    case 22u: {                                                        // silu_grad(g, x)
      let s = 1.0 / (1.0 + exp(-b));
      return a * s * (1.0 + b * (1.0 - s));
    }
    case 8u: { return select(0.0, a, b > 0.0 || is_nan(b)); }         // relu_grad(g, x): 0 where relu(x) <= 0
    case 9u: {                                                         // gelu_grad(g, x)
      let cdf = 0.5 * erfc_(-b * INV_SQRT2);
      let pdf = INV_SQRT_2PI * exp(-0.5 * b * b);
      return a * (cdf + b * pdf);
    }
    case 23u: { return a * gelu_tanh_grad_(b); }                       // gelu_tanh_grad(g, x)
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

const POW_SCALAR: u32 = 9u;
const ISNAN: u32 = 14u;
const DROPOUT: u32 = 16u;
const TRIL: u32 = 17u;
const TRIU: u32 = 18u;
// OP = SCALAR + a binary op: that op with the number alpha as its second operand.
const SCALAR: u32 = 64u;

@compute @workgroup_size(WG)
fn unary(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
         @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wg, nwg, lid);
  if (i >= p.n) { return; }
  var ia = i + p.a_offset;
  if (!CONTIG) { ia = offsets(i).x; }
  if (OP >= SCALAR) {
    if (INT_OPERANDS) {
      u_out[p.out_offset + i] = int_cmp(OP % SCALAR, bitcast<i32>(u_a[ia]), p.int_scalar);
    } else {
      u_out[p.out_offset + i] = binary_op(OP % SCALAR, u_a[ia], p.alpha);
    }
    return;
  }
  if (OP == TRIL || OP == TRIU) {
    // The element's column and row in its matrix, from its index in the whole output.
    let g = p.base + i;
    let above = i32(g % p.cols) - i32((g / p.cols) % p.rows);  // column − row
    let keep = select(above <= p.diag, above >= p.diag, OP == TRIU);
    u_out[p.out_offset + i] = select(0.0, u_a[ia], keep);
    return;
  }
  let x = u_a[ia];
  if (OP == DROPOUT) {
    // alpha = drop probability, beta = 1 / (1 - p). x · 0 where dropped, as PyTorch: a NaN or
    // inf dropped is NaN, not 0.
    let r = f32(hash_u32((p.base + i) ^ hash_u32(p.seed)) >> 8u) * (1.0 / 16777216.0);
    u_out[p.out_offset + i] = x * select(0.0, p.beta, r >= p.alpha);
    return;
  }
  // NaN in, NaN out, whatever the device's max, clamp or exp do with NaN (SwiftShader's exp(NaN)
  // is inf); except isnan, and x ** 0 = 1.
  let keeps_nan = OP != ISNAN && !(OP == POW_SCALAR && p.alpha == 0.0);
  u_out[p.out_offset + i] = select(unary_op(x), x, keeps_nan && is_nan(x));
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
    o = offsets(i).xy;
  }
  if (INT_OPERANDS) {
    b_out[p.out_offset + i] = int_cmp(OP, bitcast<i32>(b_a[o.x]), bitcast<i32>(b_b[o.y]));
  } else {
    b_out[p.out_offset + i] = binary_op(OP, b_a[o.x], b_b[o.y]);
  }
}

// where(c, a, b): the only ternary op. Operands are read through their (broadcast) strides.
@compute @workgroup_size(WG)
fn ternary(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wg, nwg, lid);
  if (i >= p.n) { return; }
  var o = vec3u(i + p.a_offset, i + p.b_offset, i + p.c_offset);
  if (!CONTIG) { o = offsets(i); }
  t_out[p.out_offset + i] = select(t_b[o.y], t_a[o.x], truthy(t_c[o.z]));
}

@compute @workgroup_size(WG)
fn axpy(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wg, nwg, lid);
  if (i >= p.n) { return; }
  x_y[i + p.y_offset] = x_y[i + p.y_offset] + p.alpha * x_x[i + p.x_offset];
}
