// What a kernel sees of a tensor: a buffer, a shape, element strides and an element offset. Tensor
// (src/tensor.ts) is such a view with a lifetime; the kernels layer also makes plain sub-views
// (chunks, blocks of rows) that live only for one launch and own nothing.

import type { DeviceBuffer } from '../runtime/device-buffer';

/**
 * Element types. 'float16' is internal: mixed precision's operand copies (src/ops/half.ts), read
 * only by the f16 kernels; every public op takes float32 or int32.
 */
export type DType = 'float32' | 'int32' | 'float16';

export interface View {
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  /** Offset of element [0, 0, …] in the buffer, in elements. */
  readonly offset: number;
  readonly dtype: DType;
  /** The buffer, or an error naming `op` when the tensor behind the view was disposed. */
  buffer(op?: string): DeviceBuffer;
}

/** Bytes per element. */
export function elementBytes(dtype: DType): number {
  return dtype === 'float16' ? 2 : 4;
}

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** Row-major strides of a shape. */
export function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i]!;
  }
  return strides;
}

/** True when the elements are laid out row-major without gaps (the offset may be anything). */
export function isContiguousView(v: View): boolean {
  let s = 1;
  for (let i = v.shape.length - 1; i >= 0; i--) {
    if (v.shape[i] !== 1 && v.strides[i] !== s) return false;
    s *= v.shape[i]!;
  }
  return true;
}

/** A view of the same buffer with another shape, strides and offset (owns nothing). */
export function subView(v: View, shape: readonly number[], strides: readonly number[], offset: number): View {
  return { shape, strides, offset, dtype: v.dtype, buffer: (op) => v.buffer(op) };
}

/** Elements [start, start + length) along dimension `dim` (a sub-view). */
export function sliceView(v: View, dim: number, start: number, length: number): View {
  const shape = [...v.shape];
  shape[dim] = length;
  return subView(v, shape, v.strides, v.offset + start * v.strides[dim]!);
}

/** First and one-past-last element the view can touch (strides are non-negative). */
export function viewSpan(v: View): [number, number] {
  let last = v.offset;
  for (let i = 0; i < v.shape.length; i++) {
    if (v.shape[i] === 0) return [v.offset, v.offset];
    last += (v.shape[i]! - 1) * v.strides[i]!;
  }
  return [v.offset, last + 1];
}

/** Bytes a view needs bound: the span it touches. */
export function viewBytes(v: View): number {
  const [a, b] = viewSpan(v);
  return (b - a) * elementBytes(v.dtype);
}
