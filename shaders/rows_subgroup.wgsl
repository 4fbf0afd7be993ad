// Row combining with subgroup operations (devices with `subgroups`; see rows_tree.wgsl). When a
// row's lanes are adjacent invocations (LANES_FAST) and at least a subgroup wide (the host gives a
// row 1 lane or at least the adapter's largest subgroup size, src/ops/rows.ts), every subgroup lies
// within one row: subgroupAdd / subgroupMax combine it, and a row's subgroups meet in workgroup
// memory behind one barrier instead of one per tree level. Any subgroup size works (4 on
// SwiftShader, 32 or 64 on GPUs): it is counted at run time. This relies on a subgroup holding
// consecutive local invocation indices, as every implementation known does; test/subgroups.test.ts
// and scripts/gpu-check.ts compare the results with the tree's. Column reductions (lanes not
// adjacent: adjacent invocations take adjacent outputs) have nothing to share in a subgroup and
// use the tree.

enable subgroups;

fn subgroup_combine(v: f32, tx: u32, lane: u32, take_max: bool) -> f32 {
  let lanes = WG / TX;
  if (lanes == 1u) { return v; }
  if (!LANES_FAST) { return tree_combine(v, tx, lane, take_max); }
  let sg = subgroupAdd(1u); // the subgroup size: every invocation is active here
  var s: f32;
  if (take_max) {
    // subgroupMax leaves NaN to the implementation; the sum of the NaNs (if any) carries one.
    let nans = subgroupAdd(select(0.0, v, row_is_nan(v)));
    s = select(subgroupMax(v), nans, row_is_nan(nans));
  } else {
    s = subgroupAdd(v);
  }
  // The first lane of each subgroup posts its result; a row's lanes/sg results are then combined.
  if (lane % sg == 0u) { row_acc[row_slot(tx, lane / sg)] = s; }
  workgroupBarrier();
  var r = row_acc[row_slot(tx, 0u)];
  for (var j = 1u; j < lanes / sg; j++) {
    r = row_combine(r, row_acc[row_slot(tx, j)], take_max);
  }
  workgroupBarrier();
  return r;
}

fn row_sum(v: f32, tx: u32, lane: u32) -> f32 {
  return subgroup_combine(v, tx, lane, false);
}

fn row_max(v: f32, tx: u32, lane: u32) -> f32 {
  return subgroup_combine(v, tx, lane, true);
}
