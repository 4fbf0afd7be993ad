// Prepended to every kernel module (src/kernels/kernel.ts). The runtime folds a dispatch of more
// workgroups than one grid dimension allows into a 2-D/3-D grid (fold() in
// src/runtime/executor.ts), so every kernel computes its flat workgroup index with this, and
// returns early at or past its own workgroup count, since folding can round the grid up.
fn workgroup_index(wg: vec3u, nwg: vec3u) -> u32 {
  return wg.x + wg.y * nwg.x + wg.z * nwg.x * nwg.y;
}
