// @prepend operand_f32.wgsl|operand_f16.wgsl|operand_f32_f16.wgsl matmul_layout.wgsl share_subgroup.wgsl|share_workgroup.wgsl tile_16x8.wgsl
// Batched matrix multiply C = A·B with operand loads shared among neighbouring invocations: the
// `shared` family, for software adapters (SwiftShader), where every storage load is an emulated
// gather that costs far more than a multiply-add. It uses the 16×8 register tile of the conv2d
// kernels (tile_16x8.wgsl, fma accumulation) and their operand sharing (share_*.wgsl:
// quad swaps where the device has subgroups, workgroup memory otherwise).
//
// Each invocation computes 16 rows × 8 columns of C. Four neighbouring invocations along N (a quad)
// cover the same 16 rows and 32 consecutive columns: per k, each loads a quarter of the 16 values
// of A (4 rows) and its own 8 values of B, and share() hands it the other three quarters. That is
// 12 loads per 128 multiply-adds, where the direct family's 8×8 tile loads 16 per 64.
// Tile matrix a{2i} holds rows m0 + 4·(lane ^ i) … + 3 (the quarter of quad lane ^ i) for columns
// n0 … n0 + 3, a{2i+1} for columns n0 + 4 … n0 + 7; column j of a matrix is one column of C.
//
// Edge tiles: rows and columns are clamped into the matrix before the k loop (every invocation
// stays in the loop and in share(), which needs all of them), and the extra ones are not stored.
// The loop advances one k at a time, so K needs no tail.

override WGX: u32 = 16;        // invocations per workgroup along N: a multiple of 4 (the quads)
override WGY: u32 = 4;         // invocations per workgroup along M
override WG: u32 = WGX * WGY;  // share_workgroup.wgsl's buffer: one vec4 per invocation

const TM = 16u;  // rows of C per invocation (the shared operand)
const TN = 8u;   // columns of C per invocation

// Rows r0 … r0 + 3 of C (4 channels of mat column j) at columns n … n + 3 (mat columns).
fn store_block(base: u32, r0: u32, n: u32, x: mat4x4f) {
  for (var j = 0u; j < 4u; j++) {
    if (n + j >= p.N) { return; }
    for (var r = 0u; r < 4u; r++) {
      if (r0 + r < p.M) { put_c(base + (r0 + r) * p.ldc + n + j, x[j][r]); }
    }
  }
}

@compute @workgroup_size(WGX, WGY)
fn shared_tile(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_id) lid: vec3u, @builtin(local_invocation_index) li: u32) {
  let wid = workgroup_index(wg, nwg);
  if (wid >= p.workgroups) { return; }
  let lane = share_lane(li);
  let t = locate(wid, WGY * TM, WGX * TN);
  let m0 = t.m0 + lid.y * TM;  // the quad's 16 rows
  let n0 = t.n0 + lid.x * TN;  // this invocation's 8 columns
  // This invocation's quarter of A (rows m0 + 4·lane …) and its columns of B, at k = 0.
  var ia = a_rows(t.a_base, m0 + 4u * lane);
  var ib0 = b_cols(t.b_base, n0);
  var ib1 = b_cols(t.b_base, n0 + 4u);
  let ka = sak();
  let kb = sbk();
  var acc = Tile();
  for (var k = 0u; k < p.K; k++) {
    let s = share(vec4f(ga(ia.x), ga(ia.y), ga(ia.z), ga(ia.w)), li);
    let va = vec4f(gb(ib0.x), gb(ib0.y), gb(ib0.z), gb(ib0.w));
    let vb = vec4f(gb(ib1.x), gb(ib1.y), gb(ib1.z), gb(ib1.w));
    acc = accumulate(acc, s, va, vb);
    ia += ka;
    ib0 += kb;
    ib1 += kb;
  }
  let base = t.c_base;
  store_block(base, m0 + 4u * lane, n0, acc.a0);
  store_block(base, m0 + 4u * lane, n0 + 4u, acc.a1);
  store_block(base, m0 + 4u * (lane ^ 1u), n0, acc.a2);
  store_block(base, m0 + 4u * (lane ^ 1u), n0 + 4u, acc.a3);
  store_block(base, m0 + 4u * (lane ^ 2u), n0, acc.a4);
  store_block(base, m0 + 4u * (lane ^ 2u), n0 + 4u, acc.a5);
  store_block(base, m0 + 4u * (lane ^ 3u), n0, acc.a6);
  store_block(base, m0 + 4u * (lane ^ 3u), n0 + 4u, acc.a7);
}
