// Row combining through workgroup memory alone (devices without `subgroups`): see rows_tree.wgsl.

fn row_sum(v: f32, tx: u32, lane: u32) -> f32 {
  return tree_combine(v, tx, lane, false);
}

fn row_max(v: f32, tx: u32, lane: u32) -> f32 {
  return tree_combine(v, tx, lane, true);
}
