// Work on tensors larger than one storage binding is cut into segments that fit: flat chunks of
// contiguous tensors (elementwise ops, copies, optimizer updates) or blocks of rows (matmul).
// Each segment is a view, bound on its own from an aligned offset (binding.ts).

import { runtime } from '../runtime/device';
import type { Tensor } from '../tensor';
import { viewBytes } from './binding';

/** Whether every view fits one storage binding. */
export function fitsBinding(...views: Tensor[]): boolean {
  const max = runtime().limits.maxStorageBufferBindingSize;
  return views.every((t) => viewBytes(t) <= max);
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

/** A 1-D view of elements [start, start + length) of a contiguous tensor (internal: not recorded). */
export function flatSlice(t: Tensor, start: number, length: number): Tensor {
  return t.view([length], [1], t.offset + start);
}

/**
 * Run `dispatch` over the tensors (all contiguous, same size) whole if they fit one binding, or
 * chunk by chunk otherwise; `dispatch` gets views and the flat index of the chunk's start.
 */
export function inFlatChunks(tensors: Tensor[], dispatch: (views: Tensor[], base: number) => void): void {
  if (fitsBinding(...tensors) || !tensors.every((t) => t.isContiguous)) {
    dispatch(tensors, 0); // an operand that does not fit and is not contiguous fails in bindView
    return;
  }
  for (const [start, len] of flatChunks(tensors[0]!.size)) {
    const views = tensors.map((t) => flatSlice(t, start, len));
    try {
      dispatch(views, start);
    } finally {
      for (const v of views) v.dispose();
    }
  }
}
