// Ops that only change how storage is read: reshape, transpose/permute, expand, narrow. They
// return views (no copy) where the layout allows; reshape copies only a view whose strides cannot
// express the new shape (as torch.reshape).

import { record } from '../autograd/record';
import { checkShape, normAxis } from '../checks';
import { contiguousCopy } from '../creation';
import { copyView, fillView } from '../kernels/copy';
import { sliceView } from '../kernels/view';
import { ShapeError } from '../runtime/errors';
import { tidy } from '../scope';
import { contiguousStrides, empty, formatShape, sizeOf, type Tensor } from '../tensor';
import { sumToShape } from './reduce';

/**
 * Same data, new shape (one dimension may be -1). A view whenever `a`'s strides allow (always for
 * a contiguous `a`; for a slice or a transposed view when the dimensions merged or split are laid
 * out as one), else a view of a contiguous copy.
 */
export function reshape(a: Tensor, shape: readonly number[]): Tensor {
  const target = inferShape(a, shape);
  const strides = viewStrides(a.shape, a.strides, target);
  // A view of `a`, or of a contiguous copy (whose own handle the scope frees; the view keeps it).
  const out = strides
    ? a.view(target, strides, a.offset)
    : tidy(() => {
        const src = contiguousCopy(a, 'reshape');
        return src.view(target, contiguousStrides(target), src.offset);
      });
  return record('reshape', out, [a], (g) => [reshape(g, a.shape)]);
}

/**
 * Strides that read a view of `shape`/`strides` as `target` (same number of elements), or null when
 * none do: each run of dimensions laid out as one block (outer stride = inner stride · inner size)
 * may be regrouped freely; dimensions of size 1 fit anywhere. (PyTorch's computeStride.)
 */
export function viewStrides(shape: readonly number[], strides: readonly number[], target: readonly number[]): number[] | null {
  if (sizeOf(shape) === 0 || shape.length === 0) return contiguousStrides(target);
  const out = new Array<number>(target.length);
  let v = target.length - 1;
  let base = strides[shape.length - 1]!;
  let blockSize = 1;
  let viewSize = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    blockSize *= shape[d]!;
    // The block ends where the next dimension out is not laid out right after this one.
    if (d === 0 || (shape[d - 1] !== 1 && strides[d - 1] !== blockSize * base)) {
      while (v >= 0 && (viewSize < blockSize || target[v] === 1)) {
        out[v] = viewSize * base;
        viewSize *= target[v]!;
        v--;
      }
      if (viewSize !== blockSize) return null;
      if (d > 0) {
        base = strides[d - 1]!;
        blockSize = 1;
        viewSize = 1;
      }
    }
  }
  return v === -1 ? out : null;
}

function inferShape(a: Tensor, shape: readonly number[]): number[] {
  const wild = shape.filter((d) => d === -1).length;
  const known = shape.filter((d) => d !== -1);
  checkShape('reshape', known);
  if (wild > 1) throw new ShapeError(`reshape: at most one dimension may be -1, got ${formatShape(shape)}`);
  const rest = sizeOf(known);
  const out = shape.map((d) => (d === -1 ? (rest === 0 ? 0 : a.size / rest) : d));
  if (sizeOf(out) !== a.size || out.some((d) => !Number.isInteger(d))) {
    throw new ShapeError(`reshape: cannot view ${formatShape(a.shape)} (${a.size} elements) as ${formatShape(shape)}`);
  }
  return out;
}

/**
 * Permute dimensions (a view, no copy). Without `dims`, reverses them (for a matrix: the
 * transpose), like NumPy.
 */
export function transpose(a: Tensor, dims?: readonly number[]): Tensor {
  const n = a.ndim;
  const perm = dims ? dims.map((d) => normAxis('transpose', d, n)) : [...Array(n).keys()].reverse();
  if (perm.length !== n || new Set(perm).size !== n) {
    throw new ShapeError(`transpose: dims ${formatShape(dims ?? [])} are not a permutation of the ${n} dimensions of ${formatShape(a.shape)}`);
  }
  const out = a.view(
    perm.map((p) => a.shape[p]!),
    perm.map((p) => a.strides[p]!),
    a.offset,
  );
  const inverse = new Array<number>(n);
  perm.forEach((p, i) => (inverse[p] = i));
  return record('transpose', out, [a], (g) => [transpose(g, inverse)]);
}

/** Swap the last two dimensions (a view): the matrix transpose of a batch of matrices. */
export function mT(a: Tensor): Tensor {
  if (a.ndim < 2) throw new ShapeError(`mT: needs at least 2 dimensions, got ${formatShape(a.shape)}`);
  const perm = [...Array(a.ndim).keys()];
  perm[a.ndim - 1] = a.ndim - 2;
  perm[a.ndim - 2] = a.ndim - 1;
  return transpose(a, perm);
}

/** Broadcast `a` to `shape` without copying (stride 0 along broadcast dimensions). */
export function expand(a: Tensor, shape: readonly number[]): Tensor {
  const n = shape.length;
  if (n < a.ndim) throw new ShapeError(`expand: cannot expand ${formatShape(a.shape)} to fewer dimensions ${formatShape(shape)}`);
  const strides = new Array<number>(n).fill(0);
  for (let i = 0; i < a.ndim; i++) {
    const j = n - a.ndim + i;
    if (a.shape[i] === shape[j]) strides[j] = a.strides[i]!;
    else if (a.shape[i] !== 1) throw new ShapeError(`expand: cannot expand ${formatShape(a.shape)} to ${formatShape(shape)}`);
  }
  const out = a.view(shape, strides, a.offset);
  return record('expand', out, [a], (g) => [sumToShape(g, a.shape)]);
}

/**
 * Elements [start, start+length) along `axis` (a view, no copy). The gradient is the incoming one
 * placed there, zeros elsewhere.
 */
export function narrow(a: Tensor, axis: number, start: number, length: number, op = 'narrow'): Tensor {
  if (a.ndim === 0) throw new ShapeError(`${op}: cannot cut a 0-d tensor`);
  const ax = normAxis(op, axis, a.ndim);
  if (!Number.isInteger(start) || !Number.isInteger(length) || start < 0 || length < 0 || start + length > a.shape[ax]!) {
    throw new ShapeError(`${op}: [${start}, ${start + length}) is outside dimension ${ax} of ${formatShape(a.shape)}`);
  }
  const shape = [...a.shape];
  shape[ax] = length;
  const out = a.view(shape, a.strides, a.offset + (length > 0 ? start * a.strides[ax]! : 0));
  return record(op, out, [a], (g) => [padGrad(g, a.shape, ax, start)]);
}

/** A tensor of `shape` holding `g` at [start, start + g.shape[axis]) along `axis`, zeros elsewhere. */
export function padGrad(g: Tensor, shape: readonly number[], axis: number, start: number): Tensor {
  if (g.shape[axis] === shape[axis]) return g;
  const out = empty(shape, 'float32', 'narrow.backward');
  fillView(out, 0);
  copyView(g, sliceView(out, axis, start, g.shape[axis]!), 'narrow.backward');
  return out;
}

/** Insert a dimension of size 1 at `axis` (a view). */
export function unsqueeze(a: Tensor, axis: number): Tensor {
  const ax = normAxis('unsqueeze', axis, a.ndim + 1);
  const shape = [...a.shape];
  shape.splice(ax, 0, 1);
  return reshape(a, shape);
}
