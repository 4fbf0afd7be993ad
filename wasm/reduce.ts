// Reductions with the semantics of shaders/reduce.wgsl: sum and max (times `scale`, so mean is
// sum · 1/L; max propagates NaN), argmax (first index of the maximum, NaN counting as largest;
// MERGE folds partial results and their indices), and the scatter of max's gradient.
//
// The host describes the input as m outputs × l reduced elements: output i and reduced index r
// live at src_offset + kept_offset(i) + reduced_offset(r), each a walk over up to 8 merged dimensions.
// `chunks` > 1 cuts each reduction into pieces of chunk_len written as partials [m, chunks].
// Tasks are groups of outputs. Two layouts run four lanes at a time: a reduced run with stride 1
// (a row: vector loads along it) and four neighbouring outputs with kept stride 1 (columns: one
// vector per reduced index, as when summing a bias gradient over the batch).

import { claim, f32At, i32At, u32At, u32Of } from './common';
import { reduce as F, argmax as A, scatter as S } from './generated/fields';
import { hmax, hsum } from './math';

// @ts-ignore: decorator
@inline const GROUP: i32 = 16;

// @ts-ignore: decorator
@inline function walk(args: usize, shape: usize, strides: usize, rank: i32, i: u32): u32 {
  if (rank == 1) return i * u32Of(args, strides, 0);
  let rem = i;
  let o: u32 = 0;
  for (let d = rank - 1; d >= 0; d--) {
    const size = u32Of(args, shape, d);
    o += (rem % size) * u32Of(args, strides, d);
    rem /= size;
  }
  return o;
}

export function reduce(args: usize, scratch: usize): void {
  const m = i32At(args, F.m), l = i32At(args, F.l);
  const chunks = max(1, i32At(args, F.chunks)), chunkLen = i32At(args, F.chunk_len);
  const krank = i32At(args, F.krank), rrank = i32At(args, F.rrank);
  const scale = f32At(args, F.scale);
  const isMax = u32At(args, F.OP) == 1;
  const src = <usize>u32At(args, F.bind.src) + (<usize>u32At(args, F.src_offset) << 2);
  const out = <usize>u32At(args, F.bind.out) + (<usize>u32At(args, F.out_offset) << 2);
  const rowRun = rrank == 1 && u32Of(args, F.rstrides, 0) == 1;
  const colRun = !rowRun && krank >= 1 && u32Of(args, F.kstrides, krank - 1) == 1;
  const lastKept = krank >= 1 ? i32At(args, F.kshape + <usize>((krank - 1) << 2)) : 1;
  const groups = (m + GROUP - 1) / GROUP;
  const tasks = groups * chunks;
  const identity: f32 = isMax ? <f32>-Infinity : <f32>0;
  for (let t = claim(args); t < tasks; t = claim(args)) {
    const piece = t / groups;
    const i0 = (t % groups) * GROUP, i1 = min(m, i0 + GROUP);
    const r0 = piece * chunkLen, r1 = min(l, r0 + chunkLen);
    let i = i0;
    while (i < i1) {
      const base = src + (<usize>walk(args, F.kshape, F.kstrides, krank, i) << 2);
      if (colRun && i + 4 <= i1 && i % lastKept + 4 <= lastKept) {
        // Four outputs side by side: one vector per reduced element.
        let acc = f32x4.splat(identity);
        for (let r = r0; r < r1; r++) {
          const v = v128.load(base + (<usize>walk(args, F.rshape, F.rstrides, rrank, r) << 2));
          acc = isMax ? f32x4.max(acc, v) : f32x4.add(acc, v);
        }
        const o = out + (<usize>(i * chunks + piece) << 2), step = <usize>chunks << 2;
        store<f32>(o, f32x4.extract_lane(acc, 0) * scale);
        store<f32>(o + step, f32x4.extract_lane(acc, 1) * scale);
        store<f32>(o + 2 * step, f32x4.extract_lane(acc, 2) * scale);
        store<f32>(o + 3 * step, f32x4.extract_lane(acc, 3) * scale);
        i += 4;
        continue;
      }
      let s: f32 = identity;
      if (rowRun) {
        let acc = f32x4.splat(identity);
        let r = r0;
        for (; r + 4 <= r1; r += 4) {
          const v = v128.load(base + (<usize>r << 2));
          acc = isMax ? f32x4.max(acc, v) : f32x4.add(acc, v);
        }
        s = isMax ? hmax(acc) : hsum(acc);
        for (; r < r1; r++) {
          const v = load<f32>(base + (<usize>r << 2));
          s = isMax ? max(s, v) : s + v;
        }
      } else {
        for (let r = r0; r < r1; r++) {
          const v = load<f32>(base + (<usize>walk(args, F.rshape, F.rstrides, rrank, r) << 2));
          s = isMax ? max(s, v) : s + v;
        }
      }
      store<f32>(out + (<usize>(i * chunks + piece) << 2), s * scale);
      i++;
    }
  }
}

// @ts-ignore: decorator
@inline function isNaN32(v: f32): bool {
  return v != v;
}

/** (vb, ib) should replace (va, ia): larger, or equal with a smaller index; NaN is the largest. */
// @ts-ignore: decorator
@inline function better(va: f32, ia: u32, vb: f32, ib: u32): bool {
  const na = isNaN32(va), nb = isNaN32(vb);
  if (na || nb) return nb && (!na || ib < ia);
  return vb > va || (vb == va && ib < ia);
}

export function argmax(args: usize, scratch: usize): void {
  const m = i32At(args, A.m), l = i32At(args, A.l);
  const chunks = max(1, i32At(args, A.chunks)), chunkLen = i32At(args, A.chunk_len);
  const krank = i32At(args, A.krank), rrank = i32At(args, A.rrank);
  const merge = u32At(args, A.MERGE) != 0;
  const src = <usize>u32At(args, A.bind.src) + (<usize>u32At(args, A.src_offset) << 2);
  const idxIn = <usize>u32At(args, A.bind.idx_in) + (<usize>u32At(args, A.idx_in_offset) << 2);
  const val = <usize>u32At(args, A.bind.val) + (<usize>u32At(args, A.val_offset) << 2);
  const idx = <usize>u32At(args, A.bind.idx) + (<usize>u32At(args, A.idx_offset) << 2);
  const tasks = m * chunks;
  for (let t = claim(args); t < tasks; t = claim(args)) {
    const piece = t / m, i = t % m;
    const base = <usize>walk(args, A.kshape, A.kstrides, krank, i);
    let v: f32 = -Infinity;
    let at: u32 = 0xffffffff;
    for (let r = piece * chunkLen; r < min(l, (piece + 1) * chunkLen); r++) {
      const p = (base + <usize>walk(args, A.rshape, A.rstrides, rrank, r)) << 2;
      const x = load<f32>(src + p);
      const xi = merge ? load<u32>(idxIn + p) : <u32>r;
      if (better(v, at, x, xi)) {
        v = x;
        at = xi;
      }
    }
    store<f32>(val + (<usize>(i * chunks + piece) << 2), v);
    store<u32>(idx + (<usize>(i * chunks + piece) << 2), at);
  }
}

/** out[kept_offset(i) + reduced_offset(idx[i])] = g[i] (out zero-filled by the host). */
export function scatter(args: usize, scratch: usize): void {
  const m = i32At(args, S.m);
  const krank = i32At(args, S.krank), rrank = i32At(args, S.rrank);
  const g = <usize>u32At(args, S.bind.g) + (<usize>u32At(args, S.g_offset) << 2);
  const idx = <usize>u32At(args, S.bind.idx) + (<usize>u32At(args, S.idx_offset) << 2);
  const out = <usize>u32At(args, S.bind.out) + (<usize>u32At(args, S.out_offset) << 2);
  const CHUNK = 4096;
  const tasks = (m + CHUNK - 1) / CHUNK;
  for (let t = claim(args); t < tasks; t = claim(args)) {
    for (let i = t * CHUNK; i < min(m, (t + 1) * CHUNK); i++) {
      const r = load<u32>(idx + (<usize>i << 2));
      const o = walk(args, S.kshape, S.kstrides, krank, i) + walk(args, S.rshape, S.rstrides, rrank, r);
      store<f32>(out + (<usize>o << 2), load<f32>(g + (<usize>i << 2)));
    }
  }
}
