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
import { runtime } from '../runtime/device';
import { DTypeError } from '../runtime/errors';
import { defineKernel } from '../kernels/kernel';
import { Params } from '../kernels/params';
import { empty, formatShape, type Tensor } from '../tensor';
import { bindView, viewSpan } from '../kernels/binding';
import { gather } from './copy';
import { inFlatChunks } from '../kernels/segments';
import { WG } from './util';

const castKernel = defineKernel('cast.f16', castWGSL, ['read', 'write'], 'to_half');

/** `t` (float32) rounded to float16 (to nearest; ±inf past the f16 range), in a new internal tensor of t's shape. */
export function toHalf(t: Tensor): Tensor {
  if (t.dtype !== 'float32') throw new DTypeError(`toHalf: tensor ${formatShape(t.shape)} is ${t.dtype}, expected float32`);
  const [first, end] = viewSpan(t);
  const span = end - first;
  if (span > 2 * t.size) {
    const g = gather(t);
    const h = toHalf(g);
    g.dispose();
    return h;
  }
  const flat = empty([span], 'float16', 'cast to f16');
  const source = t.view([span], [1], first);
  inFlatChunks([source, flat], ([s, d]) => {
    const from = bindView('toHalf', s!);
    const to = bindView('toHalf', d!);
    // Chunks and fresh tensors start at even elements: whole 32-bit words of the destination.
    const groups = Math.ceil(s!.size / 2 / WG);
    runtime().executor.dispatch(castKernel, {
      constants: { WG },
      buffers: [from.range, to.range],
      params: new Params().u32(s!.size, from.offset, to.offset / 2, groups),
      workgroups: groups,
    });
  });
  source.dispose();
  const out = flat.view(t.shape, t.strides, t.offset - first);
  flat.dispose();
  return out;
}

/** The values of a contiguous float16 tensor as float32 (what toArray() returns for one). */
export async function readHalf(t: Tensor): Promise<Float32Array> {
  if (!t.isContiguous) throw new DTypeError(`toArray: float16 tensor ${formatShape(t.shape)} is an internal view that cannot be read`);
  const first = t.offset - (t.offset % 2);
  const words = Math.ceil((t.offset + t.size - first) / 2);
  const bytes = await runtime().executor.read(t.buffer('toArray'), first * 2, words * 4);
  const halves = new Uint16Array(bytes);
  const out = new Float32Array(t.size);
  for (let i = 0; i < t.size; i++) out[i] = halfToFloat(halves[t.offset - first + i]!);
  return out;
}

/** The value of IEEE binary16 bits. */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}
