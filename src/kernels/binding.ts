// Binding a view to a kernel: only the part of the buffer the view touches is bound, from an
// offset aligned to minStorageBufferOffsetAlignment, and the kernel gets the view's element offset
// within that range. So a view of a tensor larger than one storage binding (a block of rows, a
// chunk) binds as long as the view itself fits; ops whose tensors may not fit cut their work into
// views that do (segments.ts).

import type { BufferRange } from '../runtime/device-buffer';
import { bufferContents } from '../runtime/buffer-pool';
import { runtime } from '../runtime/device';
import { LimitError } from '../runtime/errors';
import { formatBytes } from '../runtime/limits';
import { elementBytes, formatShape, viewSpan, type View } from './view';

export interface BoundView {
  range: BufferRange;
  /** Element offset of the view's first element within the bound range (use instead of view.offset). */
  offset: number;
}

/** Where a view's binding starts (aligned down from its first element) and how many bytes it spans. */
function boundSpan(v: View, align: number): { start: number; size: number; first: number } {
  const [first, end] = viewSpan(v);
  const bytes = elementBytes(v.dtype);
  const start = Math.floor((first * bytes) / align) * align;
  // Round up to 16 bytes so vec4 views of the binding see every element.
  return { start, size: Math.max(16, Math.ceil((end * bytes - start) / 16) * 16), first };
}

/** Whether the view fits one storage binding once bound from its aligned start. */
export function bindable(v: View): boolean {
  const { maxStorageBufferBindingSize: max, minStorageBufferOffsetAlignment: align } = runtime().limits;
  return boundSpan(v, align).size <= max;
}

export function bindView(op: string, v: View, what = 'operand'): BoundView {
  const rt = runtime();
  const buffer = v.buffer(op);
  const span = boundSpan(v, rt.limits.minStorageBufferOffsetAlignment);
  const { start, first } = span;
  const size = Math.min(buffer.size - start, span.size);
  if (size > rt.limits.maxStorageBufferBindingSize) {
    const tensor = bufferContents.get(buffer)?.what ?? 'a tensor';
    throw new LimitError(
      `${op}: ${tensor} (${formatBytes(size)}) is larger than one storage binding may be ` +
        `(maxStorageBufferBindingSize ${formatBytes(rt.limits.maxStorageBufferBindingSize)}): ` +
        `its view ${formatShape(v.shape)} is bound whole as the ${what}, and ${op} cannot split it`,
    );
  }
  return { range: { buffer, offset: start, size }, offset: first - start / elementBytes(v.dtype) };
}
