// Copies on 32-bit words, for any dtype: contiguous() gathers a strided view into fresh memory;
// fillWith() writes one value everywhere (zeros, ones, full).

import copyWGSL from '../../shaders/copy.wgsl?raw';
import { runtime } from '../runtime/device';
import { defineKernel } from '../kernels/kernel';
import { Params } from '../kernels/params';
import { DTypeError, ShapeError } from '../runtime/errors';
import { empty, formatShape, type DType, type Tensor } from '../tensor';
import { record } from '../autograd/record';
import { checkRank, coalesce, MAX_RANK, WG } from './util';
import { bindView } from '../kernels/binding';
import { fitsBinding, inFlatChunks } from '../kernels/segments';

const fillKernel = defineKernel('fill', copyWGSL, ['write'], 'fill');
const copyKernel = defineKernel('copy', copyWGSL, ['read', 'write'], 'copy');

/** `t` itself when it is contiguous with offset 0, else a contiguous copy (differentiable). */
export function contiguous(t: Tensor): Tensor {
  if (t.isContiguous && t.offset === 0) return t;
  return record('contiguous', gather(t), [t], (g) => [g]);
}

/**
 * A contiguous copy of any view (not recorded: internal use). A view larger than one storage
 * binding is copied in blocks (see copyBlocks).
 */
export function gather(t: Tensor): Tensor {
  checkRank('contiguous', t.shape);
  // The copy kernel moves 32-bit words; float16 tensors are made contiguous by toHalf (half.ts).
  if (t.dtype === 'float16') throw new DTypeError(`contiguous: tensor ${formatShape(t.shape)} is float16, which only the f16 kernels read`);
  const out = empty(t.shape, t.dtype, 'contiguous');
  if (t.size > 0) copyBlocks(t, out);
  return out;
}

/**
 * Copy the view `src` into the view `dst` (same shape). When either spans more than one binding,
 * halve along the dimension whose stride is largest (the block that is most compact in memory)
 * until both halves bind; a single element always does.
 */
function copyBlocks(src: Tensor, dst: Tensor): void {
  if (fitsBinding(src, dst)) {
    copyView(src, dst);
    return;
  }
  let d = -1;
  for (let i = 0; i < src.ndim; i++) {
    if (src.shape[i]! > 1 && (d < 0 || Math.max(src.strides[i]!, dst.strides[i]!) > Math.max(src.strides[d]!, dst.strides[d]!))) d = i;
  }
  const n = src.shape[d]!;
  const h = Math.ceil(n / 2);
  for (const [start, len] of [[0, h], [h, n - h]] as const) {
    const s = slice(src, d, start, len);
    const t = slice(dst, d, start, len);
    copyBlocks(s, t);
    s.dispose();
    t.dispose();
  }
}

/** Elements [start, start + len) along dimension d (a view; internal, not recorded). */
function slice(t: Tensor, d: number, start: number, len: number): Tensor {
  const shape = [...t.shape];
  shape[d] = len;
  return t.view(shape, t.strides, t.offset + start * t.strides[d]!);
}

/** One copy dispatch between two views of the same shape. */
function copyView(src: Tensor, dst: Tensor): void {
  const from = bindView('contiguous', src);
  const to = bindView('contiguous', dst);
  const dims = coalesce(src.shape, [src.strides, dst.strides]);
  runtime().executor.dispatch(copyKernel, {
    constants: { WG, RANK: Math.max(1, dims.shape.length) },
    buffers: [from.range, to.range],
    params: new Params()
      .u32(src.size, dims.shape.length, 0, from.offset)
      .vecU32(dims.shape, MAX_RANK, 1)
      .vecU32(dims.strides[0]!, MAX_RANK)
      .vecU32(dims.strides[1]!, MAX_RANK)
      .u32(to.offset),
    workgroups: Math.ceil(src.size / WG),
  });
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
