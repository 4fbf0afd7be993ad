// Operand sharing through workgroup memory for the 16×8-tile kernels (conv2d*, matmul_shared;
// prepended to their module when the device has no `subgroups`): groups of four consecutive invocations pool the
// quarters they loaded, in the same order as share_subgroup.wgsl. The kernels call share()
// in uniform control flow.

var<workgroup> share_buf: array<vec4f, WG>;

fn share_lane(lid: u32) -> u32 {
  return lid % 4u;
}

// Column j holds the quarter loaded by lane (share_lane ^ j) of this invocation's group of four.
fn share(mine: vec4f, lid: u32) -> mat4x4f {
  share_buf[lid] = mine;
  workgroupBarrier();
  let q = lid - lid % 4u;
  let l = lid % 4u;
  let m = mat4x4f(share_buf[q + l], share_buf[q + (l ^ 1u)], share_buf[q + (l ^ 2u)], share_buf[q + (l ^ 3u)]);
  workgroupBarrier();
  return m;
}
