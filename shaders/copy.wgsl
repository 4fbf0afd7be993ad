// Dtype-agnostic kernels on 32-bit words: fill a buffer with one value, and copy a strided view
// into another (a contiguous tensor, or a block of one: contiguous(), reshape of a
// non-contiguous view, toArray()).

override WG: u32 = 256;
// Dimensions of the (coalesced) shape: a constant, so the index loop unrolls (see elementwise.wgsl).
override RANK: u32 = 8;

struct Params {
  n: u32,
  rank: u32,
  value: u32,    // fill: the 32-bit pattern to write
  offset: u32,   // fill: element offset; copy: element offset of the source view
  shape: array<vec4u, 2>,
  strides: array<vec4u, 2>,      // copy: source strides
  dst_strides: array<vec4u, 2>,  // copy: destination strides
  dst_offset: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

@group(0) @binding(1) var<storage, read_write> f_out: array<u32>;

@group(0) @binding(1) var<storage, read> c_src: array<u32>;
@group(0) @binding(2) var<storage, read_write> c_out: array<u32>;


@compute @workgroup_size(WG)
fn fill(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wg.x + wg.y * nwg.x + wg.z * nwg.x * nwg.y) * WG + lid;
  if (i >= p.n) { return; }
  f_out[i + p.offset] = p.value;
}

@compute @workgroup_size(WG)
fn copy(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wg.x + wg.y * nwg.x + wg.z * nwg.x * nwg.y) * WG + lid;
  if (i >= p.n) { return; }
  var rem = i;
  var src = p.offset;
  var dst = p.dst_offset;
  for (var d = i32(RANK) - 1; d >= 0; d--) {
    let size = p.shape[u32(d) / 4u][u32(d) % 4u];
    let c = rem % size;
    src += c * p.strides[u32(d) / 4u][u32(d) % 4u];
    dst += c * p.dst_strides[u32(d) / 4u][u32(d) % 4u];
    rem = rem / size;
  }
  c_out[dst] = c_src[src];
}
