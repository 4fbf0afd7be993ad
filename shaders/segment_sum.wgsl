// The deterministic scatter-add's sums (src/ops/scatter-add.ts): entries sorted by (key, entry)
// form runs of equal keys; each run's rows of g are summed, in entry order, into the output row at
// its key. No float atomics: every output element is written by exactly one invocation, and every
// sum is taken in an order fixed by the data alone, so the bits are the same on every run.
//
// The sorted entries are cut into chunks of `chunk` entries. `chunks` {keys, g, out, first, last}:
// one invocation per (chunk, column) walks its chunk in order. A run that starts and ends in the
// chunk is written to `out` at once; the part of a run that crosses the chunk's end goes to
// last[chunk] (its start, or the whole chunk), the part that began in an earlier chunk and ends
// here to first[chunk]. `spans` {keys, first, last, out}: for each run that crosses a chunk end,
// the invocation of the chunk where it starts adds last[h] + last[h+1] + … + first[end chunk].
//
// Addresses: entry e's element of column c in g is g_outer·(c / inner) + g_entry·e + c % inner;
// the output element of key κ is (κ − lo) + out_outer·(c / inner) + c % inner. Keys outside
// [lo, hi) belong to another block of the output (one larger than a binding) and are skipped.

override WG: u32 = 256;

struct Params {
  n: u32,            // entries
  width: u32,        // columns per entry
  chunk: u32,        // entries per chunk
  chunks: u32,
  inner: u32,
  g_outer: u32,
  g_entry: u32,
  out_outer: u32,
  lo: u32,
  hi: u32,
  keys_offset: u32,
  g_offset: u32,
  out_offset: u32,
  first_offset: u32,
  last_offset: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

// chunks {keys, g, out, first, last}
@group(0) @binding(1) var<storage, read> c_keys: array<u32>;
@group(0) @binding(2) var<storage, read> c_g: array<f32>;
@group(0) @binding(3) var<storage, read_write> c_out: array<f32>;
@group(0) @binding(4) var<storage, read_write> c_first: array<f32>;
@group(0) @binding(5) var<storage, read_write> c_last: array<f32>;

// spans {keys, first, last, out}
@group(0) @binding(1) var<storage, read> s_keys: array<u32>;
@group(0) @binding(2) var<storage, read> s_first: array<f32>;
@group(0) @binding(3) var<storage, read> s_last: array<f32>;
@group(0) @binding(4) var<storage, read_write> s_out: array<f32>;

fn out_index(key: u32, c: u32) -> u32 {
  return p.out_offset + (key - p.lo) + p.out_outer * (c / p.inner) + c % p.inner;
}

fn in_block(key: u32) -> bool {
  return key >= p.lo && key < p.hi;
}

@compute @workgroup_size(WG)
fn chunks(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
          @builtin(local_invocation_index) lid: u32) {
  let t = workgroup_index(wg, nwg) * WG + lid;
  if (t >= p.chunks * p.width) { return; }
  let ch = t / p.width;
  let c = t % p.width;
  let s0 = ch * p.chunk;
  let s1 = min(s0 + p.chunk, p.n);
  let g_col = p.g_offset + p.g_outer * (c / p.inner) + c % p.inner;
  var acc = 0.0;
  var began = false;
  for (var s = s0; s < s1; s++) {
    let key = c_keys[p.keys_offset + 2u * s];
    if (!in_block(key)) { continue; }
    let head = s == 0u || c_keys[p.keys_offset + 2u * (s - 1u)] != key;
    if (head || s == s0) {
      acc = 0.0;
      began = head;
    }
    acc += c_g[g_col + p.g_entry * c_keys[p.keys_offset + 2u * s + 1u]];
    let tail = s + 1u == p.n || c_keys[p.keys_offset + 2u * (s + 1u)] != key;
    if (tail) {
      if (began) {
        c_out[out_index(key, c)] = acc;
      } else {
        c_first[p.first_offset + t] = acc;
      }
    } else if (s + 1u == s1) {
      c_last[p.last_offset + t] = acc;
    }
  }
}

@compute @workgroup_size(WG)
fn spans(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
         @builtin(local_invocation_index) lid: u32) {
  let t = workgroup_index(wg, nwg) * WG + lid;
  if (t >= p.chunks * p.width) { return; }
  let ch = t / p.width;
  let c = t % p.width;
  let s0 = ch * p.chunk;
  let s1 = s0 + p.chunk;
  if (s1 >= p.n) { return; }
  // Does the run at the chunk's end cross it, and did it begin in this chunk?
  let key = s_keys[p.keys_offset + 2u * (s1 - 1u)];
  if (!in_block(key) || s_keys[p.keys_offset + 2u * s1] != key) { return; }
  if (s0 > 0u && s_keys[p.keys_offset + 2u * s0] == key && s_keys[p.keys_offset + 2u * (s0 - 1u)] == key) { return; }
  var total = s_last[p.last_offset + t];
  for (var h = ch + 1u; h < p.chunks; h++) {
    let end = (h + 1u) * p.chunk;
    if (end < p.n && s_keys[p.keys_offset + 2u * end] == key) {
      total += s_last[p.last_offset + h * p.width + c];
    } else {
      total += s_first[p.first_offset + h * p.width + c];
      break;
    }
  }
  s_out[out_index(key, c)] = total;
}
