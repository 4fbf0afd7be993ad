// Combining the lanes of each row, for the row reductions (reduce.wgsl, softmax.wgsl,
// cross_entropy.wgsl, grad_stats.wgsl). A workgroup holds TX rows × WG/TX lanes; the kernel
// declares WG, TX and LANES_FAST (a row's lanes are adjacent invocations; otherwise adjacent
// invocations take adjacent rows). This part is the tree in workgroup memory, one barrier per
// level; rows_workgroup.wgsl and rows_subgroup.wgsl build row_sum() and row_max() on it.

var<workgroup> row_acc: array<f32, WG>;

fn row_slot(tx: u32, lane: u32) -> u32 {
  if (LANES_FAST) { return tx * (WG / TX) + lane; }
  return lane * TX + tx;
}

// NaN test on the bits: compilers may assume finite math and fold `x != x` to false.
fn row_is_nan(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

// Neither NaN nor ±inf (not all exponent bits set).
fn row_is_finite(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}

// Sum, or a max that propagates NaN like PyTorch (a + b is NaN when either is).
fn row_combine(a: f32, b: f32, take_max: bool) -> f32 {
  if (take_max) { return select(max(a, b), a + b, row_is_nan(a) || row_is_nan(b)); }
  return a + b;
}

// Every lane gets its row's sum or max. Call in uniform control flow (it has barriers).
fn tree_combine(v: f32, tx: u32, lane: u32, take_max: bool) -> f32 {
  if (WG / TX == 1u) { return v; } // one lane per row: no workgroup memory, no barriers
  let s = row_slot(tx, lane);
  row_acc[s] = v;
  workgroupBarrier();
  for (var h = (WG / TX) / 2u; h > 0u; h /= 2u) {
    if (lane < h) { row_acc[s] = row_combine(row_acc[s], row_acc[row_slot(tx, lane + h)], take_max); }
    workgroupBarrier();
  }
  let r = row_acc[row_slot(tx, 0u)];
  workgroupBarrier();
  return r;
}
