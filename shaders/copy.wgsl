// Dtype-agnostic kernels on 32-bit words: fill a view with one value, and copy a strided view into
// another (a contiguous tensor, or a block of one: contiguous(), reshape of a non-contiguous view,
// toArray()). Bindings: fill {out}; copy {src, out} (src/kernels/copy.ts).

override WG: u32 = 256;
// Dimensions of the (coalesced) shape: a constant, so the index loop unrolls (see elementwise.wgsl).
override RANK: u32 = 8;

struct Params {
  n: u32,
  value: u32,                    // fill: the 32-bit pattern to write
  src_offset: u32,               // copy: element offset of the source view in its binding
  out_offset: u32,               // element offset of the destination view in its binding
  shape: array<vec4u, 2>,
  src_strides: array<vec4u, 2>,  // copy: source strides
  out_strides: array<vec4u, 2>,  // copy: destination strides
}

@group(0) @binding(0) var<uniform> p: Params;

@group(0) @binding(1) var<storage, read_write> f_out: array<u32>;

@group(0) @binding(1) var<storage, read> c_src: array<u32>;
@group(0) @binding(2) var<storage, read_write> c_out: array<u32>;


@compute @workgroup_size(WG)
fn fill(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = workgroup_index(wg, nwg) * WG + lid;
  if (i >= p.n) { return; }
  f_out[i + p.out_offset] = p.value;
}

@compute @workgroup_size(WG)
fn copy(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = workgroup_index(wg, nwg) * WG + lid;
  if (i >= p.n) { return; }
  var rem = i;
  var src = p.src_offset;
  var dst = p.out_offset;
  for (var d = i32(RANK) - 1; d >= 0; d--) {
    let size = p.shape[u32(d) / 4u][u32(d) % 4u];
    let c = rem % size;
    src += c * p.src_strides[u32(d) / 4u][u32(d) % 4u];
    dst += c * p.out_strides[u32(d) / 4u][u32(d) % 4u];
    rem = rem / size;
  }
  c_out[dst] = c_src[src];
}
