// contiguous() — a differentiable contiguous copy of a view — and copyInto(), which overwrites a
// tensor's contents in place (loading a state dict). The copies themselves are kernels/copy.ts.

import { record } from '../autograd/record';
import { checkRank } from '../checks';
import { contiguousCopy } from '../creation';
import { runtime } from '../runtime/device';
import { ShapeError } from '../runtime/errors';
import { tidy } from '../scope';
import { elementBytes, formatShape, type Tensor } from '../tensor';

/** `t` itself when it is contiguous with offset 0, else a contiguous copy (differentiable). */
export function contiguous(t: Tensor): Tensor {
  if (t.isContiguous && t.offset === 0) return t;
  checkRank('contiguous', t.shape);
  return record('contiguous', contiguousCopy(t), [t], (g) => [g]);
}

/** Overwrite the contents of the contiguous tensor `dst` with `src` (same size), keeping dst's identity. */
export function copyInto(dst: Tensor, src: Tensor): void {
  if (dst.size !== src.size || dst.dtype !== src.dtype || !dst.isContiguous) {
    throw new ShapeError(`copyInto: cannot copy ${formatShape(src.shape)} ${src.dtype} into ${formatShape(dst.shape)} ${dst.dtype}`);
  }
  // Buffer copies move whole 4-byte words: a float16 copy starts on a word of both tensors, and
  // covers an odd number of halves only into a whole tensor whose last word it ends in (f16
  // storage is whole words, the half after an odd-sized weight is padding; f16 tensors are
  // weights and operand copies, never views into one another) from a buffer with a half after it.
  const bytes = elementBytes(dst.dtype);
  let length = src.size * bytes;
  if (bytes === 2) {
    const srcStorage = src.storage('copyInto');
    const dstStorage = dst.storage('copyInto');
    const odd = src.size % 2 === 1;
    const whole =
      !odd || (dst.offset === 0 && (dst.size + 1) * 2 === dstStorage.bytes && (src.offset + src.size + 1) * 2 <= srcStorage.buffer.size);
    if (dst.offset % 2 || src.offset % 2 || !src.isContiguous || !whole) {
      throw new ShapeError(`copyInto: float16 ${formatShape(src.shape)} must be contiguous and cover whole 4-byte words`);
    }
    if (odd) length += 2;
  }
  tidy(() => {
    const c = src.isContiguous ? src : contiguousCopy(src, 'copyInto');
    runtime().executor.copy(c.buffer('copyInto'), c.offset * bytes, dst.buffer('copyInto'), dst.offset * bytes, length);
  });
}
