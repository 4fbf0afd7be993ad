// Work on tensors larger than one storage binding, cut into segments that bind: flat chunks of
// contiguous tensors (elementwise ops, copies, optimizer updates), or blocks along a leading
// dimension (the batch of conv2d and pooling, the rows of reductions, softmax and losses; matmul
// cuts its own blocks of rows, columns or K). Each segment is a sub-view, bound on its own from an
// aligned offset (binding.ts); the kernel then sees a smaller problem at that offset.

import { runtime } from '../runtime/device';
import { LimitError } from '../runtime/errors';
import { formatBytes } from '../runtime/limits';
import { bindable } from './binding';
import { formatShape, isContiguousView, sizeOf, sliceView, subView, viewBytes, type View } from './view';

/** Whether every view fits one storage binding. */
export function fitsBinding(...views: View[]): boolean {
  return views.every(bindable);
}

/**
 * [start, length] chunks of a flat range of n elements, each fitting one binding once bound from
 * an aligned offset (so chunk starts are multiples of the alignment, in elements).
 */
export function flatChunks(n: number): [number, number][] {
  const { maxStorageBufferBindingSize: max, minStorageBufferOffsetAlignment: align } = runtime().limits;
  const alignElems = align / 4;
  // Leave one alignment unit of slack: a view's binding starts at or before its first element.
  const per = Math.max(alignElems, Math.floor((max - align) / align) * alignElems);
  const out: [number, number][] = [];
  for (let s = 0; s < n; s += per) out.push([s, Math.min(per, n - s)]);
  return out;
}

/**
 * Run `run` over the views (all contiguous, same size) whole if they bind, or chunk by chunk
 * otherwise; `run` gets the chunk's views and the flat index of the chunk's start.
 */
export function inFlatChunks(views: readonly View[], run: (views: View[], base: number) => void): void {
  if (fitsBinding(...views) || !views.every(isContiguousView)) {
    run([...views], 0); // an operand that does not fit and is not contiguous fails in bindView
    return;
  }
  for (const [start, len] of flatChunks(sizeOf(views[0]!.shape))) {
    run(views.map((v) => subView(v, [len], [1], v.offset + start)), start);
  }
}

/** A view to cut along dimension `dim` into blocks, or (dim null) to bind whole with every block. */
export type BlockPart = readonly [view: View, dim: number | null];

/**
 * Run `run` over [0, n) of a dimension that the work splits along (the batch, the rows): at once
 * when every view binds, else in the largest blocks whose views bind (halving until they do).
 * `run` gets each part's view of the block, the block's start and its length. Only one unit that
 * is over the limit by itself (`unit`: "batch element", "row") is a LimitError, naming it.
 */
export function inBlocks(op: string, unit: string, n: number, parts: readonly BlockPart[], run: (views: View[], start: number, length: number) => void): void {
  for (const [start, len] of blocksOf(op, unit, n, parts)) run(cut(parts, start, len), start, len);
}

/** The blocks inBlocks() runs: [start, length] pairs covering [0, n) (one [0, 0] when n is 0). */
export function blocksOf(op: string, unit: string, n: number, parts: readonly BlockPart[]): [number, number][] {
  if (n === 0) return [[0, 0]]; // an empty range still runs once: a sum over nothing writes its zeros
  const out: [number, number][] = [];
  let len = n;
  for (let start = 0; start < n; ) {
    let l = Math.min(len, n - start);
    let views = cut(parts, start, l);
    while (!fitsBinding(...views)) {
      if (l === 1) throw tooLarge(op, unit, views);
      l = Math.ceil(l / 2);
      views = cut(parts, start, l);
    }
    out.push([start, l]);
    len = l;
    start += l;
  }
  return out;
}

/** Each part's view of the block [start, start + len). */
function cut(parts: readonly BlockPart[], start: number, len: number): View[] {
  return parts.map(([v, d]) => (d === null ? v : sliceView(v, d, start, len)));
}

function tooLarge(op: string, unit: string, views: readonly View[]): LimitError {
  const v = views.find((x) => !bindable(x))!;
  const max = runtime().limits.maxStorageBufferBindingSize;
  return new LimitError(
    `${op}: one ${unit} (a view ${formatShape(v.shape)} of ${formatBytes(viewBytes(v))}) is larger than one storage binding ` +
      `may hold (maxStorageBufferBindingSize ${formatBytes(max)}), and ${op} cannot split a ${unit}`,
  );
}
