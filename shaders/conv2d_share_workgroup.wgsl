// Tile sharing for the conv2d kernels through workgroup memory (prepended to a conv2d*.wgsl
// module when the device has no `subgroups`): groups of four consecutive invocations pool the
// quarters they loaded. The kernels call share() in uniform control flow.

var<workgroup> share_buf: array<vec4f, WG>;

fn share_lane(lid: u32) -> u32 {
  return lid % 4u;
}

fn share(mine: vec4f, lid: u32) -> mat4x4f {
  share_buf[lid] = mine;
  workgroupBarrier();
  let q = lid - lid % 4u;
  let m = mat4x4f(share_buf[q], share_buf[q + 1u], share_buf[q + 2u], share_buf[q + 3u]);
  workgroupBarrier();
  return m;
}
