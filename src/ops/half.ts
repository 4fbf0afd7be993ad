// float16 copies of float32 tensors, for mixed precision (the Trainer's 'f16-mixed'): matmul and
// conv2d under autocast (autocast.ts) convert their operands once, and their f16 kernels read half
// the bytes. The copy keeps the view's layout: the span of storage the view touches is converted
// flat (shaders/cast.wgsl), so a transposed weight stays transposed and needs no gather; a view
// that touches much more than it holds (a narrow slice of a wide matrix) is gathered first.
//
// Why copies and not f32 storage rounded in registers: the point of f16 operands is bandwidth and
// cache room (half the bytes per operand load, twice the tile in workgroup memory); rounding in
// registers would keep the arithmetic's precision loss and give none of that. The cost is one
// cast pass per operand (read 4 bytes, write 2), small next to the O(MNK) product that reads them.

import castWGSL from '../../shaders/cast.wgsl?raw';
import { contiguousCopy } from '../creation';
import { defineKernel } from '../kernels/kernel';
import { WG } from '../kernels/layout';
import { cpuBackend, launch } from '../kernels/launch';
import { inFlatChunks } from '../kernels/segments';
import { sizeOf, viewSpan } from '../kernels/view';
import { DTypeError } from '../runtime/errors';
import { contiguousStrides, empty, formatShape, type Tensor } from '../tensor';

const castKernel = defineKernel('cast.f16', { code: castWGSL, entry: 'to_half', bindings: { src: 'read', dst: 'write' } });
const widenKernel = defineKernel('cast.f32', { code: castWGSL, entry: 'to_float', bindings: { src: 'read', dst: 'write' } });

/** `t` (float32) rounded to float16 (to nearest; ±inf past the f16 range), in a new internal tensor of t's shape. */
export function toHalf(t: Tensor): Tensor {
  if (t.dtype !== 'float32') throw new DTypeError(`toHalf: tensor ${formatShape(t.shape)} is ${t.dtype}, expected float32`);
  // (Autocast, the only caller, needs shader-f16: never on the CPU backend.)
  if (cpuBackend()) throw new DTypeError(`toHalf: tensor ${formatShape(t.shape)}: the CPU backend keeps float32 and has no float16 tensors`);
  const [first, end] = viewSpan(t);
  const span = end - first;
  if (span > 2 * t.size) {
    const g = contiguousCopy(t, 'toHalf');
    const h = toHalf(g);
    g.dispose();
    return h;
  }
  const flat = empty([span], 'float16', 'cast to f16');
  const source = t.view([span], [1], first);
  inFlatChunks([source, flat], ([src, dst]) => {
    // Chunks and fresh tensors start at even elements: whole 32-bit words of the destination.
    const n = sizeOf(src!.shape);
    const groups = Math.ceil(n / 2 / WG);
    launch(castKernel, { bind: { src: src!, dst: dst! }, params: { n, groups }, constants: { WG }, workgroups: groups }, 'toHalf');
  });
  source.dispose();
  const out = flat.view(t.shape, t.strides, t.offset - first);
  flat.dispose();
  return out;
}

/** `t` (float16, contiguous) as float32, exactly, in a new contiguous tensor (weights stored in f16, read back to merge or save). */
export function toFloat(t: Tensor): Tensor {
  if (t.dtype !== 'float16') throw new DTypeError(`toFloat: tensor ${formatShape(t.shape)} is ${t.dtype}, expected float16`);
  if (!t.isContiguous) throw new DTypeError(`toFloat: float16 tensor ${formatShape(t.shape)} is a view that is not contiguous`);
  // From the even element at or before the view's start: the kernel reads whole words of halves.
  const first = t.offset - (t.offset % 2);
  const lead = t.offset - first;
  const out = empty([t.size + lead], 'float32', 'cast to f32');
  const source = t.view([t.size + lead], [1], first);
  inFlatChunks([source, out], ([src, dst]) => {
    const n = sizeOf(src!.shape);
    const groups = Math.ceil(n / 2 / WG);
    launch(widenKernel, { bind: { src: src!, dst: dst! }, params: { n, groups }, constants: { WG }, workgroups: groups }, 'toFloat');
  });
  source.dispose();
  const result = out.view(t.shape, contiguousStrides(t.shape), lead);
  out.dispose();
  return result;
}
