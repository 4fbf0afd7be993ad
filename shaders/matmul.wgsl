// @prepend operand_f32.wgsl|operand_f16.wgsl|operand_f32_f16.wgsl matmul_layout.wgsl
// Batched matrix multiply C = A·B, register-blocked: each invocation computes a TM×TN tile of C
// (TM, TN ∈ {4, 8}) held in up to four 4×4 blocks of vec4 registers. Two families:
//
//   direct, direct_vec4 — every invocation loads its own rows of A and columns of B straight
//       from storage, four k at a time. No workgroup memory, no barriers: the fastest form on
//       software adapters (SwiftShader), where barriers and workgroup memory cost more than
//       they save. direct_vec4 binds A and B as array<vec4f> (one vector load and one
//       robustness clamp per 4 elements); the host picks it when both operands are aligned.
//   staged — a workgroup computes a (WGY·TM)×(WGX·TN) tile; slices of A and B, BK deep, are
//       loaded cooperatively into workgroup memory between barriers. Usually faster on GPUs.
//
// Operands are read through their layout, never copied (see matmul_layout.wgsl, prepended with the
// Params, bindings and batch placement every matmul kernel shares).
//
// Edge tiles: row and column indices are clamped into the matrix before the k loop, so the loop
// needs no bounds checks; edge invocations compute a few rows or columns twice and do not store
// them. Only the last k step (when K is not a multiple of 4) masks its loads.
//
// A and B hold `Operand`s (the prepended operand_*.wgsl: f32, or f16 for mixed precision), each
// converted to f32 as it is loaded; C and all arithmetic are f32.

override WGX: u32 = 16;        // invocations per workgroup along N
override WGY: u32 = 4;         // invocations per workgroup along M
override TM: u32 = 4;          // rows of C per invocation: 4 or 8
override TN: u32 = 4;          // columns of C per invocation: 4 or 8
override BK: u32 = 16;         // staged: depth of the k slice held in workgroup memory (multiple of 4)

// Workgroup tile of the staged family in vec4 units, and the row strides of its k-major slices:
// one vec4 of padding, so that invocations storing down a column (a transposing load) spread
// over memory banks instead of all hitting one.
override BM4: u32 = WGY * TM / 4u;
override BN4: u32 = WGX * TN / 4u;
override SA_ROW: u32 = BM4 + 1u;
override SB_ROW: u32 = BN4 + 1u;

// ---- 4×4 blocks in registers ----------------------------------------------------------------

// A 4×4 block by rows. Structs of vectors stay in registers where arrays tend to spill.
struct Blk { r0: vec4f, r1: vec4f, r2: vec4f, r3: vec4f }

// The TM×TN tile of C: block (i, j) covers rows 4i.. and columns 4j.. of the tile.
struct Acc { c00: Blk, c01: Blk, c10: Blk, c11: Blk }

fn tr(x: Blk) -> Blk {
  return Blk(vec4f(x.r0.x, x.r1.x, x.r2.x, x.r3.x), vec4f(x.r0.y, x.r1.y, x.r2.y, x.r3.y),
             vec4f(x.r0.z, x.r1.z, x.r2.z, x.r3.z), vec4f(x.r0.w, x.r1.w, x.r2.w, x.r3.w));
}

// acc + x·y (x: 4 rows of A over 4 k; y: 4 k rows of B over 4 columns). Plain mul-add: fma()
// may become a library call on CPUs without FMA.
fn mac(acc: Blk, x: Blk, y: Blk) -> Blk {
  return Blk(acc.r0 + x.r0.x * y.r0 + x.r0.y * y.r1 + x.r0.z * y.r2 + x.r0.w * y.r3,
             acc.r1 + x.r1.x * y.r0 + x.r1.y * y.r1 + x.r1.z * y.r2 + x.r1.w * y.r3,
             acc.r2 + x.r2.x * y.r0 + x.r2.y * y.r1 + x.r2.z * y.r2 + x.r2.w * y.r3,
             acc.r3 + x.r3.x * y.r0 + x.r3.y * y.r1 + x.r3.z * y.r2 + x.r3.w * y.r3);
}

// One k step of 4 for the whole tile; x1 / y1 are used only when TM / TN is 8.
fn step(acc: Acc, x0: Blk, x1: Blk, y0: Blk, y1: Blk) -> Acc {
  var r = acc;
  r.c00 = mac(r.c00, x0, y0);
  if (TN == 8u) { r.c01 = mac(r.c01, x0, y1); }
  if (TM == 8u) { r.c10 = mac(r.c10, x1, y0); }
  if (TM == 8u && TN == 8u) { r.c11 = mac(r.c11, x1, y1); }
  return r;
}

// ---- where a tile lives ---------------------------------------------------------------------

// The vec4 families walk each operand block in vec4 units: four vec4 indices at k = 0 that all
// advance by a fixed step per k step of 4. A is read by rows (vec4 over k) or, when TRANS_A, by k
// (vec4 over m); B by k (vec4 over n) or, when TRANS_B, by columns (vec4 over k). A vec4 over m
// (or n) covers an aligned group of 4 rows (columns), clamped as a whole: M (N) is then a
// multiple of 4.
fn a_walk4(base: u32, m: u32) -> vec4u {
  if (TRANS_A) { return vec4u((base + min(m, p.M - 4u)) / 4u) + LANE * (p.lda / 4u); }
  return a_rows(base, m) / 4u;
}

fn b_walk4(base: u32, n: u32) -> vec4u {
  if (TRANS_B) { return b_cols(base, n) / 4u; }
  return vec4u((base + min(n, p.N - 4u)) / 4u) + LANE * (p.ldb / 4u);
}

// How far the walks move per k step of 4 (4·lda/4 = lda vec4s when stepping over k rows).
fn a_inc4() -> u32 { return select(1u, p.lda, TRANS_A); }
fn b_inc4() -> u32 { return select(p.ldb, 1u, TRANS_B); }

// A k step of 4: its k indices, and which of them are inside [0, K).
struct KStep { k: vec4u, keep: vec4<bool> }

// A step wholly inside K: nothing to mask (the masks fold away).
fn inner_step(k: u32) -> KStep {
  return KStep(vec4u(k) + LANE, vec4<bool>(true));
}

// The last step when K is not a multiple of 4: indices clamped into [0, K), the rest masked.
fn tail_step(k: u32) -> KStep {
  let kk = vec4u(k) + LANE;
  return KStep(min(kk, vec4u(p.K - 1u)), kk < vec4u(p.K));
}

fn zero_outside(v: vec4f, keep: bool) -> vec4f {
  return select(vec4f(0.0), v, keep);
}

// ---- loads for the direct families ----------------------------------------------------------

// Rows o (offsets from a_rows) of A over the four k of s.
fn load_a(o: vec4u, s: KStep) -> Blk {
  let ko = s.k * sak();
  let z = vec4f(0.0);
  return Blk(select(z, vec4f(ga(o.x + ko.x), ga(o.x + ko.y), ga(o.x + ko.z), ga(o.x + ko.w)), s.keep),
             select(z, vec4f(ga(o.y + ko.x), ga(o.y + ko.y), ga(o.y + ko.z), ga(o.y + ko.w)), s.keep),
             select(z, vec4f(ga(o.z + ko.x), ga(o.z + ko.y), ga(o.z + ko.z), ga(o.z + ko.w)), s.keep),
             select(z, vec4f(ga(o.w + ko.x), ga(o.w + ko.y), ga(o.w + ko.z), ga(o.w + ko.w)), s.keep));
}

// The four k rows of s of B over columns o (offsets from b_cols).
fn load_b(o: vec4u, s: KStep) -> Blk {
  let ko = s.k * sbk();
  return Blk(zero_outside(vec4f(gb(o.x + ko.x), gb(o.y + ko.x), gb(o.z + ko.x), gb(o.w + ko.x)), s.keep.x),
             zero_outside(vec4f(gb(o.x + ko.y), gb(o.y + ko.y), gb(o.z + ko.y), gb(o.w + ko.y)), s.keep.y),
             zero_outside(vec4f(gb(o.x + ko.z), gb(o.y + ko.z), gb(o.z + ko.z), gb(o.w + ko.z)), s.keep.z),
             zero_outside(vec4f(gb(o.x + ko.w), gb(o.y + ko.w), gb(o.z + ko.w), gb(o.w + ko.w)), s.keep.w));
}

// The block of A at walk indices i, as rows of A (vec4s over m are transposed).
fn load_a4(i: vec4u) -> Blk {
  let x = Blk(ga4(i.x), ga4(i.y), ga4(i.z), ga4(i.w));
  if (TRANS_A) { return tr(x); }
  return x;
}

fn load_b4(i: vec4u) -> Blk {
  let y = Blk(gb4(i.x), gb4(i.y), gb4(i.z), gb4(i.w));
  if (TRANS_B) { return tr(y); }
  return y;
}

// The last, partial k step. Only operands read as one vec4 per k (A when TRANS_A, B unless
// TRANS_B) can have one: the others need K % 4 = 0 for vec4 loads. `w` is the walk at k = 0.
fn tail_a4(w: vec4u, s: KStep) -> Blk {
  if (!TRANS_A) { return load_a4(w); }
  let i = w.x + s.k * (p.lda / 4u);
  return tr(Blk(zero_outside(ga4(i.x), s.keep.x), zero_outside(ga4(i.y), s.keep.y),
                zero_outside(ga4(i.z), s.keep.z), zero_outside(ga4(i.w), s.keep.w)));
}

fn tail_b4(w: vec4u, s: KStep) -> Blk {
  if (TRANS_B) { return load_b4(w); }
  let i = w.x + s.k * (p.ldb / 4u);
  return Blk(zero_outside(gb4(i.x), s.keep.x), zero_outside(gb4(i.y), s.keep.y),
             zero_outside(gb4(i.z), s.keep.z), zero_outside(gb4(i.w), s.keep.w));
}

// ---- stores ---------------------------------------------------------------------------------

fn store_row(base: u32, m: u32, n: u32, v: vec4f) {
  if (m >= p.M) { return; }
  let i = base + m * p.ldc + n;
  if (n + 3u < p.N) {
    if (ACCUMULATE) {
      c[i] += v.x; c[i + 1u] += v.y; c[i + 2u] += v.z; c[i + 3u] += v.w;
    } else {
      c[i] = v.x; c[i + 1u] = v.y; c[i + 2u] = v.z; c[i + 3u] = v.w;
    }
    return;
  }
  for (var j = 0u; j < 4u && n + j < p.N; j++) {
    if (ACCUMULATE) { c[i + j] += v[j]; } else { c[i + j] = v[j]; }
  }
}

fn store_blk(base: u32, m: u32, n: u32, x: Blk) {
  if (n >= p.N) { return; }
  store_row(base, m, n, x.r0);
  store_row(base, m + 1u, n, x.r1);
  store_row(base, m + 2u, n, x.r2);
  store_row(base, m + 3u, n, x.r3);
}

fn store_tile(base: u32, m: u32, n: u32, acc: Acc) {
  store_blk(base, m, n, acc.c00);
  if (TN == 8u) { store_blk(base, m, n + 4u, acc.c01); }
  if (TM == 8u) { store_blk(base, m + 4u, n, acc.c10); }
  if (TM == 8u && TN == 8u) { store_blk(base, m + 4u, n + 4u, acc.c11); }
}

// ---- direct ---------------------------------------------------------------------------------

// Invocation (lx, ly) of workgroup wid: its tile, or m0 ≥ M / n0 ≥ N when it has none.
fn direct_tile(wid: u32, lid: vec3u) -> Place {
  var t = locate(wid, WGY * TM, WGX * TN);
  t.m0 += lid.y * TM;
  t.n0 += lid.x * TN;
  return t;
}

// One k step of the direct families: load the tile's rows of A and columns of B, multiply.
struct Offsets { ar0: vec4u, ar1: vec4u, bc0: vec4u, bc1: vec4u }

fn direct_step(acc: Acc, o: Offsets, s: KStep) -> Acc {
  var x1: Blk;
  var y1: Blk;
  if (TM == 8u) { x1 = load_a(o.ar1, s); }
  if (TN == 8u) { y1 = load_b(o.bc1, s); }
  return step(acc, load_a(o.ar0, s), x1, load_b(o.bc0, s), y1);
}

@compute @workgroup_size(WGX, WGY)
fn direct(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
          @builtin(local_invocation_id) lid: vec3u) {
  let wid = workgroup_index(wg, nwg);
  if (wid >= p.workgroups) { return; }
  let t = direct_tile(wid, lid);
  if (t.m0 >= p.M || t.n0 >= p.N) { return; }
  let o = Offsets(a_rows(t.a_base, t.m0), a_rows(t.a_base, t.m0 + 4u),
                  b_cols(t.b_base, t.n0), b_cols(t.b_base, t.n0 + 4u));
  let k4 = p.K & ~3u;
  var acc: Acc;
  for (var k = 0u; k < k4; k += 4u) { acc = direct_step(acc, o, inner_step(k)); }
  if (k4 < p.K) { acc = direct_step(acc, o, tail_step(k4)); }
  store_tile(t.c_base, t.m0, t.n0, acc);
}

@compute @workgroup_size(WGX, WGY)
fn direct_vec4(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_id) lid: vec3u) {
  let wid = workgroup_index(wg, nwg);
  if (wid >= p.workgroups) { return; }
  let t = direct_tile(wid, lid);
  if (t.m0 >= p.M || t.n0 >= p.N) { return; }
  let wa0 = a_walk4(t.a_base, t.m0);
  let wa1 = a_walk4(t.a_base, t.m0 + 4u);
  let wb0 = b_walk4(t.b_base, t.n0);
  let wb1 = b_walk4(t.b_base, t.n0 + 4u);
  let ainc = a_inc4();
  let binc = b_inc4();
  let k4 = p.K & ~3u;
  var acc: Acc;
  var x1: Blk;
  var y1: Blk;
  var ia0 = wa0;
  var ia1 = wa1;
  var ib0 = wb0;
  var ib1 = wb1;
  for (var k = 0u; k < k4; k += 4u) {
    if (TM == 8u) { x1 = load_a4(ia1); }
    if (TN == 8u) { y1 = load_b4(ib1); }
    acc = step(acc, load_a4(ia0), x1, load_b4(ib0), y1);
    ia0 += ainc;
    ia1 += ainc;
    ib0 += binc;
    ib1 += binc;
  }
  if (k4 < p.K) {
    let s = tail_step(k4);
    if (TM == 8u) { x1 = tail_a4(wa1, s); }
    if (TN == 8u) { y1 = tail_b4(wb1, s); }
    acc = step(acc, tail_a4(wa0, s), x1, tail_b4(wb0, s), y1);
  }
  store_tile(t.c_base, t.m0, t.n0, acc);
}

// ---- staged ---------------------------------------------------------------------------------

// k-major slices: row kk of sa holds A[m0.., k + kk] (BM values), row kk of sb holds
// B[k + kk, n0..] (BN values).
var<workgroup> sa: array<vec4f, BK * SA_ROW>;
var<workgroup> sb: array<vec4f, BK * SB_ROW>;

fn put(dst_is_a: bool, kk: u32, j: u32, v: f32) {
  if (dst_is_a) { sa[kk * SA_ROW + j / 4u][j % 4u] = v; } else { sb[kk * SB_ROW + j / 4u][j % 4u] = v; }
}

// Cooperative load of the k slice starting at k: each invocation moves every NT-th element, in the
// order the operand is laid out in memory so that neighbouring invocations read neighbours.
fn load_slices(t: Place, k: u32, li: u32) {
  let nt = WGX * WGY;
  let bm = BM4 * 4u;
  let bn = BN4 * 4u;
  for (var e = li; e < bm * BK; e += nt) {
    var mm = e / BK;
    var kk = e % BK;
    if (TRANS_A) { mm = e % bm; kk = e / bm; }
    let m = t.m0 + mm;
    let kg = k + kk;
    var v = 0.0;
    if (m < p.M && kg < p.K) { v = ga(t.a_base + m * sam() + kg * sak()); }
    put(true, kk, mm, v);
  }
  for (var e = li; e < bn * BK; e += nt) {
    var nn = e % bn;
    var kk = e / bn;
    if (TRANS_B) { nn = e / BK; kk = e % BK; }
    let n = t.n0 + nn;
    let kg = k + kk;
    var v = 0.0;
    if (n < p.N && kg < p.K) { v = gb(t.b_base + kg * sbk() + n * sbn()); }
    put(false, kk, nn, v);
  }
}

// Four k rows (kk..kk+3) of the A slice at vec4 column i, as a block by rows of A.
fn slice_a(kk: u32, i: u32) -> Blk {
  return tr(Blk(sa[kk * SA_ROW + i], sa[(kk + 1u) * SA_ROW + i], sa[(kk + 2u) * SA_ROW + i], sa[(kk + 3u) * SA_ROW + i]));
}

fn slice_b(kk: u32, i: u32) -> Blk {
  return Blk(sb[kk * SB_ROW + i], sb[(kk + 1u) * SB_ROW + i], sb[(kk + 2u) * SB_ROW + i], sb[(kk + 3u) * SB_ROW + i]);
}

@compute @workgroup_size(WGX, WGY)
fn staged(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
          @builtin(local_invocation_id) lid: vec3u, @builtin(local_invocation_index) li: u32) {
  let wid = workgroup_index(wg, nwg);
  if (wid >= p.workgroups) { return; }
  let t = locate(wid, WGY * TM, WGX * TN);
  // This invocation's tile within the slices, in vec4 columns.
  let im = lid.y * TM / 4u;
  let jn = lid.x * TN / 4u;
  var acc: Acc;
  var x1: Blk;
  var y1: Blk;
  for (var k = 0u; k < p.K; k += BK) {
    workgroupBarrier();
    load_slices(t, k, li);
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk += 4u) {
      let x0 = slice_a(kk, im);
      let y0 = slice_b(kk, jn);
      if (TM == 8u) { x1 = slice_a(kk, im + 1u); }
      if (TN == 8u) { y1 = slice_b(kk, jn + 1u); }
      acc = step(acc, x0, x1, y0, y1);
    }
  }
  store_tile(t.c_base, t.m0 + lid.y * TM, t.n0 + lid.x * TN, acc);
}
