// Joining and cutting along an axis: cat and stack copy their inputs into one new tensor (the
// gradient of each input is a view of the incoming one); split and chunk return views (narrow),
// whose gradients are placed back into a tensor of the input's shape.

import { record } from '../autograd/record';
import { checkRank, normAxis, sameShape } from '../checks';
import { copyView } from '../kernels/copy';
import { sliceView, subView } from '../kernels/view';
import { DTypeError, ShapeError } from '../runtime/errors';
import { empty, formatShape, type Tensor } from '../tensor';
import { narrow } from './shape';

/** The tensors joined along `axis` (every other dimension equal; float32 or int32, all alike). */
export function cat(tensors: readonly Tensor[], axis = 0): Tensor {
  const first = checkList('cat', tensors);
  const ax = normAxis('cat', axis, first.ndim);
  for (const t of tensors) {
    if (t.ndim !== first.ndim || t.shape.some((d, i) => i !== ax && d !== first.shape[i])) {
      throw new ShapeError(
        `cat: shapes ${tensors.map((x) => formatShape(x.shape)).join(', ')} differ outside axis ${ax} (only that dimension may differ)`,
      );
    }
  }
  const shape = [...first.shape];
  shape[ax] = tensors.reduce((n, t) => n + t.shape[ax]!, 0);
  checkRank('cat', shape);
  const out = empty(shape, first.dtype, 'cat');
  const starts: number[] = [];
  let at = 0;
  for (const t of tensors) {
    starts.push(at);
    copyView(t, sliceView(out, ax, at, t.shape[ax]!), 'cat');
    at += t.shape[ax]!;
  }
  return record('cat', out, tensors, (g, _, needs) =>
    tensors.map((t, i) => {
      if (!needs[i]) return null;
      const s = [...g.shape];
      s[ax] = t.shape[ax]!;
      return g.view(s, g.strides, g.offset + starts[i]! * g.strides[ax]!);
    }),
  );
}

/** The tensors (all of one shape) stacked along a new dimension at `axis`. */
export function stack(tensors: readonly Tensor[], axis = 0): Tensor {
  const first = checkList('stack', tensors);
  const ax = normAxis('stack', axis, first.ndim + 1);
  if (tensors.some((t) => !sameShape(t.shape, first.shape))) {
    throw new ShapeError(`stack: shapes ${tensors.map((x) => formatShape(x.shape)).join(', ')} differ (every tensor must have the same shape)`);
  }
  const shape = [...first.shape];
  shape.splice(ax, 0, tensors.length);
  checkRank('stack', shape);
  const out = empty(shape, first.dtype, 'stack');
  tensors.forEach((t, i) => {
    // t with a dimension of size 1 inserted at ax, copied into slice i.
    const s = [...t.shape];
    s.splice(ax, 0, 1);
    const st = [...t.strides];
    st.splice(ax, 0, 0);
    copyView(subView(t, s, st, t.offset), sliceView(out, ax, i, 1), 'stack');
  });
  return record('stack', out, tensors, (g, _, needs) =>
    tensors.map((t, i) => {
      if (!needs[i]) return null;
      const st = [...g.strides];
      st.splice(ax, 1);
      return g.view(t.shape, st, g.offset + i * g.strides[ax]!);
    }),
  );
}

/**
 * Views of `a` cut along `axis`: pieces of `size` elements (the last one shorter when the size
 * does not divide the dimension), or of the given sizes (which must add up to the dimension).
 */
export function split(a: Tensor, sizeOrSizes: number | readonly number[], axis = 0): Tensor[] {
  if (a.ndim === 0) throw new ShapeError('split: cannot cut a 0-d tensor');
  const ax = normAxis('split', axis, a.ndim);
  const n = a.shape[ax]!;
  let sizes: number[];
  if (typeof sizeOrSizes === 'number') {
    const size = sizeOrSizes;
    if (!Number.isInteger(size) || size < 0 || (size === 0 && n > 0)) {
      throw new ShapeError(`split: size ${size} must be a positive integer (dimension ${ax} of ${formatShape(a.shape)})`);
    }
    sizes = [];
    for (let s = 0; s < n; s += size) sizes.push(Math.min(size, n - s));
    if (!sizes.length) sizes.push(0);
  } else {
    sizes = [...sizeOrSizes];
    const total = sizes.reduce((x, y) => x + y, 0);
    if (sizes.some((s) => !Number.isInteger(s) || s < 0) || total !== n) {
      throw new ShapeError(`split: sizes [${sizes.join(', ')}] do not add up to dimension ${ax} of ${formatShape(a.shape)} (${n})`);
    }
  }
  return cut('split', a, ax, sizes);
}

/**
 * `a` cut into (at most) n views along `axis`, like torch.chunk: each of ceil(size / n) elements,
 * the last one shorter, fewer than n when the pieces run out.
 */
export function chunk(a: Tensor, n: number, axis = 0): Tensor[] {
  if (a.ndim === 0) throw new ShapeError('chunk: cannot cut a 0-d tensor');
  const ax = normAxis('chunk', axis, a.ndim);
  if (!Number.isInteger(n) || n < 1) throw new ShapeError(`chunk: the number of chunks must be a positive integer, got ${n} (tensor ${formatShape(a.shape)})`);
  const dim = a.shape[ax]!;
  if (dim === 0) return cut('chunk', a, ax, new Array<number>(n).fill(0));
  const size = Math.ceil(dim / n);
  const sizes: number[] = [];
  for (let s = 0; s < dim; s += size) sizes.push(Math.min(size, dim - s));
  return cut('chunk', a, ax, sizes);
}

function cut(op: string, a: Tensor, axis: number, sizes: readonly number[]): Tensor[] {
  let start = 0;
  return sizes.map((s) => {
    const piece = narrow(a, axis, start, s, op);
    start += s;
    return piece;
  });
}

function checkList(op: string, tensors: readonly Tensor[]): Tensor {
  if (!Array.isArray(tensors) || tensors.length === 0) throw new ShapeError(`${op}: needs a non-empty list of tensors`);
  const first = tensors[0]!;
  for (const t of tensors) {
    if (t.dtype !== first.dtype || (t.dtype !== 'float32' && t.dtype !== 'int32')) {
      throw new DTypeError(`${op}: tensors of dtypes ${tensors.map((x) => `${formatShape(x.shape)} ${x.dtype}`).join(', ')} (all float32 or all int32 needed)`);
    }
  }
  if (op === 'cat' && first.ndim === 0) throw new ShapeError('cat: 0-d tensors cannot be joined (stack them instead)');
  return first;
}
