// @prepend operand_f32.wgsl|operand_f16.wgsl|operand_f32_f16.wgsl matmul_layout.wgsl
// The baseline matrix multiply: one element of C per invocation, a plain dot product over k.
// Kept to measure the register-blocked kernels of matmul.wgsl and matmul_shared.wgsl against; it
// takes the same Params (matmul_layout.wgsl: batches, transposed operands) so that it can stand
// in for them in tests and benchmarks. Its workgroups are a flat run over every element of C.

override WG: u32 = 64;

@compute @workgroup_size(WG)
fn naive(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
         @builtin(local_invocation_index) lid: u32) {
  let wid = workgroup_index(wg, nwg);
  if (wid >= p.workgroups) { return; }
  let i = wid * WG + lid;
  let mn = p.M * p.N;
  if (i >= p.batches * mn) { return; }
  let at = place(i / mn, (i % mn) / p.N, i % p.N);
  var ai = at.a_base + at.m0 * sam();
  var bi = at.b_base + at.n0 * sbn();
  var sum = 0.0;
  for (var k = 0u; k < p.K; k++) {
    sum += ga(ai) * gb(bi);
    ai += sak();
    bi += sbk();
  }
  put_c(at.c_base + at.m0 * p.ldc + at.n0, sum);
}
