// @prepend operand_f32.wgsl|operand_f16.wgsl
// The baseline matrix multiply: one element of C per invocation, a plain dot product over k.
// Kept to measure the register-blocked kernels of matmul.wgsl against; it takes the same Params
// (batches, transposed operands) so that it can stand in for them in tests and benchmarks.

override WG: u32 = 64;
override TRANS_A: bool = false;
override TRANS_B: bool = false;
override ACCUMULATE: bool = false;   // add to C instead of overwriting it (see matmul.wgsl)

struct Params {
  M: u32,
  N: u32,
  K: u32,
  batch_rank: u32,
  lda: u32,
  ldb: u32,
  a_off: u32,
  b_off: u32,
  wgs_m: u32,         // unused here (the workgroups are a flat run over every element of C)
  wgs_n: u32,
  workgroups: u32,
  batches: u32,       // matrices in the batch
  ldc: u32,           // row stride of C (N, or more when C is a block of columns of a wider matrix)
  c_off: u32,         // element offset of C
  batch_shape: array<vec4u, 2>,
  a_bstrides: array<vec4u, 2>,
  b_bstrides: array<vec4u, 2>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<Operand>;  // operand_*.wgsl: f32, or f16
@group(0) @binding(2) var<storage, read> b: array<Operand>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;


@compute @workgroup_size(WG)
fn naive(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
         @builtin(local_invocation_index) lid: u32) {
  let wid = wg.x + wg.y * nwg.x + wg.z * nwg.x * nwg.y;
  if (wid >= p.workgroups) { return; }
  let i = wid * WG + lid;
  let mn = p.M * p.N;
  if (i >= p.batches * mn) { return; }
  let batch = i / mn;
  var rem = batch;
  let m = (i % mn) / p.N;
  let n = i % p.N;
  var ao = p.a_off;
  var bo = p.b_off;
  for (var d = i32(p.batch_rank) - 1; d >= 0; d--) {
    let size = p.batch_shape[u32(d) / 4u][u32(d) % 4u];
    let j = rem % size;
    rem = rem / size;
    ao += j * p.a_bstrides[u32(d) / 4u][u32(d) % 4u];
    bo += j * p.b_bstrides[u32(d) / 4u][u32(d) % 4u];
  }
  let sam = select(p.lda, 1u, TRANS_A);
  let sak = select(1u, p.lda, TRANS_A);
  let sbk = select(p.ldb, 1u, TRANS_B);
  let sbn = select(1u, p.ldb, TRANS_B);
  var sum = 0.0;
  for (var k = 0u; k < p.K; k++) {
    sum += f32(a[ao + m * sam + k * sak]) * f32(b[bo + k * sbk + n * sbn]);
  }
  let ci = p.c_off + batch * p.M * p.ldc + m * p.ldc + n;
  if (ACCUMULATE) { c[ci] += sum; } else { c[ci] = sum; }
}
