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

const fillKernel = defineKernel('fill', copyWGSL, ['write'], 'fill');
const copyKernel = defineKernel('copy', copyWGSL, ['read', 'write'], 'copy');

/** `t` itself when it is contiguous with offset 0, else a contiguous copy (differentiable). */
export function contiguous(t: Tensor): Tensor {
  if (t.isContiguous && t.offset === 0) return t;
  return record('contiguous', gather(t), [t], (g) => [g]);
}

/** A contiguous copy of any view (not recorded: internal use). */
export function gather(t: Tensor): Tensor {
  checkRank('contiguous', t.shape);
  const out = empty(t.shape, t.dtype, 'contiguous');
  const params = new Params().u32(t.size, t.ndim, 0, t.offset).vecU32(t.shape, MAX_RANK, 1).vecU32(t.strides, MAX_RANK);
  runtime().executor.dispatch(copyKernel, {
    constants: { WG },
    buffers: [t.buffer('contiguous'), out.buffer()],
    params,
    workgroups: Math.ceil(t.size / WG),
  });
  return out;
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
  const params = new Params().u32(t.size, 0, bits.getUint32(0, true), t.offset);
  runtime().executor.dispatch(fillKernel, {
    constants: { WG },
    buffers: [t.buffer('fill')],
    params,
    workgroups: Math.ceil(t.size / WG),
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
