// Bitonic sort of (key, value) pairs of u32, ascending by key then value, in place, with the
// semantics of shaders/sort_pairs.wgsl (the host runs the same sequence of launches): every pair
// is distinct, so the order is one and the same on every run and every device.
//   sort_local {keys}: each block of `block` pairs sorts itself (k = 0) or, for a merge stage k,
//     finishes the steps j < block of that stage.
//   sort_global {keys}: one compare-exchange step (k, j) with j ≥ block over all pairs.
// The direction of a pair at l in stage k is ascending where l & k is 0, as in the WGSL.

import { claim, u32At } from './common';
import { sort_local as L, sort_global as S } from './generated/fields';

/** Pairs per task of a global step. */
// @ts-ignore: decorator
@inline const PAIRS: u32 = 4096;

/** Compare-exchange pairs l and r (addresses): put them in order for the direction. */
// @ts-ignore: decorator
@inline function exchange(pl: usize, pr: usize, ascending: bool): void {
  const ak = load<u32>(pl), av = load<u32>(pl, 4);
  const bk = load<u32>(pr), bv = load<u32>(pr, 4);
  const less = bk < ak || (bk == ak && bv < av);   // b before a
  if (less == ascending) {
    store<u32>(pl, bk);
    store<u32>(pl, bv, 4);
    store<u32>(pr, ak);
    store<u32>(pr, av, 4);
  }
}

// @ts-ignore: decorator
@inline function pair(keys: usize, i: u32): usize {
  return keys + (<usize>i << 3);
}

export function sort_local(args: usize, scratch: usize): void {
  const count = u32At(args, L.count), block = u32At(args, L.block), kStage = u32At(args, L.k);
  const keys = <usize>u32At(args, L.bind.keys) + (<usize>u32At(args, L.keys_offset) << 2);
  const blocks = <i32>(count / block);
  for (let t = claim(args); t < blocks; t = claim(args)) {
    const base = <u32>t * block;
    // From scratch (k = 0): every stage up to the block; else the merge stage k's last steps.
    let k: u32 = kStage == 0 ? 2 : kStage;
    for (;;) {
      for (let j = min(k, block) / 2; j > 0; j /= 2) {
        for (let q: u32 = 0; q < block / 2; q++) {
          const l = 2 * j * (q / j) + q % j;
          exchange(pair(keys, base + l), pair(keys, base + l + j), ((base + l) & k) == 0);
        }
      }
      if (kStage != 0 || k >= block) break;
      k *= 2;
    }
  }
}

export function sort_global(args: usize, scratch: usize): void {
  const count = u32At(args, S.count), k = u32At(args, S.k), j = u32At(args, S.j);
  const keys = <usize>u32At(args, S.bind.keys) + (<usize>u32At(args, S.keys_offset) << 2);
  const half = count / 2;
  const tasks = <i32>((half + PAIRS - 1) / PAIRS);
  for (let t = claim(args); t < tasks; t = claim(args)) {
    const end = min(half, <u32>(t + 1) * PAIRS);
    for (let q = <u32>t * PAIRS; q < end; q++) {
      const l = 2 * j * (q / j) + q % j;
      exchange(pair(keys, l), pair(keys, l + j), (l & k) == 0);
    }
  }
}
