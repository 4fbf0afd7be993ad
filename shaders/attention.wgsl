// @prepend operand_f32.wgsl|operand_f16.wgsl share_subgroup.wgsl|share_workgroup.wgsl attention_load_scalar.wgsl|attention_load_vec4.wgsl attention_dh16.wgsl|attention_dh32.wgsl|attention_dh64.wgsl|attention_dh128.wgsl|attention_dh256.wgsl attention_common.wgsl
// Fused attention, forward: out = softmax(scale · q·kᵀ + mask) · v for every (b, h), in one pass
// over the keys with an online softmax (FlashAttention): the Tq × Tk scores are never stored. Each
// row keeps its running maximum m and sum l; a new block of keys rescales the row's output by
// exp(m_old − m_new). The row's log-sum-exp m + log l is saved for the backward pass, which
// recomputes the weights from it (attention_backward.wgsl).
//
// An invocation computes 4 query rows; a workgroup 4·WG consecutive rows of one (b, h). Keys come
// 4 at a time: scores for 4 rows × 4 keys accumulate over the head dimension's chunks
// (scores_k), then the 4×4 weights update the 4 rows' outputs chunk by chunk (update_v). Causal workgroups stop at their last
// row's diagonal (a bound every invocation of the workgroup shares, as share() wants).
// Dropout (drop > 0) zeroes weights after the softmax (the sum l is taken before), as PyTorch does.

@group(0) @binding(5) var<storage, read_write> o: array<f32>;
@group(0) @binding(6) var<storage, read_write> lse: array<f32>;

fn hmax(x: vec4f) -> f32 {
  return max(max(x.x, x.y), max(x.z, x.w));
}

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_index) lid: u32) {
  let wid = workgroup_index(wg, nwg);
  if (wid >= p.workgroups) { return; }
  let pl = locate(wid);
  let lane = select(0u, share_lane(lid), SHARED);
  let rows = vec4u(own_first(pl, lid)) + LANE;
  let qr = own_rows(p.q_offset, p.q_strides, pl, rows.x, p.tq);
  // qt: the 4 rows' chunks of q, scaled, transposed (column d holds dimension 4c + d of each
  // row), so that qt.c · (keys' chunk) gives 4 keys' scores as columns. acc: the rows' output.
  var qa: array<mat4x4f, MAX_DH4>;
  for (var c = 0u; c < MAX_DH4; c++) { qa[c] = rows_q_t(qr, c) * p.scale; }
  let qt = tile_of(qa);
  var acc = Tile();
  let dropping = p.drop > 0.0;
  var row_keys = vec4u(0u);
  if (dropping) {
    row_keys = vec4u(drop_row_key(pl, rows.x), drop_row_key(pl, rows.y), drop_row_key(pl, rows.z), drop_row_key(pl, rows.w));
  }
  // Keys this workgroup needs: all, or (causal) up to its last row's diagonal.
  var kend = p.tk;
  if (p.causal != 0u) { kend = min(kend, min(pl.first + 4u * WG, p.tq) + p.shift); }
  let minus_inf = vec4f(neg_inf());
  var m = minus_inf;
  var l = vec4f(0.0);
  for (var j0 = 0u; j0 < kend; j0 += 4u) {
    let keys = vec4u(j0) + (vec4u(lane) ^ LANE);
    let kr = stream_rows(p.k_offset, p.k_strides, pl, j0, lane, p.tk);
    let s = scores_k(qt, kr, lid);
    // st[r]: row r's scores for the 4 keys, with the mask and the bounds.
    let t = transpose(s);
    let st = mat4x4f(t[0] + bias4(pl, rows.x, keys), t[1] + bias4(pl, rows.y, keys),
                     t[2] + bias4(pl, rows.z, keys), t[3] + bias4(pl, rows.w, keys));
    let m_new = max(m, vec4f(hmax(st[0]), hmax(st[1]), hmax(st[2]), hmax(st[3])));
    // A row with no key yet (all -inf) subtracts 0: its weights stay 0 and its sum 0.
    let m_ref = select(m_new, vec4f(0.0), m_new == minus_inf);
    let alpha = exp(m - m_ref);
    var pt = mat4x4f(exp(st[0] - m_ref.x), exp(st[1] - m_ref.y), exp(st[2] - m_ref.z), exp(st[3] - m_ref.w));
    l = l * alpha + vec4f(dot(pt[0], vec4f(1.0)), dot(pt[1], vec4f(1.0)), dot(pt[2], vec4f(1.0)), dot(pt[3], vec4f(1.0)));
    m = m_new;
    if (dropping) {
      pt = mat4x4f(pt[0] * drop_factor4(row_keys.x, keys), pt[1] * drop_factor4(row_keys.y, keys),
                   pt[2] * drop_factor4(row_keys.z, keys), pt[3] * drop_factor4(row_keys.w, keys));
    }
    acc = update_v(acc, alpha, pt, stream_rows(p.v_offset, p.v_strides, pl, j0, lane, p.tk), lid);
  }
  // A row whose keys are all masked has l = 0: its output is NaN, as softmax over -inf gives.
  let inv_l = 1.0 / l;
  let out = chunks_of(acc);
  for (var r = 0u; r < 4u; r++) {
    let row = rows[r];
    if (row >= p.tq) { break; }
    let base = row_at(p.o_offset, p.o_strides, pl, row);
    for (var c = 0u; 4u * c < p.dh; c++) {
      let x = out[c][r] * inv_l[r];
      for (var d = 0u; d < 4u; d++) {
        if (4u * c + d < p.dh) { o[base + 4u * c + d] = x[d]; }
      }
    }
    lse[p.lse_offset + (pl.b * p.heads + pl.h) * p.tq + row] = m[r] + log(l[r]);
  }
}
