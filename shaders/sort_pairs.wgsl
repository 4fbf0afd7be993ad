// Bitonic sort of (key, value) pairs of u32, ascending by key then value, in place: every pair is
// distinct (the values are the entries' indices), so the order is one and the same on every run
// and every device. The count P is a power of two (padded with 0xffffffff pairs).
//   local {keys}: each workgroup sorts (k = 0) or, for a merge stage k, finishes the steps
//     j < BLOCK of its block of BLOCK = min(2·WG, P) pairs in workgroup memory.
//   global {keys}: one compare-exchange step (k, j) with j ≥ BLOCK over all pairs.

override WG: u32 = 256;

struct Params {
  count: u32,        // P
  block: u32,        // pairs per workgroup in `local` (a power of two ≤ 2·WG)
  k: u32,            // the merge stage (0: `local` sorts its block from scratch)
  j: u32,            // `global`: the step's distance
  groups: u32,       // workgroups of this dispatch
  keys_offset: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> keys: array<u32>;

var<workgroup> tile: array<vec2u, 2 * WG>;

fn load(i: u32) -> vec2u {
  return vec2u(keys[p.keys_offset + 2u * i], keys[p.keys_offset + 2u * i + 1u]);
}

fn store(i: u32, v: vec2u) {
  keys[p.keys_offset + 2u * i] = v.x;
  keys[p.keys_offset + 2u * i + 1u] = v.y;
}

fn less(a: vec2u, b: vec2u) -> bool {
  return a.x < b.x || (a.x == b.x && a.y < b.y);
}

// The first element l of thread t's pair (l, l + j) in a step of distance j.
fn partner(t: u32, j: u32) -> u32 {
  return 2u * j * (t / j) + t % j;
}

@compute @workgroup_size(WG)
fn global_step(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_index) lid: u32) {
  let wid = workgroup_index(wg, nwg);
  if (wid >= p.groups) { return; }
  let t = wid * WG + lid;
  if (t >= p.count / 2u) { return; }
  let l = partner(t, p.j);
  let r = l + p.j;
  let a = load(l);
  let b = load(r);
  let ascending = (l & p.k) == 0u;
  if (less(b, a) == ascending) {
    store(l, b);
    store(r, a);
  }
}

@compute @workgroup_size(WG)
fn local_steps(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_index) lid: u32) {
  let wid = workgroup_index(wg, nwg);
  // Workgroups past the count (a folded grid) still reach every barrier, and touch nothing.
  let live = wid < p.groups;
  let base = wid * p.block;
  for (var e = lid; e < p.block; e += WG) {
    if (live) { tile[e] = load(base + e); }
  }
  workgroupBarrier();
  // From scratch (k = 0): every stage up to the block; else the merge stage k's last steps.
  var k = select(p.k, 2u, p.k == 0u);
  loop {
    for (var j = min(k, p.block) / 2u; j > 0u; j /= 2u) {
      if (lid < p.block / 2u) {
        let l = partner(lid, j);
        let r = l + j;
        let a = tile[l];
        let b = tile[r];
        if (less(b, a) == (((base + l) & k) == 0u)) {
          tile[l] = b;
          tile[r] = a;
        }
      }
      workgroupBarrier();
    }
    if (p.k != 0u || k >= p.block) { break; }
    k *= 2u;
  }
  for (var e = lid; e < p.block; e += WG) {
    if (live) { store(base + e, tile[e]); }
  }
}
