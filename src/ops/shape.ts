// Ops that only change how storage is read: reshape, transpose/permute, expand, narrow. They
// return views (no copy) where the layout allows; reshape of a non-contiguous view copies.

import { record } from '../autograd/record';
import { checkShape, normAxis } from '../checks';
import { contiguousCopy } from '../creation';
import { ShapeError } from '../runtime/errors';
import { tidy } from '../scope';
import { contiguousStrides, formatShape, sizeOf, type Tensor } from '../tensor';
import { sumToShape } from './reduce';

/** Same data, new shape (one dimension may be -1). A view when `a` is contiguous. */
export function reshape(a: Tensor, shape: readonly number[]): Tensor {
  const target = inferShape(a, shape);
  // A view of `a`, or of a contiguous copy (whose own handle the scope frees; the view keeps it).
  const out = tidy(() => {
    const src = a.isContiguous ? a : contiguousCopy(a, 'reshape');
    return src.view(target, contiguousStrides(target), src.offset);
  });
  return record('reshape', out, [a], (g) => [reshape(g, a.shape)]);
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

/** Rows [start, start+length) along `axis` (a view). Not differentiable: meant for data batches. */
export function narrow(a: Tensor, axis: number, start: number, length: number): Tensor {
  const ax = normAxis('narrow', axis, a.ndim);
  if (!Number.isInteger(start) || !Number.isInteger(length) || start < 0 || length < 0 || start + length > a.shape[ax]!) {
    throw new ShapeError(`narrow: [${start}, ${start + length}) is outside dimension ${ax} of ${formatShape(a.shape)}`);
  }
  if (a.requiresGrad) throw new ShapeError('narrow: not differentiable; use it on data, not on tensors that require grad');
  const shape = [...a.shape];
  shape[ax] = length;
  return a.view(shape, a.strides, a.offset + start * a.strides[ax]!);
}

/** Insert a dimension of size 1 at `axis` (a view). */
export function unsqueeze(a: Tensor, axis: number): Tensor {
  const ax = normAxis('unsqueeze', axis, a.ndim + 1);
  const shape = [...a.shape];
  shape.splice(ax, 0, 1);
  return reshape(a, shape);
}
