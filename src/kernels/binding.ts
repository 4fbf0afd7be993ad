// Binding a tensor view to a kernel: only the part of the buffer the view touches is bound, from
// an offset aligned to minStorageBufferOffsetAlignment, and the kernel gets the view's element
// offset within that range. So a view of a tensor larger than one storage binding (a block of
// rows, a chunk) binds as long as the view itself fits; ops that must handle such tensors cut
// their work into views that do (see segments.ts).

import type { BufferRange } from '../runtime/bind-group-cache';
import { runtime } from '../runtime/device';
import { LimitError } from '../runtime/errors';
import { formatBytes } from '../runtime/limits';
import { elementBytes, formatShape, type Tensor } from '../tensor';

export interface BoundView {
  range: BufferRange;
  /** Element offset of the view's first element within the bound range (use instead of t.offset). */
  offset: number;
}

/** First and one-past-last element the view can touch (strides are non-negative). */
export function viewSpan(t: Tensor): [number, number] {
  let last = t.offset;
  for (let i = 0; i < t.ndim; i++) last += (t.shape[i]! - 1) * t.strides[i]!;
  return t.size === 0 ? [t.offset, t.offset] : [t.offset, last + 1];
}

/** Bytes a view needs bound: the span it touches. */
export function viewBytes(t: Tensor): number {
  const [a, b] = viewSpan(t);
  return (b - a) * elementBytes(t.dtype);
}

export function bindView(op: string, t: Tensor, what = 'operand'): BoundView {
  const rt = runtime();
  const buffer = t.buffer(op);
  const align = rt.limits.minStorageBufferOffsetAlignment;
  const [first, end] = viewSpan(t);
  const bytes = elementBytes(t.dtype);
  const start = Math.floor((first * bytes) / align) * align;
  // Round up to 16 bytes so vec4 views of the binding see every element.
  const size = Math.max(16, Math.min(buffer.size - start, Math.ceil((end * bytes - start) / 16) * 16));
  if (size > rt.limits.maxStorageBufferBindingSize) {
    throw new LimitError(
      `${op}: ${what} ${formatShape(t.shape)} spans ${formatBytes(size)}, more than one storage binding may hold ` +
        `(maxStorageBufferBindingSize ${formatBytes(rt.limits.maxStorageBufferBindingSize)}), and ${op} cannot split it`,
    );
  }
  return { range: { buffer, offset: start, size }, offset: first - start / bytes };
}
