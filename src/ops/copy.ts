// Copies on 32-bit words, for any dtype: contiguous() gathers a strided view into fresh memory;
// fillWith() writes one value everywhere (zeros, ones, full).

import copyWGSL from '../../shaders/copy.wgsl?raw';
import { runtime } from '../runtime/device';
import { defineKernel } from '../runtime/kernel';
import { Params } from '../runtime/params';
import { ShapeError } from '../runtime/errors';
import { empty, formatShape, type DType, type Tensor } from '../tensor';
import { record } from '../autograd/record';
import { checkRank, MAX_RANK, WG } from './util';
import { bindView, viewBytes } from './binding';
import { fitsBinding, flatSlice, inFlatChunks } from './segments';
import { LimitError } from '../runtime/errors';
import { formatBytes } from '../runtime/limits';

const fillKernel = defineKernel('fill', copyWGSL, ['write'], 'fill');
const copyKernel = defineKernel('copy', copyWGSL, ['read', 'write'], 'copy');

/** `t` itself when it is contiguous with offset 0, else a contiguous copy (differentiable). */
export function contiguous(t: Tensor): Tensor {
  if (t.isContiguous && t.offset === 0) return t;
  return record('contiguous', gather(t), [t], (g) => [g]);
}

/**
 * A contiguous copy of any view (not recorded: internal use). A view larger than one binding is
 * copied in blocks along its first dimension.
 */
export function gather(t: Tensor): Tensor {
  checkRank('contiguous', t.shape);
  const out = empty(t.shape, t.dtype, 'contiguous');
  if (t.ndim === 0 || t.size === 0 || fitsBinding(t, out)) {
    copyView(t, out);
    return out;
  }
  const rows = blockRows(t);
  const rowSize = t.size / t.shape[0]!;
  for (let r = 0; r < t.shape[0]!; r += rows) {
    const n = Math.min(rows, t.shape[0]! - r);
    const src = rowBlock(t, r, n);
    const dst = flatSlice(out, r * rowSize, n * rowSize);
    copyView(src, dst);
    src.dispose();
    dst.dispose();
  }
  return out;
}

/** One copy dispatch: the strided view `src` into the contiguous `dst` of the same size. */
function copyView(src: Tensor, dst: Tensor): void {
  const from = bindView('contiguous', src);
  runtime().executor.dispatch(copyKernel, {
    constants: { WG },
    buffers: [from.range, bindView('contiguous', dst).range],
    params: new Params().u32(src.size, src.ndim, 0, from.offset).vecU32(src.shape, MAX_RANK, 1).vecU32(src.strides, MAX_RANK),
    workgroups: Math.ceil(src.size / WG),
  });
}

/** Rows [start, start + n) along the first dimension (a view; internal, not recorded). */
function rowBlock(t: Tensor, start: number, n: number): Tensor {
  return t.view([n, ...t.shape.slice(1)], t.strides, t.offset + start * t.strides[0]!);
}

/** How many first-dimension rows of t (and of its contiguous copy) fit one binding. */
function blockRows(t: Tensor): number {
  const { maxStorageBufferBindingSize: max, minStorageBufferOffsetAlignment: align } = runtime().limits;
  const one = rowBlock(t, 0, 1);
  const rowBytes = Math.max(viewBytes(one), (t.size / t.shape[0]!) * 4);
  one.dispose();
  const rows = Math.floor((max - 2 * align) / Math.max(4, rowBytes, t.strides[0]! * 4));
  if (rows < 1) {
    throw new LimitError(
      `contiguous: one row of ${formatShape(t.shape)} spans ${formatBytes(rowBytes)}, more than one storage binding may hold ` +
        `(maxStorageBufferBindingSize ${formatBytes(max)})`,
    );
  }
  return rows;
}

/** A new tensor of `shape` holding `value` everywhere. */
export function filled(shape: readonly number[], value: number, dtype: DType = 'float32'): Tensor {
  const out = empty(shape, dtype, 'full');
  fillWith(out, value);
  return out;
}

/** Write `value` into every element of the contiguous tensor `t` (in place). */
export function fillWith(t: Tensor, value: number): void {
  const bits = new DataView(new ArrayBuffer(4));
  if (t.dtype === 'int32') bits.setInt32(0, value, true);
  else bits.setFloat32(0, value, true);
  inFlatChunks([t], ([v]) => {
    const b = bindView('fill', v!);
    runtime().executor.dispatch(fillKernel, {
      constants: { WG },
      buffers: [b.range],
      params: new Params().u32(v!.size, 0, bits.getUint32(0, true), b.offset),
      workgroups: Math.ceil(v!.size / WG),
    });
  });
}

/** Overwrite the contents of the contiguous tensor `dst` with `src` (same size), keeping dst's identity. */
export function copyInto(dst: Tensor, src: Tensor): void {
  if (dst.size !== src.size || dst.dtype !== src.dtype || !dst.isContiguous) {
    throw new ShapeError(`copyInto: cannot copy ${formatShape(src.shape)} ${src.dtype} into ${formatShape(dst.shape)} ${dst.dtype}`);
  }
  const c = src.isContiguous ? src : gather(src);
  runtime().executor.copy(c.buffer('copyInto'), c.offset * 4, dst.buffer('copyInto'), dst.offset * 4, c.size * 4);
  if (c !== src) c.dispose();
}
