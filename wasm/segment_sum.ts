// The deterministic scatter-add's sums, with the semantics of shaders/segment_sum.wgsl: entries
// sorted by (key, entry) form runs of equal keys; each run's rows of g are summed in entry order
// into the output at its key, every output element written by one task.
//   segment_chunks {keys, g, out, first, last}: for each (chunk, column), walk the chunk's entries
//     in order: a run that starts and ends in the chunk goes to out, the part of a run that
//     crosses the chunk's end to last[chunk], the part that began earlier and ends here to
//     first[chunk].
//   segment_spans {keys, first, last, out}: for each run that crosses a chunk end, the chunk where
//     it starts adds last[h] + last[h+1] + … + first[end chunk].
// Entry e's element of column c in g is g_outer·(c / inner) + g_entry·e + c % inner; the output
// element of key κ is (κ − lo) + out_outer·(c / inner) + c % inner; keys outside [lo, hi) belong
// to another block of the output and are skipped.

import { claim, u32At } from './common';
import { segment_chunks as C, segment_spans as S } from './generated/fields';

/** (chunk, column) items per task. */
// @ts-ignore: decorator
@inline const ITEMS: u32 = 64;

// @ts-ignore: decorator
@inline function keyAt(keys: usize, s: u32): u32 {
  return load<u32>(keys + (<usize>(2 * s) << 2));
}

export function segment_chunks(args: usize, scratch: usize): void {
  const n = u32At(args, C.n), width = u32At(args, C.width), chunk = u32At(args, C.chunk), chunks = u32At(args, C.chunks);
  const inner = u32At(args, C.inner), gOuter = u32At(args, C.g_outer), gEntry = u32At(args, C.g_entry), outOuter = u32At(args, C.out_outer);
  const lo = u32At(args, C.lo), hi = u32At(args, C.hi);
  const keys = <usize>u32At(args, C.bind.keys) + (<usize>u32At(args, C.keys_offset) << 2);
  const g = <usize>u32At(args, C.bind.g) + (<usize>u32At(args, C.g_offset) << 2);
  const out = <usize>u32At(args, C.bind.out) + (<usize>u32At(args, C.out_offset) << 2);
  const first = <usize>u32At(args, C.bind.first) + (<usize>u32At(args, C.first_offset) << 2);
  const last = <usize>u32At(args, C.bind.last) + (<usize>u32At(args, C.last_offset) << 2);
  const items = chunks * width;
  const tasks = <i32>((items + ITEMS - 1) / ITEMS);
  for (let task = claim(args); task < tasks; task = claim(args)) {
    const end = min(items, <u32>(task + 1) * ITEMS);
    for (let t = <u32>task * ITEMS; t < end; t++) {
      const ch = t / width, c = t % width;
      const s0 = ch * chunk, s1 = min(s0 + chunk, n);
      const gCol = g + (<usize>(gOuter * (c / inner) + c % inner) << 2);
      const outCol = out + (<usize>(outOuter * (c / inner) + c % inner) << 2);
      let acc: f32 = 0;
      let began = false;
      for (let s = s0; s < s1; s++) {
        const key = keyAt(keys, s);
        if (key < lo || key >= hi) continue;
        const head = s == 0 || keyAt(keys, s - 1) != key;
        if (head || s == s0) {
          acc = 0;
          began = head;
        }
        acc += load<f32>(gCol + (<usize>(gEntry * load<u32>(keys + (<usize>(2 * s + 1) << 2))) << 2));
        const tail = s + 1 == n || keyAt(keys, s + 1) != key;
        if (tail) {
          if (began) store<f32>(outCol + (<usize>(key - lo) << 2), acc);
          else store<f32>(first + (<usize>t << 2), acc);
        } else if (s + 1 == s1) {
          store<f32>(last + (<usize>t << 2), acc);
        }
      }
    }
  }
}

export function segment_spans(args: usize, scratch: usize): void {
  const n = u32At(args, S.n), width = u32At(args, S.width), chunk = u32At(args, S.chunk), chunks = u32At(args, S.chunks);
  const inner = u32At(args, S.inner), outOuter = u32At(args, S.out_outer);
  const lo = u32At(args, S.lo), hi = u32At(args, S.hi);
  const keys = <usize>u32At(args, S.bind.keys) + (<usize>u32At(args, S.keys_offset) << 2);
  const first = <usize>u32At(args, S.bind.first) + (<usize>u32At(args, S.first_offset) << 2);
  const last = <usize>u32At(args, S.bind.last) + (<usize>u32At(args, S.last_offset) << 2);
  const out = <usize>u32At(args, S.bind.out) + (<usize>u32At(args, S.out_offset) << 2);
  const items = chunks * width;
  const tasks = <i32>((items + ITEMS - 1) / ITEMS);
  for (let task = claim(args); task < tasks; task = claim(args)) {
    const end = min(items, <u32>(task + 1) * ITEMS);
    for (let t = <u32>task * ITEMS; t < end; t++) {
      const ch = t / width, c = t % width;
      const s0 = ch * chunk, s1 = s0 + chunk;
      if (s1 >= n) continue;
      // Does the run at the chunk's end cross it, and did it begin in this chunk?
      const key = keyAt(keys, s1 - 1);
      if (key < lo || key >= hi || keyAt(keys, s1) != key) continue;
      if (s0 > 0 && keyAt(keys, s0) == key && keyAt(keys, s0 - 1) == key) continue;
      let total = load<f32>(last + (<usize>t << 2));
      for (let h = ch + 1; h < chunks; h++) {
        const e = (h + 1) * chunk;
        if (e < n && keyAt(keys, e) == key) {
          total += load<f32>(last + (<usize>(h * width + c) << 2));
        } else {
          total += load<f32>(first + (<usize>(h * width + c) << 2));
          break;
        }
      }
      store<f32>(out + (<usize>((key - lo) + outOuter * (c / inner) + c % inner) << 2), total);
    }
  }
}
