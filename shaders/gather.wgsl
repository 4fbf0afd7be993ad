// Reading by index (embedding, indexSelect, gather): every output element reads the source element
// that its id names along the indexed dimension. Also the first step of their backward pass: the
// sort keys of the deterministic scatter-add (src/ops/scatter-add.ts).
//
// Output element i walks the output shape; the id is read at Σ coords·idx_strides (0 along the
// dimensions the ids do not vary with) and the source element at
// Σ coords·src_strides + id·axis_stride (src_strides 0 along the indexed dimension, and along
// output dimensions that only the ids walk). Elements are moved as 32-bit words (float32 or int32).
//   gather {idx, src, out, status}: out[i] = src[…]; an id outside [0, limit) sets the device-side
//     assert and writes 0. A source larger than one binding comes in blocks [lo, lo + len) of the
//     indexed dimension: ids outside the block are left to the launch that binds theirs.
//   keys {idx, keys}: entry i (P ≥ n of them, P a power of two) gets (key, i): the key is the
//     offset of the element (or row) the entry adds into, Σ coords·src_strides + id·axis_stride;
//     0xffffffff for an id out of range and for the padding entries past n (sorted last, skipped).

override WG: u32 = 256;
// Dimensions of the (coalesced) output shape: a constant, so the index loop unrolls.
override RANK: u32 = 8;

struct Params {
  n: u32,             // output elements (keys: entries)
  padded: u32,        // keys: entries including the padding (a power of two)
  limit: u32,         // size of the indexed dimension: ids must be in [0, limit)
  lo: u32,            // gather: the block of the indexed dimension that src binds
  len: u32,
  axis_stride: u32,   // element stride of the indexed dimension (keys: of the target)
  code: u32,          // device-assert code for an id out of range
  idx_offset: u32,
  src_offset: u32,
  out_offset: u32,
  keys_offset: u32,
  shape: array<vec4u, 2>,        // output (keys: entries) shape, up to 8 dimensions
  idx_strides: array<vec4u, 2>,  // element strides of the ids per output dimension
  src_strides: array<vec4u, 2>,  // element strides of the source (keys: target) per output dimension
}

@group(0) @binding(0) var<uniform> p: Params;

// gather {idx, src, out, status}
@group(0) @binding(1) var<storage, read> g_idx: array<i32>;
@group(0) @binding(2) var<storage, read> g_src: array<u32>;
@group(0) @binding(3) var<storage, read_write> g_out: array<u32>;
@group(0) @binding(4) var<storage, read_write> g_status: array<atomic<u32>>;

// keys {idx, keys}: keys as (key, entry) pairs of u32
@group(0) @binding(1) var<storage, read> k_idx: array<i32>;
@group(0) @binding(2) var<storage, read_write> k_keys: array<u32>;

// Offsets of element i in the ids and in the source (without the id's part).
fn offsets(i: u32) -> vec2u {
  var rem = i;
  var o = vec2u(0u, 0u);
  for (var d = i32(RANK) - 1; d >= 0; d--) {
    let q = u32(d) / 4u;
    let r = u32(d) % 4u;
    let size = p.shape[q][r];
    let c = rem % size;
    rem = rem / size;
    o += c * vec2u(p.idx_strides[q][r], p.src_strides[q][r]);
  }
  return o;
}

@compute @workgroup_size(WG)
fn gather(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
          @builtin(local_invocation_index) lid: u32) {
  let i = workgroup_index(wg, nwg) * WG + lid;
  if (i >= p.n) { return; }
  let o = offsets(i);
  let id = g_idx[p.idx_offset + o.x];
  if (id < 0 || u32(id) >= p.limit) {
    atomicMax(&g_status[0], p.code);
    g_out[p.out_offset + i] = 0u;
    return;
  }
  let v = u32(id);
  if (v < p.lo || v - p.lo >= p.len) { return; }
  g_out[p.out_offset + i] = g_src[p.src_offset + o.y + (v - p.lo) * p.axis_stride];
}

@compute @workgroup_size(WG)
fn keys(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = workgroup_index(wg, nwg) * WG + lid;
  if (i >= p.padded) { return; }
  var key = 0xffffffffu;
  var entry = 0xffffffffu;
  if (i < p.n) {
    let o = offsets(i);
    let id = k_idx[p.idx_offset + o.x];
    if (id >= 0 && u32(id) < p.limit) { key = o.y + u32(id) * p.axis_stride; }
    entry = i;
  }
  k_keys[p.keys_offset + 2u * i] = key;
  k_keys[p.keys_offset + 2u * i + 1u] = entry;
}
