// What the attention kernels (attention.wgsl, attention_backward.wgsl) share, prepended to each
// after operand_*.wgsl, share_*.wgsl, attention_load_*.wgsl and attention_dh*.wgsl: the Params the
// host writes, where a workgroup works, which rows it streams, the mask and the dropout hash.
//
// Shapes: q [B, H, Tq, Dh], k and v [B, H, Tk, Dh], an additive mask broadcast to [B, H, Tq, Tk].
// Every operand is read through its strides (b, h, t; the head dimension is contiguous), so
// slices and transposes of one QKV projection are read where they lie. A dispatch covers a block
// of B·H (src/ops/attention.ts cuts B·H into blocks that bind); b_base and h_base place the block
// in the whole tensor, for the dropout hash.
//
// Tiles are 4×4 matrices: four rows (or keys) × four head dimensions, a "chunk". An invocation
// keeps its rows' chunks in a Tile (attention_dh*.wgsl: MAX_DH4 chunks as named fields, with the
// loops over them written out); chunks past dh load as zeros, so one kernel serves every Dh up to
// MAX_DH4 · 4.
//
// Loads of k and v (forward, dQ) or of q and dO (dK/dV) can be shared by the four invocations of
// a quad (SHARED): each loads one row's chunk and share() (share_*.wgsl) hands it the others, so
// that an emulated gather on a software adapter serves four invocations. share() wants uniform
// control flow: every loop bound below depends on the workgroup only.

override WG: u32 = 16;        // invocations per workgroup (a multiple of 4: the quads)
override SHARED: bool = true; // share the streamed operand's loads within quads

struct Params {
  heads: u32,         // H of the block being computed
  tq: u32,
  tk: u32,
  dh: u32,            // head dimension
  groups: u32,        // workgroups per (b, h): each covers 4·WG rows (forward, dQ) or keys (dK/dV)
  workgroups: u32,    // groups · B·H of the block
  causal: u32,        // 1: key j is masked for query i when j > i + shift (shift 0: top-left
  shift: u32,         //   aligned, as PyTorch; a KV cache's queries come after `shift` keys)
  has_mask: u32,      // 1: add mask[b, h, i, j] to the scaled scores
  scale: f32,         // the scores' factor (1/√Dh by default)
  drop: f32,          // dropout probability on the attention weights (0: none)
  seed: u32,          // dropout's seed
  b_base: u32,        // the block's first batch element and head in the whole tensor
  h_base: u32,
  heads_total: u32,   // H of the whole tensor (the hash's (b, h) index)
  q_offset: u32,
  k_offset: u32,
  v_offset: u32,
  mask_offset: u32,
  o_offset: u32,      // the output (written forward, read by the backward's stats pass)
  lse_offset: u32,    // the rows' log-sum-exp, [B, H, Tq] of the block
  dout_offset: u32,   // backward: the output's gradient dO
  stats_offset: u32,  // backward: (lse, D = rowsum(dO ∘ O)) per query row, [B, H, Tq, 2] of the block
  rows: u32,          // backward's stats pass: query rows of the block (B·H·Tq)
  dq_offset: u32,
  dk_offset: u32,
  dv_offset: u32,
  q_strides: vec4u,   // element strides along b, h, t
  k_strides: vec4u,
  v_strides: vec4u,
  o_strides: vec4u,
  dout_strides: vec4u,
  dq_strides: vec4u,
  dk_strides: vec4u,
  dv_strides: vec4u,
  mask_strides: vec4u, // along b, h, i, j (0 where the mask is broadcast)
}

@group(0) @binding(0) var<uniform> p: Params;
// q, k, v (bindings 1-3) and dO (binding 6, backward) come with their loads from attention_load_*.wgsl.
@group(0) @binding(4) var<storage, read> mask: array<f32>;

// -inf, made at run time (a constant infinity is a compile error).
fn neg_inf() -> f32 {
  var bits = 0xff800000u;
  return bitcast<f32>(bits);
}

// Where a workgroup works: its (b, h) in the block and in the whole tensor, and its first row.
struct Place {
  b: u32,
  h: u32,
  bh_global: u32,     // (b_base + b) · heads_total + h_base + h: the dropout hash's head index
  first: u32,         // first row (forward, dQ) or key (dK/dV) of the workgroup
}

fn locate(wid: u32) -> Place {
  let bh = wid / p.groups;
  var pl: Place;
  pl.b = bh / p.heads;
  pl.h = bh % p.heads;
  pl.bh_global = (p.b_base + pl.b) * p.heads_total + p.h_base + pl.h;
  pl.first = (wid % p.groups) * 4u * WG;
  return pl;
}

// Element offset of row t of a head, from an operand's offset and strides.
fn row_at(offset: u32, strides: vec4u, pl: Place, t: u32) -> u32 {
  return offset + pl.b * strides.x + pl.h * strides.y + t * strides.z;
}

// The row block of a workgroup's invocation `lid`: rows (or keys) first + 4·lid … + 3.
fn own_first(pl: Place, lid: u32) -> u32 {
  return pl.first + 4u * lid;
}

const LANE = vec4u(0u, 1u, 2u, 3u);

// Element offsets of the 4 rows of an operand streamed at row block t0 (rows t0 + (lane ^ n),
// clamped into the `count` rows): with SHARED, only .x — this invocation's own row t0 + lane;
// otherwise (lane 0) rows t0 … t0 + 3.
fn stream_rows(offset: u32, strides: vec4u, pl: Place, t0: u32, lane: u32, count: u32) -> vec4u {
  let t = min(vec4u(t0 + lane) + select(LANE, vec4u(0u), SHARED), vec4u(count - 1u));
  return vec4u(offset + pl.b * strides.x + pl.h * strides.y) + t * strides.z;
}

// Chunk c of the operand's 4 streamed rows t0 + (lane ^ n), n = 0…3, as matrix columns: with
// SHARED this invocation loads its own row (rows.x) and share() brings the quad's other three;
// otherwise lane is 0 and it loads all four. `rows` are stream_rows() of the operand.
fn stream_q(rows: vec4u, c: u32, lid: u32) -> mat4x4f {
  if (SHARED) { return share(chunk_q(rows.x, c), lid); }
  return mat4x4f(chunk_q(rows.x, c), chunk_q(rows.y, c), chunk_q(rows.z, c), chunk_q(rows.w, c));
}
fn stream_k(rows: vec4u, c: u32, lid: u32) -> mat4x4f {
  if (SHARED) { return share(chunk_k(rows.x, c), lid); }
  return mat4x4f(chunk_k(rows.x, c), chunk_k(rows.y, c), chunk_k(rows.z, c), chunk_k(rows.w, c));
}
fn stream_v(rows: vec4u, c: u32, lid: u32) -> mat4x4f {
  if (SHARED) { return share(chunk_v(rows.x, c), lid); }
  return mat4x4f(chunk_v(rows.x, c), chunk_v(rows.y, c), chunk_v(rows.z, c), chunk_v(rows.w, c));
}
fn stream_dout(rows: vec4u, c: u32, lid: u32) -> mat4x4f {
  if (SHARED) { return share(chunk_dout(rows.x, c), lid); }
  return mat4x4f(chunk_dout(rows.x, c), chunk_dout(rows.y, c), chunk_dout(rows.z, c), chunk_dout(rows.w, c));
}

// Chunk c of 4 rows starting at element offsets r, transposed (column d holds dimension 4c + d
// of each row): the layout of the tiles an invocation keeps.
fn rows_q_t(r: vec4u, c: u32) -> mat4x4f { return transpose(mat4x4f(chunk_q(r.x, c), chunk_q(r.y, c), chunk_q(r.z, c), chunk_q(r.w, c))); }
fn rows_k_t(r: vec4u, c: u32) -> mat4x4f { return transpose(mat4x4f(chunk_k(r.x, c), chunk_k(r.y, c), chunk_k(r.z, c), chunk_k(r.w, c))); }
fn rows_v_t(r: vec4u, c: u32) -> mat4x4f { return transpose(mat4x4f(chunk_v(r.x, c), chunk_v(r.y, c), chunk_v(r.z, c), chunk_v(r.w, c))); }
fn rows_dout_t(r: vec4u, c: u32) -> mat4x4f { return transpose(mat4x4f(chunk_dout(r.x, c), chunk_dout(r.y, c), chunk_dout(r.z, c), chunk_dout(r.w, c))); }

// a with column r scaled by alpha[r], plus v·pt: the forward's output rows rescaled to a new
// maximum, plus the new keys' weighted values. (Plain matrix products: measured 3-5% faster on
// SwiftShader than the same written with fma.)
fn rescale_mac(a: mat4x4f, alpha: vec4f, v: mat4x4f, pt: mat4x4f) -> mat4x4f {
  return mat4x4f(a[0] * alpha.x, a[1] * alpha.y, a[2] * alpha.z, a[3] * alpha.w) + v * pt;
}

// Element offsets of rows t … t + 3 of an operand (clamped into the `count` rows).
fn own_rows(offset: u32, strides: vec4u, pl: Place, t: u32, count: u32) -> vec4u {
  return vec4u(offset + pl.b * strides.x + pl.h * strides.y) + min(vec4u(t) + LANE, vec4u(count - 1u)) * strides.z;
}

// A 32-bit integer hash (lowbias32, as shaders/elementwise.wgsl's dropout).
fn hash_u32(x: u32) -> u32 {
  var h = x;
  h ^= h >> 16u;
  h *= 0x7feb352du;
  h ^= h >> 15u;
  h *= 0x846ca68bu;
  h ^= h >> 16u;
  return h;
}

// Dropout of the weight of key j for query i is a pure function of (seed, b, h, i, j), so the
// backward kernels draw the same mask: a row key from (seed, b, h, i), then one hash per key.
fn drop_row_key(pl: Place, i: u32) -> u32 {
  return hash_u32(hash_u32(p.seed) ^ (pl.bh_global * p.tq + i));
}

// The factor of 4 weights sharing a row key (keys j … j + 3): 0 for a dropped weight,
// 1 / (1 − drop) for a kept one.
fn drop_factor4(row_key: u32, j: vec4u) -> vec4f {
  let h = vec4u(hash_u32(row_key ^ j.x), hash_u32(row_key ^ j.y), hash_u32(row_key ^ j.z), hash_u32(row_key ^ j.w));
  let r = vec4f(h >> vec4u(8u)) * (1.0 / 16777216.0);
  return select(vec4f(0.0), vec4f(1.0 / (1.0 - p.drop)), r >= vec4f(p.drop));
}

// The additive mask and the causal and sequence bounds for query i and keys j (4 of them):
// mask values, or -inf for keys past tk or (causal) past i + shift.
fn bias4(pl: Place, i: u32, j: vec4u) -> vec4f {
  var b = vec4f(0.0);
  if (p.has_mask != 0u) {
    let s = p.mask_strides;
    let base = p.mask_offset + pl.b * s.x + pl.h * s.y + min(i, p.tq - 1u) * s.z;
    let jj = min(j, vec4u(p.tk - 1u)) * s.w;
    b = vec4f(mask[base + jj.x], mask[base + jj.y], mask[base + jj.z], mask[base + jj.w]);
  }
  var out_of_range = j >= vec4u(p.tk);
  if (p.causal != 0u) { out_of_range = out_of_range | (j > vec4u(i + p.shift)); }
  return select(b, vec4f(neg_inf()), out_of_range);
}
