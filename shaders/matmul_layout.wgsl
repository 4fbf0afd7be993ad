// What every matmul kernel (matmul.wgsl, matmul_shared.wgsl, matmul_naive.wgsl) shares, prepended
// to each after operand_*.wgsl: the Params the host writes, the bindings, operand loads, where a
// workgroup's block of C lies in a batch, and how the logical operands are laid out.
//
// Operands are read through their layout, never copied: logical A is M×K with element (m, k) at
// a_offset + batch offset + m·sam + k·sak, where (sam, sak) = (lda, 1) normally and (1, lda) when
// TRANS_A (A stored column-major, e.g. a transposed view); B likewise with TRANS_B. Batch
// offsets come from per-dimension batch strides (0 where an operand is broadcast).

override TRANS_A: bool = false;
override TRANS_B: bool = false;
// Add the product to C instead of overwriting it: a product whose operands are larger than one
// storage binding is computed in slices of K, each accumulated into the same C.
override ACCUMULATE: bool = false;

struct Params {
  M: u32,
  N: u32,
  K: u32,
  batch_rank: u32,
  lda: u32,           // leading dimension of A's storage (row stride, or column stride if TRANS_A)
  ldb: u32,
  a_offset: u32,      // element offsets in the bindings (of A and B: multiples of 4 for direct_vec4)
  b_offset: u32,
  wgs_m: u32,         // workgroups per matrix along M and N (unused by naive: a flat run over C)
  wgs_n: u32,
  workgroups: u32,    // total workgroups (the dispatch grid may hold more)
  batches: u32,       // matrices in the batch
  ldc: u32,           // row stride of C (N, or more when C is a block of columns of a wider matrix)
  c_offset: u32,
  batch_shape: array<vec4u, 2>,  // output batch dimensions (up to 8)
  a_bstrides: array<vec4u, 2>,   // element strides of A per batch dimension
  b_bstrides: array<vec4u, 2>,
}

@group(0) @binding(0) var<uniform> p: Params;

// {a, b, c}: c = a @ b (or c += a @ b with ACCUMULATE)
@group(0) @binding(1) var<storage, read> a: array<OperandA>;  // operand_*.wgsl: f32, or f16
@group(0) @binding(2) var<storage, read> b: array<OperandB>;  // (operand_f32_f16.wgsl: f32 a, f16 b)
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

// direct_vec4 reads the same operands as vec4s (binding 3 stays `c`).
@group(0) @binding(1) var<storage, read> a4: array<OperandA4>;
@group(0) @binding(2) var<storage, read> b4: array<OperandB4>;

// Operand loads, as f32.
fn ga(i: u32) -> f32 { return f32(a[i]); }
fn gb(i: u32) -> f32 { return f32(b[i]); }
fn ga4(i: u32) -> vec4f { return vec4f(a4[i]); }
fn gb4(i: u32) -> vec4f { return vec4f(b4[i]); }

// Element strides of logical A (m, k) and B (k, n).
fn sam() -> u32 { return select(p.lda, 1u, TRANS_A); }
fn sak() -> u32 { return select(1u, p.lda, TRANS_A); }
fn sbk() -> u32 { return select(p.ldb, 1u, TRANS_B); }
fn sbn() -> u32 { return select(1u, p.ldb, TRANS_B); }

// Where a block of C lies: its first row and column, and the element offsets of its batch's
// A, B and C.
struct Place {
  m0: u32,
  n0: u32,
  a_base: u32,
  b_base: u32,
  c_base: u32,
}

// Matrix `batch` of the output batch, at row m0 and column n0.
fn place(batch: u32, m0: u32, n0: u32) -> Place {
  var rem = batch;
  var ao = p.a_offset;
  var bo = p.b_offset;
  for (var d = i32(p.batch_rank) - 1; d >= 0; d--) {
    let size = p.batch_shape[u32(d) / 4u][u32(d) % 4u];
    let i = rem % size;
    rem = rem / size;
    ao += i * p.a_bstrides[u32(d) / 4u][u32(d) % 4u];
    bo += i * p.b_bstrides[u32(d) / 4u][u32(d) % 4u];
  }
  return Place(m0, n0, ao, bo, p.c_offset + batch * p.M * p.ldc);
}

// Workgroup `wid` of a grid of wgs_m × wgs_n blocks per matrix, each `rows` × `cols`.
fn locate(wid: u32, rows: u32, cols: u32) -> Place {
  let per_batch = p.wgs_m * p.wgs_n;
  let t = wid % per_batch;
  return place(wid / per_batch, (t / p.wgs_n) * rows, (t % p.wgs_n) * cols);
}

const LANE = vec4u(0u, 1u, 2u, 3u);

// Offsets of rows m..m+3 of A at k = 0, clamped into the matrix.
fn a_rows(base: u32, m: u32) -> vec4u {
  return base + min(vec4u(m) + LANE, vec4u(p.M - 1u)) * sam();
}

// Offsets of columns n..n+3 of B at k = 0, clamped into the matrix.
fn b_cols(base: u32, n: u32) -> vec4u {
  return base + min(vec4u(n) + LANE, vec4u(p.N - 1u)) * sbn();
}

// Store (or with ACCUMULATE add) v at element i of C.
fn put_c(i: u32, v: f32) {
  if (ACCUMULATE) { c[i] += v; } else { c[i] = v; }
}
