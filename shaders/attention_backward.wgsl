// @prepend operand_f32.wgsl|operand_f16.wgsl share_subgroup.wgsl|share_workgroup.wgsl attention_load_scalar.wgsl|attention_load_vec4.wgsl attention_dh16.wgsl|attention_dh32.wgsl|attention_dh64.wgsl|attention_dh128.wgsl|attention_dh256.wgsl attention_common.wgsl
// Fused attention, backward (FlashAttention-2): the weights P = exp(s − lse) are recomputed block
// by block from the scores and the log-sum-exp the forward pass saved, never stored whole. With
// dP = dO·vᵀ (times the dropout factors Z) and D = rowsum(dO ∘ O):
//   dS = P ∘ (dP − D),   dQ = scale · dS·k,   dK = scale · dSᵀ·q,   dV = (P ∘ Z)ᵀ·dO.
// Three passes: `stats` gives each query row (lse, D); grad_q, where an invocation owns 4 query
// rows and streams the keys (as the forward does), gives dQ; grad_kv, where an invocation owns 4
// keys and streams the query rows, gives dK and dV. Each gradient element is summed by one
// invocation, in key (or query) order: deterministic, with no atomics. (At most 8 storage
// bindings per kernel: WebGPU's default limit.)

// stats {o, lse, dout, stats}: stats[i] = (lse[i], Σ_d dO[i, d] · O[i, d]), one row per invocation
@group(0) @binding(1) var<storage, read> s_o: array<f32>;
@group(0) @binding(2) var<storage, read> s_lse: array<f32>;
@group(0) @binding(3) var<storage, read> s_dout: array<Operand>;
@group(0) @binding(4) var<storage, read_write> s_stats: array<vec2f>;

// grad_q {q, k, v, mask, stats, dout, dq}, grad_kv {q, k, v, mask, stats, dout, dk, dv} and
// grad_kv_packed {q, k, v, mask, stats, dout, dkv}: dK and dV in one buffer (one [B, T, 3·D]
// gradient of a fused projection), bound once since two writable bindings may not overlap.
@group(0) @binding(5) var<storage, read> stats: array<vec2f>;    // (lse, D) per query row
// (dO, binding 6, comes from attention_load_*.wgsl)
@group(0) @binding(7) var<storage, read_write> dq: array<f32>;
@group(0) @binding(7) var<storage, read_write> dk: array<f32>;
@group(0) @binding(8) var<storage, read_write> dv: array<f32>;
@group(0) @binding(7) var<storage, read_write> dkv: array<f32>;

@compute @workgroup_size(WG)
fn row_stats(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
             @builtin(local_invocation_index) lid: u32) {
  let wid = workgroup_index(wg, nwg);
  if (wid >= p.workgroups) { return; }
  let g = wid * WG + lid;
  if (g >= p.rows) { return; }
  var pl: Place;
  pl.b = g / (p.heads * p.tq);
  pl.h = (g / p.tq) % p.heads;
  let t = g % p.tq;
  let ob = row_at(p.o_offset, p.o_strides, pl, t);
  let db = row_at(p.dout_offset, p.dout_strides, pl, t);
  var d = 0.0;
  for (var i = 0u; i < p.dh; i++) { d = fma(f32(s_dout[db + i]), s_o[ob + i], d); }
  s_stats[p.stats_offset / 2u + g] = vec2f(s_lse[p.lse_offset + g], d);
}

// Index of query row i of this (b, h) in stats.
fn stat_index(pl: Place, i: u32) -> u32 {
  return (pl.b * p.heads + pl.h) * p.tq + i;
}

fn row_stat(pl: Place, i: u32) -> vec2f {
  return stats[p.stats_offset / 2u + stat_index(pl, min(i, p.tq - 1u))];
}

@compute @workgroup_size(WG)
fn grad_q(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
          @builtin(local_invocation_index) lid: u32) {
  let wid = workgroup_index(wg, nwg);
  if (wid >= p.workgroups) { return; }
  let pl = locate(wid);
  let lane = select(0u, share_lane(lid), SHARED);
  let rows = vec4u(own_first(pl, lid)) + LANE;
  let qr = own_rows(p.q_offset, p.q_strides, pl, rows.x, p.tq);
  let dr = own_rows(p.dout_offset, p.dout_strides, pl, rows.x, p.tq);
  // qt, dot: the rows' chunks of scale·q and dO, transposed (as attention.wgsl's qt).
  var qa: array<mat4x4f, MAX_DH4>;
  var da: array<mat4x4f, MAX_DH4>;
  for (var c = 0u; c < MAX_DH4; c++) {
    qa[c] = rows_q_t(qr, c) * p.scale;
    da[c] = rows_dout_t(dr, c);
  }
  let qt = tile_of(qa);
  let dot_ = tile_of(da);
  var acc = Tile();
  let st0 = row_stat(pl, rows.x);
  let st1 = row_stat(pl, rows.y);
  let st2 = row_stat(pl, rows.z);
  let st3 = row_stat(pl, rows.w);
  let l_row = vec4f(st0.x, st1.x, st2.x, st3.x);
  let d_row = vec4f(st0.y, st1.y, st2.y, st3.y);
  let dropping = p.drop > 0.0;
  var row_keys = vec4u(0u);
  if (dropping) {
    row_keys = vec4u(drop_row_key(pl, rows.x), drop_row_key(pl, rows.y), drop_row_key(pl, rows.z), drop_row_key(pl, rows.w));
  }
  var kend = p.tk;
  if (p.causal != 0u) { kend = min(kend, min(pl.first + 4u * WG, p.tq) + p.shift); }
  for (var j0 = 0u; j0 < kend; j0 += 4u) {
    let keys = vec4u(j0) + (vec4u(lane) ^ LANE);
    let kr = stream_rows(p.k_offset, p.k_strides, pl, j0, lane, p.tk);
    let vr = stream_rows(p.v_offset, p.v_strides, pl, j0, lane, p.tk);
    let blk = scores_kv(qt, dot_, kr, vr, lid);
    // Columns r: row r's values for the 4 keys.
    let st = transpose(blk.s);
    let dpt = transpose(blk.dp);
    var g = dpt;
    if (dropping) {
      g = mat4x4f(g[0] * drop_factor4(row_keys.x, keys), g[1] * drop_factor4(row_keys.y, keys),
                  g[2] * drop_factor4(row_keys.z, keys), g[3] * drop_factor4(row_keys.w, keys));
    }
    // (Written out row by row: a dynamic index into a vector or matrix is slow on SwiftShader.)
    let ds = mat4x4f(exp(st[0] + bias4(pl, rows.x, keys) - l_row.x) * (g[0] - d_row.x),
                     exp(st[1] + bias4(pl, rows.y, keys) - l_row.y) * (g[1] - d_row.y),
                     exp(st[2] + bias4(pl, rows.z, keys) - l_row.z) * (g[2] - d_row.z),
                     exp(st[3] + bias4(pl, rows.w, keys) - l_row.w) * (g[3] - d_row.w));
    acc = add_products(acc, blk.k, ds);
  }
  let out = chunks_of(acc);
  for (var r = 0u; r < 4u; r++) {
    let row = rows[r];
    if (row >= p.tq) { break; }
    let base = row_at(p.dq_offset, p.dq_strides, pl, row);
    for (var c = 0u; 4u * c < p.dh; c++) {
      let x = out[c][r] * p.scale;
      for (var d = 0u; d < 4u; d++) {
        if (4u * c + d < p.dh) { dq[base + 4u * c + d] = x[d]; }
      }
    }
  }
}

// The gradients of an invocation's 4 keys (grad_kv and grad_kv_packed store them).
struct KeyGrads {
  pl: Place,
  keys: vec4u,
  dk: array<mat4x4f, MAX_DH4>,  // scale·dSᵀ·q, column r: key r
  dv: array<mat4x4f, MAX_DH4>,
}

fn key_grads(wid: u32, lid: u32) -> KeyGrads {
  let pl = locate(wid);
  let lane = select(0u, share_lane(lid), SHARED);
  let keys = vec4u(own_first(pl, lid)) + LANE;
  let kr = own_rows(p.k_offset, p.k_strides, pl, keys.x, p.tk);
  let vr = own_rows(p.v_offset, p.v_strides, pl, keys.x, p.tk);
  // kt, vt: the keys' chunks of scale·k and v, transposed, so that kt.c · (queries' chunk) gives
  // the scores of 4 queries (columns) for the 4 keys. dks, dvs: the keys' gradient chunks.
  var ka: array<mat4x4f, MAX_DH4>;
  var va: array<mat4x4f, MAX_DH4>;
  for (var c = 0u; c < MAX_DH4; c++) {
    ka[c] = rows_k_t(kr, c) * p.scale;
    va[c] = rows_v_t(vr, c);
  }
  let kt = tile_of(ka);
  let vt = tile_of(va);
  var dks = Tile();
  var dvs = Tile();
  let dropping = p.drop > 0.0;
  // Queries that see this workgroup's keys: all, or (causal) from its first key's diagonal on.
  var istart = 0u;
  if (p.causal != 0u) { istart = max(pl.first, p.shift) - p.shift; }
  for (var i0 = istart; i0 < p.tq; i0 += 4u) {
    let queries = vec4u(i0) + (vec4u(lane) ^ LANE);
    let qr = stream_rows(p.q_offset, p.q_strides, pl, i0, lane, p.tq);
    let dr = stream_rows(p.dout_offset, p.dout_strides, pl, i0, lane, p.tq);
    let blk = scores_qdout(kt, vt, qr, dr, lid);
    let s = blk.s;
    let dp = blk.dp;
    // Columns n: query (i0 + (lane ^ n))'s values for the 4 keys.
    let st0 = row_stat(pl, queries.x);
    let st1 = row_stat(pl, queries.y);
    let st2 = row_stat(pl, queries.z);
    let st3 = row_stat(pl, queries.w);
    let l_q = vec4f(st0.x, st1.x, st2.x, st3.x);
    let d_q = vec4f(st0.y, st1.y, st2.y, st3.y);
    // Queries past tq (clamped loads) weigh nothing. (Written out query by query: a dynamic
    // index into a vector or matrix is slow on SwiftShader.)
    let w = mat4x4f(select(vec4f(0.0), exp(s[0] + bias4(pl, queries.x, keys) - l_q.x), queries.x < p.tq),
                    select(vec4f(0.0), exp(s[1] + bias4(pl, queries.y, keys) - l_q.y), queries.y < p.tq),
                    select(vec4f(0.0), exp(s[2] + bias4(pl, queries.z, keys) - l_q.z), queries.z < p.tq),
                    select(vec4f(0.0), exp(s[3] + bias4(pl, queries.w, keys) - l_q.w), queries.w < p.tq));
    var pw = w;
    var g = dp;
    if (dropping) {
      let z = mat4x4f(drop_factor4(drop_row_key(pl, queries.x), keys), drop_factor4(drop_row_key(pl, queries.y), keys),
                      drop_factor4(drop_row_key(pl, queries.z), keys), drop_factor4(drop_row_key(pl, queries.w), keys));
      pw = mat4x4f(w[0] * z[0], w[1] * z[1], w[2] * z[2], w[3] * z[3]);
      g = mat4x4f(g[0] * z[0], g[1] * z[1], g[2] * z[2], g[3] * z[3]);
    }
    let ds = mat4x4f(w[0] * (g[0] - d_q.x), w[1] * (g[1] - d_q.y), w[2] * (g[2] - d_q.z), w[3] * (g[3] - d_q.w));
    // dV += (P ∘ Z)ᵀ·dO and dK += dSᵀ·q over these queries: column r of dvs[c] is key r.
    let pwt = transpose(pw);
    let dst = transpose(ds);
    dvs = add_products(dvs, blk.dout, pwt);
    dks = add_products(dks, blk.q, dst);
  }
  return KeyGrads(pl, keys, chunks_of(dks), chunks_of(dvs));
}

@compute @workgroup_size(WG)
fn grad_kv(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_index) lid: u32) {
  let wid = workgroup_index(wg, nwg);
  if (wid >= p.workgroups) { return; }
  let g = key_grads(wid, lid);
  for (var r = 0u; r < 4u; r++) {
    let key = g.keys[r];
    if (key >= p.tk) { break; }
    let kbase = row_at(p.dk_offset, p.dk_strides, g.pl, key);
    let vbase = row_at(p.dv_offset, p.dv_strides, g.pl, key);
    for (var c = 0u; 4u * c < p.dh; c++) {
      let xk = g.dk[c][r] * p.scale;
      let xv = g.dv[c][r];
      for (var d = 0u; d < 4u; d++) {
        if (4u * c + d < p.dh) {
          dk[kbase + 4u * c + d] = xk[d];
          dv[vbase + 4u * c + d] = xv[d];
        }
      }
    }
  }
}

@compute @workgroup_size(WG)
fn grad_kv_packed(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
                  @builtin(local_invocation_index) lid: u32) {
  let wid = workgroup_index(wg, nwg);
  if (wid >= p.workgroups) { return; }
  let g = key_grads(wid, lid);
  for (var r = 0u; r < 4u; r++) {
    let key = g.keys[r];
    if (key >= p.tk) { break; }
    let kbase = row_at(p.dk_offset, p.dk_strides, g.pl, key);
    let vbase = row_at(p.dv_offset, p.dv_strides, g.pl, key);
    for (var c = 0u; 4u * c < p.dh; c++) {
      let xk = g.dk[c][r] * p.scale;
      let xv = g.dv[c][r];
      for (var d = 0u; d < 4u; d++) {
        if (4u * c + d < p.dh) {
          dkv[kbase + 4u * c + d] = xk[d];
          dkv[vbase + 4u * c + d] = xv[d];
        }
      }
    }
  }
}
