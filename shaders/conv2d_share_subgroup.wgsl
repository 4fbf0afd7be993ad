// Tile sharing for the conv2d kernels, with subgroup operations (prepended to a conv2d*.wgsl
// module when the device has the `subgroups` feature). A 16-value operand that every invocation
// of a group of four needs is loaded a quarter per invocation and broadcast: on SwiftShader each
// load is an emulated gather, so this cuts the loads of that operand by four.

enable subgroups;

// Which quarter of the shared operand this invocation loads: its place among the first four
// invocations of its subgroup (the kernels call this in uniform control flow, all lanes active).
fn share_lane(lid: u32) -> u32 {
  return subgroupExclusiveAdd(1u) % 4u;
}

// The four quarters, from subgroup invocations 0..3: column q holds quarter q.
fn share(mine: vec4f, lid: u32) -> mat4x4f {
  return mat4x4f(subgroupBroadcast(mine, 0u), subgroupBroadcast(mine, 1u), subgroupBroadcast(mine, 2u),
                 subgroupBroadcast(mine, 3u));
}
