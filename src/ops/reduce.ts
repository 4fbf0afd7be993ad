// Reductions: sum, mean, max over any set of axes (PyTorch semantics, keepdim), argmax, and
// sumToShape, which every broadcasting backward rule uses. The input view is read through its
// strides: dimensions are merged where memory allows and the kernel layout (which invocations
// are adjacent) follows the smallest stride, so column sums of [N, F] need no transpose copy.

import reduceWGSL from '../../shaders/reduce.wgsl?raw';
import { isGradEnabled } from '../autograd/grad-mode';
import { record } from '../autograd/record';
import { checkDType, checkRank, normAxis, sameShape } from '../checks';
import { contiguousCopy } from '../creation';
import { fillView } from '../kernels/copy';
import { coalesce, MAX_RANK, padded, type Dims } from '../kernels/layout';
import { launch } from '../kernels/launch';
import { rowKernel, rowLanes } from '../kernels/rows';
import { blocksOf, fitsBinding, inBlocks } from '../kernels/segments';
import { sliceView, type View } from '../kernels/view';
import { runtime } from '../runtime/device';
import { ShapeError } from '../runtime/errors';
import { tidy } from '../scope';
import { contiguousStrides, empty, formatShape, sizeOf, type Tensor } from '../tensor';
import { runUnary } from './pointwise';

const reduceKernel = () => rowKernel('reduce', reduceWGSL, 'reduce', { src: 'read', out: 'write' }, 'reduce');
const argmaxKernel = () => rowKernel('argmax', reduceWGSL, 'argmax', { src: 'read', idx_in: 'read', val: 'write', idx: 'write' }, 'argmax');
const scatterKernel = () => rowKernel('max.scatter', reduceWGSL, 'scatter', { g: 'read', idx: 'read', out: 'write' }, 'scatter');

/** Axes to reduce: one, several, or (omitted) all of them. */
export type Axis = number | readonly number[];

/** Reduce kernel ops, mirrored by OP in shaders/reduce.wgsl. */
const OP = { sum: 0, max: 1 } as const;
type ReduceOp = keyof typeof OP;

// Outputs per workgroup when adjacent invocations take adjacent outputs (columns).
const MAX_COLUMNS = 64;
// A reduction longer than 2 · MIN_CHUNK is cut into pieces of at least MIN_CHUNK elements when
// there are fewer than TARGET_GROUPS workgroups otherwise; a second pass combines the pieces.
const MIN_CHUNK = 2048;
const TARGET_GROUPS = 256;

// ---- public ops ------------------------------------------------------------------------------

/**
 * Sum over `axis` (all axes when omitted; an empty list reduces nothing, like NumPy).
 * With keepdim the reduced dimensions stay as size 1.
 */
export function sum(a: Tensor, axis?: Axis, keepdim = false): Tensor {
  const axes = reducedAxes('sum', a, axis);
  const out = reduceTo('sum', a, axes, outShape(a.shape, axes, keepdim), 1);
  return record('sum', out, [a], (g) => [expandGrad(g, a.shape, axes)]);
}

/** Mean over `axis` (all axes when omitted); the mean over no elements is NaN, like PyTorch. */
export function mean(a: Tensor, axis?: Axis, keepdim = false): Tensor {
  const axes = reducedAxes('mean', a, axis);
  const n = reducedSize(a.shape, axes);
  const out = reduceTo('sum', a, axes, outShape(a.shape, axes, keepdim), 1 / n);
  return record('mean', out, [a], (g) => [runUnary('affine', expandGrad(g, a.shape, axes), 1 / n, 0)]);
}

/**
 * Maximum over `axis` (all axes when omitted); values only. NaN propagates. The gradient goes to
 * ONE element per output: the first maximum in row-major order (like PyTorch's max(dim)).
 */
export function max(a: Tensor, axis?: Axis, keepdim = false): Tensor {
  const axes = reducedAxes('max', a, axis);
  if (reducedSize(a.shape, axes) === 0) {
    throw new ShapeError(`max: cannot reduce ${formatShape(a.shape)} over axes [${axes.join(', ')}]: no elements`);
  }
  const shape = outShape(a.shape, axes, keepdim);
  if (!(isGradEnabled() && a.requiresGrad)) return reduceTo('max', a, axes, shape, 1);
  const { values, indices } = argReduce(a, axes, shape);
  const out = record('max', values, [a], (g, [idx]) => [scatterGrad(g, idx!, a.shape, axes)], [indices]);
  indices.dispose();
  return out;
}

/**
 * Index of the first maximum along `axis` as an int32 tensor; without an axis, the flat
 * (row-major) index over all elements. NaN counts as the maximum. Not differentiable.
 */
export function argmax(a: Tensor, axis?: number, keepdim = false): Tensor {
  const axes = reducedAxes('argmax', a, axis);
  if (reducedSize(a.shape, axes) === 0) {
    throw new ShapeError(`argmax: cannot reduce ${formatShape(a.shape)} over axes [${axes.join(', ')}]: no elements`);
  }
  const { values, indices } = argReduce(a, axes, outShape(a.shape, axes, keepdim));
  values.dispose();
  return indices;
}

/**
 * Sum a broadcast gradient `g` back to `shape`: over leading extra dimensions and where `shape`
 * has 1. Returns `g` itself when the shapes already match.
 */
export function sumToShape(g: Tensor, shape: readonly number[]): Tensor {
  if (sameShape(g.shape, shape)) return g;
  const lead = g.ndim - shape.length;
  if (lead < 0 || shape.some((d, i) => d !== 1 && d !== g.shape[i + lead])) {
    throw new ShapeError(`sumToShape: a gradient of shape ${formatShape(g.shape)} does not broadcast from ${formatShape(shape)}`);
  }
  const axes = allAxes(g.ndim).filter((d) => d < lead || (shape[d - lead] === 1 && g.shape[d] !== 1));
  checkDType('sumToShape', g);
  checkRank('sumToShape', g.shape);
  const out = reduceTo('sum', g, axes, shape, 1);
  return record('sumToShape', out, [g], (gg) => [expandGrad(gg, g.shape, axes)]);
}

/** sumToShape for a gradient computed just for it: `g` itself is freed when a sum replaces it. */
export function sumGradTo(g: Tensor, shape: readonly number[]): Tensor {
  const r = sumToShape(g, shape);
  if (r !== g) g.dispose();
  return r;
}

// ---- shapes and layouts ----------------------------------------------------------------------

function allAxes(ndim: number): number[] {
  return [...Array(ndim).keys()];
}

/** The axes named by `axis`, normalised and sorted; every axis when omitted. */
function reducedAxes(op: string, a: Tensor, axis: Axis | undefined): number[] {
  checkDType(op, a);
  checkRank(op, a.shape);
  if (axis === undefined) return allAxes(a.ndim);
  const list = typeof axis === 'number' ? [axis] : [...axis];
  // A 0-d tensor takes axis 0 or -1 (like PyTorch) and reduces nothing.
  const axes = list.map((d) => normAxis(op, d, Math.max(a.ndim, 1)));
  if (a.ndim === 0) return [];
  if (new Set(axes).size !== axes.length) {
    throw new ShapeError(`${op}: axis [${list.join(', ')}] names a dimension twice (tensor ${formatShape(a.shape)})`);
  }
  return axes.sort((x, y) => x - y);
}

function outShape(shape: readonly number[], axes: readonly number[], keepdim: boolean): number[] {
  const out: number[] = [];
  shape.forEach((d, i) => {
    if (!axes.includes(i)) out.push(d);
    else if (keepdim) out.push(1);
  });
  return out;
}

function reducedSize(shape: readonly number[], axes: readonly number[]): number {
  return axes.reduce((n, d) => n * shape[d]!, 1);
}

/** A view read as M outputs × L reduced elements (see shaders/reduce.wgsl). */
interface Layout {
  m: number;
  l: number;
  kept: Dims;
  reduced: Dims;
  /** The reduced dimensions hold the smallest stride: adjacent invocations take adjacent lanes. */
  lanesFast: boolean;
}

function layoutOf(shape: readonly number[], strides: readonly number[], axes: readonly number[]): Layout {
  const pick = (keep: boolean) => {
    const dims = allAxes(shape.length).filter((d) => axes.includes(d) !== keep);
    return coalesce(
      dims.map((d) => shape[d]!),
      [dims.map((d) => strides[d]!)],
    );
  };
  const kept = pick(true);
  const reduced = pick(false);
  // Stride-0 (broadcast) dimensions read one element: they say nothing about coalescing.
  const smallest = (d: Dims) => Math.min(...d.strides[0]!.filter((s) => s > 0));
  return {
    m: sizeOf(kept.shape),
    l: sizeOf(reduced.shape),
    kept,
    reduced,
    lanesFast: smallest(reduced) <= smallest(kept),
  };
}

/** The layout of contiguous partials [m, chunks] reduced over the chunks. */
function partialsLayout(m: number, chunks: number): Layout {
  return layoutOf([m, chunks], [chunks, 1], [1]);
}

function pow2ceil(n: number): number {
  return 2 ** Math.ceil(Math.log2(Math.max(1, n)));
}

/** How row reductions (here, softmax, cross-entropy) spread over invocations. */
export interface ReduceProfile {
  /** Largest workgroup (a power of two). */
  maxWorkgroup: number;
  /** Each lane folds about this many elements before the tree in workgroup memory. */
  perLane: number;
}

let profileOverride: ReduceProfile | null = null;

/** @internal tests run the kernels under each profile, whatever the adapter. */
export function setReduceProfile(p: ReduceProfile | null): void {
  profileOverride = p;
}

/** Largest power-of-two workgroup the device allows, at most 256. */
function maxWorkgroup(): number {
  const l = runtime().limits;
  return 2 ** Math.floor(Math.log2(Math.min(256, l.maxComputeInvocationsPerWorkgroup, l.maxComputeWorkgroupSizeX)));
}

/**
 * GPUs want many lanes per row (coalesced reads, a short serial part). Software adapters
 * (SwiftShader) pay dearly for barriers and workgroup memory: few lanes folding long runs.
 * Measured there (2 cores), row sums of [256, 512]: 167 ms with 128 lanes, 7 ms with 4.
 */
export function reduceProfile(): ReduceProfile {
  if (profileOverride) return profileOverride;
  const rt = runtime();
  const wg = maxWorkgroup();
  return rt.info.adapterInfo.isFallbackAdapter ? { maxWorkgroup: Math.min(64, wg), perLane: 128 } : { maxWorkgroup: wg, perLane: 4 };
}

/** Outputs per workgroup (tx) and lanes per output, both powers of two. */
export function reduceTile(m: number, len: number, lanesFast: boolean): { tx: number; lanes: number } {
  const { maxWorkgroup, perLane } = reduceProfile();
  // The subgroup variant needs room for a whole subgroup per row (rowCombine checked the device).
  const wg = Math.max(maxWorkgroup, rowLanes(2, true));
  // Short rows use few lanes and put several outputs in one workgroup instead of idling.
  const want = pow2ceil(Math.ceil(len / perLane));
  if (lanesFast) {
    const lanes = Math.min(wg, rowLanes(want, true));
    return { tx: Math.min(wg / lanes, pow2ceil(m)), lanes };
  }
  const tx = Math.min(wg, MAX_COLUMNS, pow2ceil(m));
  return { tx, lanes: Math.min(wg / tx, want) };
}

/** Pieces to cut each output's reduction into (1: a single pass). */
function chunkCount(lay: Layout): number {
  if (lay.l < 2 * MIN_CHUNK) return 1;
  const groups = lay.lanesFast ? lay.m : Math.ceil(lay.m / MAX_COLUMNS);
  if (groups >= TARGET_GROUPS) return 1;
  return Math.min(Math.floor(lay.l / MIN_CHUNK), Math.ceil(TARGET_GROUPS / groups));
}

interface Pass {
  params: Record<string, number | number[]>;
  constants: { WG: number; TX: number; LANES_FAST: boolean };
  workgroups: number;
}

/** One dispatch over `lay`, each output's reduction cut into `chunks` pieces. */
function pass(lay: Layout, chunks: number, resultScale: number): Pass {
  const chunkLen = Math.ceil(lay.l / chunks);
  const { tx, lanes } = reduceTile(lay.m, chunkLen, lay.lanesFast);
  const blocks = Math.ceil(lay.m / tx);
  return {
    params: layoutParams(lay, chunks, chunkLen, blocks, resultScale),
    constants: { WG: tx * lanes, TX: tx, LANES_FAST: lay.lanesFast },
    workgroups: blocks * chunks,
  };
}

/** The layout fields of shaders/reduce.wgsl's Params. */
function layoutParams(lay: Layout, chunks: number, chunkLen: number, blocks: number, resultScale: number): Record<string, number | number[]> {
  return {
    m: lay.m,
    l: lay.l,
    chunks,
    chunk_len: chunkLen,
    blocks,
    krank: lay.kept.shape.length,
    rrank: lay.reduced.shape.length,
    scale: resultScale,
    kshape: padded(lay.kept.shape, MAX_RANK, 1),
    kstrides: lay.kept.strides[0]!,
    rshape: padded(lay.reduced.shape, MAX_RANK, 1),
    rstrides: lay.reduced.strides[0]!,
  };
}

// ---- kernels ---------------------------------------------------------------------------------

/**
 * Run `each(inputBlock, outputBlocks)` over `a` whole, or, when `a` or an output is larger than
 * one binding, in blocks along `a`'s first dimension (when that dimension is kept: each block
 * of it is a block of every output's first dimension).
 */
function overRows(op: string, a: View, axes: readonly number[], outs: readonly View[], each: (a: View, outs: View[]) => void): void {
  if (a.shape.length === 0 || a.shape[0]! <= 1 || axes.includes(0)) {
    each(a, [...outs]);
    return;
  }
  inBlocks(op, 'row', a.shape[0]!, [[a, 0], ...outs.map((o) => [o, 0] as const)], ([av, ...ov]) => each(av!, ov));
}

/** Reduce `a` over `axes` into a tensor of `shape` (its M outputs in row-major order), times `resultScale`. */
function reduceTo(op: ReduceOp, a: Tensor, axes: readonly number[], shape: readonly number[], resultScale: number): Tensor {
  const lay = layoutOf(a.shape, a.strides, axes);
  if (lay.m === 0) return empty(shape, 'float32', op);
  if (lay.l === 0) {
    const out = empty(shape, 'float32', op);
    fillView(out, 0 * resultScale); // sum: 0; mean: 0 · 1/0 = NaN
    return out;
  }
  // Nothing to combine: the result is `a` seen through another shape.
  if (lay.l === 1 && resultScale === 1 && op === 'sum') return a.view(shape, viewStrides(a, shape), a.offset);
  const out = empty(shape, 'float32', op);
  if (axes.includes(0) && a.shape[0]! > 1 && !fitsBinding(a)) {
    reduceLeadingBlocks(op, a, axes, out, resultScale);
    return out;
  }
  overRows(op, a, axes, [out], (src, [dst]) => reduceInto(op, src, axes, dst!, resultScale));
  return out;
}

/**
 * A reduction over the first dimension of a tensor larger than one binding: each block of that
 * dimension is reduced into a row of partials [blocks, M], which are then reduced in turn.
 */
function reduceLeadingBlocks(op: ReduceOp, a: Tensor, axes: readonly number[], out: Tensor, resultScale: number): void {
  const blocks = blocksOf(op, 'slice along the first dimension', a.shape[0]!, [[a, 0]]);
  const m = out.size;
  const partials = empty([blocks.length, m], 'float32', op);
  blocks.forEach(([start, len], i) => reduceInto(op, sliceView(a, 0, start, len), axes, sliceView(partials, 0, i, 1), 1));
  reduceInto(op, partials, [0], out, resultScale);
  partials.dispose();
}

/** Reduce the view `src` over `axes` into the contiguous view `out`. */
function reduceInto(op: ReduceOp, src: View, axes: readonly number[], out: View, resultScale: number): void {
  const lay = layoutOf(src.shape, src.strides, axes);
  const chunks = chunkCount(lay);
  if (chunks === 1) {
    runReduce(op, src, lay, 1, resultScale, out);
    return;
  }
  const partials = empty([lay.m, chunks], 'float32', op);
  runReduce(op, src, lay, chunks, 1, partials);
  runReduce(op, partials, partialsLayout(lay.m, chunks), 1, resultScale, out);
  partials.dispose();
}

function runReduce(op: ReduceOp, src: View, lay: Layout, chunks: number, resultScale: number, out: View): void {
  const { params, constants, workgroups } = pass(lay, chunks, resultScale);
  launch(reduceKernel(), { bind: { src, out }, params, constants: { ...constants, OP: OP[op] }, workgroups }, op);
}

/** Values and (int32) indices of the first maximum of `a` over `axes` (L > 0). */
function argReduce(a: Tensor, axes: readonly number[], shape: readonly number[]): { values: Tensor; indices: Tensor } {
  const values = empty(shape, 'float32', 'max');
  const indices = empty(shape, 'int32', 'argmax');
  if (values.size === 0) return { values, indices };
  overRows('argmax', a, axes, [values, indices], (src, [val, idx]) => {
    const lay = layoutOf(src.shape, src.strides, axes);
    const chunks = chunkCount(lay);
    if (chunks === 1) {
      runArgmax(src, null, lay, 1, val!, idx!);
      return;
    }
    const pv = empty([lay.m, chunks], 'float32', 'max');
    const pi = empty([lay.m, chunks], 'int32', 'argmax');
    runArgmax(src, null, lay, chunks, pv, pi);
    runArgmax(pv, pi, partialsLayout(lay.m, chunks), 1, val!, idx!);
    pv.dispose();
    pi.dispose();
  });
  return { values, indices };
}

function runArgmax(src: View, srcIndices: View | null, lay: Layout, chunks: number, val: View, idx: View): void {
  const { params, constants, workgroups } = pass(lay, chunks, 1);
  launch(
    argmaxKernel(),
    {
      // A first pass has no input indices: the input is bound again in their place, unread.
      bind: { src, idx_in: srcIndices ?? src, val, idx },
      params,
      constants: { ...constants, MERGE: srcIndices !== null },
      workgroups,
    },
    'argmax',
  );
}

/** max's gradient: zeros of `shape`, with g[m] at output m's argmax. */
function scatterGrad(g: Tensor, indices: Tensor, shape: readonly number[], axes: readonly number[]): Tensor {
  const out = empty(shape, 'float32', 'max.backward');
  fillView(out, 0);
  const lay = layoutOf(shape, contiguousStrides(shape), axes);
  const wg = maxWorkgroup();
  const blocks = Math.ceil(lay.m / wg);
  tidy(() =>
    launch(
      scatterKernel(),
      {
        bind: { g: g.isContiguous ? g : contiguousCopy(g, 'max.backward'), idx: indices, out },
        params: layoutParams(lay, 1, lay.l, blocks, 1),
        constants: { WG: wg },
        workgroups: blocks,
      },
      'max.backward',
    ),
  );
  return out;
}

// ---- gradient views --------------------------------------------------------------------------

/**
 * Strides that read `t` as `shape`, where the dimensions of `shape` of size > 1 that are not in
 * `broadcast` are t's dimensions of size > 1, in order; the others get stride 0.
 */
function viewStrides(t: Tensor, shape: readonly number[], broadcast: readonly number[] = []): number[] {
  const src = t.strides.filter((_, i) => t.shape[i] !== 1);
  let j = 0;
  return shape.map((d, i) => (d === 1 || broadcast.includes(i) ? 0 : src[j++]!));
}

/** The gradient of a sum over `axes`: g broadcast back to the input shape (a view, no copy). */
function expandGrad(g: Tensor, shape: readonly number[], axes: readonly number[]): Tensor {
  return g.view(shape, viewStrides(g, shape, axes), g.offset);
}
