// Moving 32-bit words, for any dtype but float16: copyView() copies a strided view into another of
// the same shape (contiguous(), toArray() of a view); fillView() writes one value into every
// element of a contiguous view (zeros, ones, full). The tensor layer allocates; these only launch.

import copyWGSL from '../../shaders/copy.wgsl?raw';
import { DTypeError } from '../runtime/errors';
import { defineKernel } from './kernel';
import { coalesce, MAX_RANK, padded, WG } from './layout';
import { launch } from './launch';
import { fitsBinding, inFlatChunks } from './segments';
import { formatShape, sizeOf, sliceView, type View } from './view';

const fillKernel = defineKernel('fill', { code: copyWGSL, entry: 'fill', bindings: { out: 'write' }, wasm: 'fill' });
const copyKernel = defineKernel('copy', { code: copyWGSL, entry: 'copy', bindings: { src: 'read', out: 'write' }, wasm: 'copy' });

/**
 * Copy the view `src` into the view `dst` (same shape). When either spans more than one binding,
 * halve along the dimension whose stride is largest (the block that is most compact in memory)
 * until both halves bind; a single element always does.
 */
export function copyView(src: View, dst: View, op = 'contiguous'): void {
  // The copy kernel moves 32-bit words; float16 tensors are made contiguous by toHalf (ops/half.ts).
  if (src.dtype === 'float16') throw new DTypeError(`${op}: tensor ${formatShape(src.shape)} is float16, which only the f16 kernels read`);
  if (sizeOf(src.shape) === 0) return;
  if (fitsBinding(src, dst)) {
    copyOnce(src, dst, op);
    return;
  }
  let d = -1;
  for (let i = 0; i < src.shape.length; i++) {
    if (src.shape[i]! > 1 && (d < 0 || Math.max(src.strides[i]!, dst.strides[i]!) > Math.max(src.strides[d]!, dst.strides[d]!))) d = i;
  }
  const n = src.shape[d]!;
  const h = Math.ceil(n / 2);
  for (const [start, len] of [[0, h], [h, n - h]] as const) {
    copyView(sliceView(src, d, start, len), sliceView(dst, d, start, len), op);
  }
}

function copyOnce(src: View, dst: View, op: string): void {
  const dims = coalesce(src.shape, [src.strides, dst.strides]);
  const n = sizeOf(src.shape);
  launch(
    copyKernel,
    {
      bind: { src, out: dst },
      params: { n, shape: padded(dims.shape, MAX_RANK, 1), src_strides: dims.strides[0]!, out_strides: dims.strides[1]! },
      constants: { WG, RANK: Math.max(1, dims.shape.length) },
      workgroups: Math.ceil(n / WG),
    },
    op,
  );
}

/** Write `value` into every element of the contiguous view `v` (float32 or int32). */
export function fillView(v: View, value: number): void {
  const bits = new DataView(new ArrayBuffer(4));
  if (v.dtype === 'int32') bits.setInt32(0, value, true);
  else bits.setFloat32(0, value, true);
  const word = bits.getUint32(0, true);
  inFlatChunks([v], ([c]) => {
    const n = sizeOf(c!.shape);
    launch(fillKernel, { bind: { out: c! }, params: { n, value: word }, constants: { WG }, workgroups: Math.ceil(n / WG) }, 'fill');
  });
}
