// The deterministic scatter-add behind the backward pass of embedding, indexSelect and gather:
// out = zeros, then out[key(e) + column c] += g[e, c] for every entry e (an id, or an element of
// gather's index). Without float atomics, and in an order fixed by the data alone, so the result
// has the same bits on every run, every device and every workgroup order:
//   1. keys (shaders/gather.wgsl): each entry's target offset, paired with the entry's index;
//   2. sort the pairs (shaders/sort_pairs.wgsl, a bitonic sort: all pairs differ, so one order);
//   3. sum each run of equal keys in entry order (shaders/segment_sum.wgsl), in chunks of about
//      √n entries whose runs' pieces are then added chunk by chunk: every id the same costs
//      √n + n/√n serial steps per column, not n.
// The work is O(n log² n) for the sort plus O(n · columns) for the sums, besides zeroing the
// output: cheap when the vocabulary is large and the ids few.

import gatherWGSL from '../../shaders/gather.wgsl?raw';
import segmentSumWGSL from '../../shaders/segment_sum.wgsl?raw';
import sortWGSL from '../../shaders/sort_pairs.wgsl?raw';
import { contiguousCopy } from '../creation';
import { fillView } from '../kernels/copy';
import { defineKernel } from '../kernels/kernel';
import { coalesce, MAX_RANK, padded, WG } from '../kernels/layout';
import { launch } from '../kernels/launch';
import { blocksOf, fitsBinding } from '../kernels/segments';
import { sliceView, type View } from '../kernels/view';
import { tidy } from '../scope';
import { empty, type Tensor } from '../tensor';

const keysKernel = defineKernel('scatterAdd.keys', { code: gatherWGSL, entry: 'keys', bindings: { idx: 'read', keys: 'write' }, wasm: 'gather_keys' });
const sortLocal = defineKernel('scatterAdd.sort', { code: sortWGSL, entry: 'local_steps', bindings: { keys: 'write' }, wasm: 'sort_local' });
const sortGlobal = defineKernel('scatterAdd.merge', { code: sortWGSL, entry: 'global_step', bindings: { keys: 'write' }, wasm: 'sort_global' });
const chunkSums = defineKernel('scatterAdd.sum', {
  code: segmentSumWGSL,
  entry: 'chunks',
  bindings: { keys: 'read', g: 'read', out: 'write', first: 'write', last: 'write' },
  wasm: 'segment_chunks',
});
const spanSums = defineKernel('scatterAdd.spans', {
  code: segmentSumWGSL,
  entry: 'spans',
  bindings: { keys: 'read', first: 'read', last: 'read', out: 'write' },
  wasm: 'segment_spans',
});

/** What to add where: entries are the elements of `idx`; see the file comment. */
export interface Scatter {
  op: string;
  /** The output's shape (contiguous, zeros where nothing is added). */
  shape: readonly number[];
  /** Ids (int32, any view); entry e is its e-th element in row-major order. */
  idx: Tensor;
  /** Ids must be in [0, limit) (others are skipped: the forward pass flagged them). */
  limit: number;
  /** Per dimension of idx: the output stride its coordinate adds to the key (0 when it adds none). */
  keyStrides: readonly number[];
  /** The output stride of one id. */
  axisStride: number;
  /** Columns per entry, and how column c is addressed (see shaders/segment_sum.wgsl). */
  width: number;
  inner: number;
  gOuter: number;
  gEntry: number;
  outOuter: number;
  /**
   * Keys grow with the output's first dimension (true for every key when the ids index it, or
   * the keys are whole offsets), so an output larger than one binding may be cut into blocks of it.
   */
  blockable: boolean;
}

/** The scatter-add of `g` (contiguous, or copied) described by `s`, as a new tensor. */
export function scatterAdd(s: Scatter, g: Tensor): Tensor {
  const out = empty(s.shape, 'float32', `${s.op}.backward`);
  fillView(out, 0);
  const n = s.idx.size;
  if (n === 0 || s.width === 0 || out.size === 0) return out;
  tidy(() => {
    const gc = g.isContiguous ? g : contiguousCopy(g, `${s.op}.backward`);
    const keys = sortedKeys(s, n);
    const chunk = chunkSize(n);
    const chunks = Math.ceil(n / chunk);
    const first = empty([chunks, s.width], 'float32', `${s.op}.backward`);
    const last = empty([chunks, s.width], 'float32', `${s.op}.backward`);
    const threads = chunks * s.width;
    const run = (o: View, lo: number, hi: number) => {
      const params = {
        n, width: s.width, chunk, chunks, inner: s.inner, g_outer: s.gOuter, g_entry: s.gEntry, out_outer: s.outOuter, lo, hi,
      };
      const workgroups = Math.ceil(threads / WG);
      launch(chunkSums, { bind: { keys, g: gc, out: o, first, last }, params, constants: { WG }, workgroups }, `${s.op}.backward`);
      if (chunks > 1) launch(spanSums, { bind: { keys, first, last, out: o }, params, constants: { WG }, workgroups }, `${s.op}.backward`);
    };
    const rowSize = out.strides[0] ?? 1;
    if (!s.blockable || out.ndim === 0 || fitsBinding(out)) {
      run(out, 0, out.size);
      return;
    }
    for (const [start, len] of blocksOf(`${s.op}.backward`, 'row of the gradient', out.shape[0]!, [[out, 0]])) {
      run(sliceView(out, 0, start, len), start * rowSize, (start + len) * rowSize);
    }
  });
  return out;
}

/** Entries per chunk: a power of two near √n (at least 8), balancing the two passes. */
function chunkSize(n: number): number {
  return Math.max(8, 2 ** Math.round(Math.log2(Math.sqrt(n))));
}

/** The (key, entry) pairs of every entry, sorted, padded to a power of two: an int32 tensor [P, 2]. */
function sortedKeys(s: Scatter, n: number): Tensor {
  const count = Math.max(2, 2 ** Math.ceil(Math.log2(n)));
  const keys = empty([count, 2], 'int32', `${s.op}.backward`);
  const dims = coalesce(s.idx.shape, [s.idx.strides, s.keyStrides]);
  launch(
    keysKernel,
    {
      bind: { idx: s.idx, keys },
      params: {
        n,
        padded: count,
        limit: s.limit,
        axis_stride: s.axisStride,
        shape: padded(dims.shape, MAX_RANK, 1),
        idx_strides: dims.strides[0]!,
        src_strides: dims.strides[1]!,
      },
      constants: { WG, RANK: Math.max(1, dims.shape.length) },
      workgroups: Math.ceil(count / WG),
    },
    `${s.op}.backward`,
  );
  // Sort blocks of up to 2·WG pairs in workgroup memory; merge stages across blocks take one
  // global step per distance ≥ the block, then finish in workgroup memory again.
  const block = Math.min(2 * WG, count);
  const blocks = count / block;
  const local = (k: number) =>
    launch(sortLocal, { bind: { keys }, params: { count, block, k, groups: blocks }, constants: { WG }, workgroups: blocks }, `${s.op}.backward`);
  local(0);
  const pairGroups = Math.ceil(count / 2 / WG);
  for (let k = 2 * block; k <= count; k *= 2) {
    for (let j = k / 2; j >= block; j /= 2) {
      launch(sortGlobal, { bind: { keys }, params: { count, block, k, j, groups: pairGroups }, constants: { WG }, workgroups: pairGroups }, `${s.op}.backward`);
    }
    local(k);
  }
  return keys;
}

