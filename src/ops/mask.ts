// Masks: the comparisons eq ne lt le gt ge (float32 0/1, not differentiable), where(cond, a, b),
// maskedFill, and the triangles tril/triu. All run in the elementwise kernels
// (shaders/elementwise.wgsl through pointwise.ts): where is their ternary entry, maskedFill a
// binary op whose second operand is the mask, tril/triu unary ops that read the element's index.
// A condition or mask is float32 (what the comparisons give) or int32; nonzero is true.

import { record } from '../autograd/record';
import { ShapeError } from '../runtime/errors';
import { tidy } from '../scope';
import { formatShape, type Tensor } from '../tensor';
import { full } from '../creation';
import type { TensorOrNumber } from './elementwise';
import { runBinary, runScalar, runTriangle, runWhere, type Comparison } from './pointwise';
import { sumGradTo } from './reduce';

function compare(op: Comparison, a: Tensor, b: TensorOrNumber): Tensor {
  if (typeof (a as unknown) === 'number') throw new ShapeError(`${op}: the first operand must be a tensor (a number is allowed as the second)`);
  return typeof b === 'number' ? runScalar(op, a, b) : runBinary(op, a, b);
}

/** 1 where a == b, else 0 (NaN equals nothing). float32 or int32 operands; b may be a number. */
export function eq(a: Tensor, b: TensorOrNumber): Tensor {
  return compare('eq', a, b);
}

/** 1 where a != b (NaN differs from everything), else 0. */
export function ne(a: Tensor, b: TensorOrNumber): Tensor {
  return compare('ne', a, b);
}

/** 1 where a < b, else 0 (false when either is NaN). */
export function lt(a: Tensor, b: TensorOrNumber): Tensor {
  return compare('lt', a, b);
}

/** 1 where a <= b, else 0. */
export function le(a: Tensor, b: TensorOrNumber): Tensor {
  return compare('le', a, b);
}

/** 1 where a > b, else 0. */
export function gt(a: Tensor, b: TensorOrNumber): Tensor {
  return compare('gt', a, b);
}

/** 1 where a >= b, else 0. */
export function ge(a: Tensor, b: TensorOrNumber): Tensor {
  return compare('ge', a, b);
}

/**
 * a where cond is true (nonzero), else b, all three broadcast together (PyTorch's torch.where).
 * a or b may be a number. The gradient flows to a where cond holds and to b elsewhere.
 */
export function where(cond: Tensor, a: TensorOrNumber, b: TensorOrNumber): Tensor {
  if (typeof a === 'number' && typeof b === 'number') {
    return tidy(() => maskedKeep(full([], a), cond, b));
  }
  if (typeof b === 'number') return maskedKeep(a as Tensor, cond, b);
  if (typeof a === 'number') return maskedFill(b, cond, a);
  return record(
    'where',
    runWhere(cond, a, b),
    [a, b],
    (g, [c], needs) => [
      needs[0] ? sumGradTo(runBinary('maskedKeep', g, c!, 0), a.shape) : null,
      needs[1] ? sumGradTo(runBinary('maskedFill', g, c!, 0), b.shape) : null,
    ],
    [cond],
  );
}

/** `value` where mask is true (nonzero), else a; a and mask broadcast together. */
export function maskedFill(a: Tensor, mask: Tensor, value: number): Tensor {
  if (typeof value !== 'number') throw new ShapeError(`maskedFill: value must be a number, got ${typeof value} (input ${formatShape(a.shape)})`);
  return record(
    'maskedFill',
    runBinary('maskedFill', a, mask, value),
    [a],
    (g, [m]) => [sumGradTo(runBinary('maskedFill', g, m!, 0), a.shape)],
    [mask],
  );
}

/** a where mask is true, else `value` (where(mask, a, value)). */
function maskedKeep(a: Tensor, mask: Tensor, value: number): Tensor {
  return record(
    'where',
    runBinary('maskedKeep', a, mask, value),
    [a],
    (g, [m]) => [sumGradTo(runBinary('maskedKeep', g, m!, 0), a.shape)],
    [mask],
  );
}

/** The elements on and below diagonal k of each matrix (the last two dims), zeros above. */
export function tril(a: Tensor, k = 0): Tensor {
  return triangle('tril', a, k);
}

/** The elements on and above diagonal k of each matrix (the last two dims), zeros below. */
export function triu(a: Tensor, k = 0): Tensor {
  return triangle('triu', a, k);
}

function triangle(op: 'tril' | 'triu', a: Tensor, k: number): Tensor {
  if (a.ndim < 2) throw new ShapeError(`${op}: needs a tensor of at least 2 dimensions (a matrix or a batch of them), got ${formatShape(a.shape)}`);
  if (!Number.isInteger(k) || Math.abs(k) > 2 ** 31 - 1) throw new ShapeError(`${op}: the diagonal k must be an integer, got ${k}`);
  const upper = op === 'triu';
  return record(op, runTriangle(a, upper, k), [a], (g) => [runTriangle(g, upper, k)]);
}
