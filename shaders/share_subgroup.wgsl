// Operand sharing with subgroup operations for the 16×8-tile kernels (conv2d*, matmul_shared;
// prepended to their module when the device has the `subgroups` feature). A 16-value operand that every invocation
// of a quad (four consecutive subgroup invocations) needs is loaded a quarter per invocation and
// exchanged with quad swaps: on SwiftShader each load is an emulated gather, so this cuts the
// loads of that operand by four. Quad swaps measured about 15% faster there than broadcasts
// from invocations 0..3.

enable subgroups;

// This invocation's place in its quad: the quarter of the shared operand it loads. (The kernels
// call this in uniform control flow, all invocations active, so the count is the subgroup index.)
fn share_lane(lid: u32) -> u32 {
  return subgroupExclusiveAdd(1u) % 4u;
}

// The four quarters: column j holds the quarter loaded by quad lane (share_lane ^ j), so the
// order differs per lane and the kernels store tile column j for quarter (share_lane ^ j).
fn share(mine: vec4f, lid: u32) -> mat4x4f {
  return mat4x4f(mine, quadSwapX(mine), quadSwapY(mine), quadSwapDiagonal(mine));
}
