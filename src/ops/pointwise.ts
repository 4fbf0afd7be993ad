// Launching the elementwise kernels (shaders/elementwise.wgsl): unary ops, binary ops with NumPy
// broadcasting (and with a number as the second operand), the ternary where, and the in-place
// y += alpha·x that accumulates gradients. Not recorded by autograd: the public ops and their
// backward rules (elementwise.ts, mask.ts, reduce.ts) call these. Operands are read through their
// strides, so views need no copy.

import elementwiseWGSL from '../../shaders/elementwise.wgsl?raw';
import { broadcastShapes, checkDType, checkRank, sameShape } from '../checks';
import { defineKernel } from '../kernels/kernel';
import { broadcastStrides, coalesce, MAX_RANK, padded, WG } from '../kernels/layout';
import { fillView } from '../kernels/copy';
import { launch } from '../kernels/launch';
import { fitsBinding, inBlocks, inFlatChunks } from '../kernels/segments';
import { isContiguousView, sizeOf, type View } from '../kernels/view';
import { DTypeError, ShapeError } from '../runtime/errors';
import { tidy } from '../scope';
import { empty, formatShape, type Tensor } from '../tensor';

const unaryKernel = defineKernel('unary', { code: elementwiseWGSL, entry: 'unary', bindings: { a: 'read', out: 'write' }, wasm: 'unary' });
const binaryKernel = defineKernel('binary', { code: elementwiseWGSL, entry: 'binary', bindings: { a: 'read', b: 'read', out: 'write' }, wasm: 'binary' });
const axpyKernel = defineKernel('axpy', { code: elementwiseWGSL, entry: 'axpy', bindings: { x: 'read', y: 'write' }, wasm: 'axpy' });
const ternaryKernel = defineKernel('where', {
  code: elementwiseWGSL,
  entry: 'ternary',
  bindings: { c: 'read', a: 'read', b: 'read', out: 'write' },
  wasm: 'where',
});

// Op codes, mirrored by unary_op / binary_op in shaders/elementwise.wgsl.
const UNARY = {
  neg: 0, exp: 1, log: 2, sqrt: 3, relu: 4, gelu: 5, tanh: 6, sigmoid: 7,
  affine: 8, powScalar: 9, reciprocal: 10, abs: 11, clamp: 12, isnan: 14,
  dropout: 16, tril: 17, triu: 18, silu: 19, geluTanh: 20,
} as const;
const BINARY = {
  add: 0, sub: 1, mul: 2, div: 3, maximum: 4, eq: 7,
  reluGrad: 8, geluGrad: 9, tanhGrad: 10, sigmoidGrad: 11, absGrad: 13,
  ne: 15, lt: 16, le: 17, gt: 18, ge: 19, maskedFill: 20, maskedKeep: 21, siluGrad: 22, geluTanhGrad: 23,
} as const;
/** OP = SCALAR + a binary op: the unary entry runs that op with a number as second operand. */
const SCALAR = 64;

export type UnaryName = Exclude<keyof typeof UNARY, 'tril' | 'triu'>;
export type BinaryName = keyof typeof BINARY;
export type Comparison = 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge';
const COMPARISONS: readonly BinaryName[] = ['eq', 'ne', 'lt', 'le', 'gt', 'ge'];
/** Ops whose second operand is a mask (float32 or int32; nonzero is true). */
const MASKED: readonly BinaryName[] = ['maskedFill', 'maskedKeep'];

/** f(a) elementwise; `alpha`, `beta` are the op's scalars (affine: alpha·a + beta), `seed` dropout's. */
export function runUnary(name: UnaryName, a: Tensor, alpha = 0, beta = 0, seed = 0): Tensor {
  checkDType(name, a);
  return unaryLaunch(name, UNARY[name], a, { alpha, beta, seed });
}

/**
 * f(a, s) elementwise for a number s (comparisons: also for int32 a, compared as integers when s
 * is one; the result is float32).
 */
export function runScalar(name: BinaryName, a: Tensor, s: number): Tensor {
  if (a.dtype === 'int32' && COMPARISONS.includes(name)) return intScalarCompare(name as Comparison, a, s);
  checkDType(name, a);
  return unaryLaunch(name, SCALAR + BINARY[name], a, { alpha: s });
}

/** The lower (tril) or upper (triu) triangle of each matrix in the last two dims (a.ndim ≥ 2), zeros elsewhere. */
export function runTriangle(a: Tensor, upper: boolean, diag: number): Tensor {
  const op = upper ? 'triu' : 'tril';
  checkDType(op, a);
  const [rows, cols] = a.shape.slice(-2) as [number, number];
  return unaryLaunch(op, UNARY[op], a, { rows, cols, diag });
}

/**
 * An int32 tensor against a number: exactly, as integers. A number that is not an int32 becomes
 * the integer comparison it is equivalent to (x < 2.5 is x < 3), or a constant (x == 2.5 never
 * holds, x < NaN neither).
 */
function intScalarCompare(name: Comparison, a: Tensor, s: number): Tensor {
  const constant = (v: number) => {
    checkRank(name, a.shape);
    const out = empty(a.shape, 'float32', name);
    fillView(out, v);
    return out;
  };
  const I32_MIN = -(2 ** 31);
  const I32_MAX = 2 ** 31 - 1;
  if (Number.isNaN(s)) return constant(name === 'ne' ? 1 : 0);
  if (s > I32_MAX) return constant(name === 'lt' || name === 'le' || name === 'ne' ? 1 : 0);
  if (s < I32_MIN) return constant(name === 'gt' || name === 'ge' || name === 'ne' ? 1 : 0);
  if (!Number.isInteger(s)) {
    if (name === 'eq' || name === 'ne') return constant(name === 'ne' ? 1 : 0);
    s = name === 'lt' || name === 'ge' ? Math.ceil(s) : Math.floor(s);
  }
  return unaryLaunch(name, SCALAR + BINARY[name], a, { int_scalar: s }, { INT_OPERANDS: true });
}

/** The unary entry over a (float32, or int32 for comparisons) with the op's params. */
function unaryLaunch(name: string, op: number, a: Tensor, opParams: Record<string, number>, opConstants: Record<string, boolean> = {}): Tensor {
  checkRank(name, a.shape);
  const out = empty(a.shape, 'float32', name);
  const { alpha = 0, beta = 0, seed = 0 } = opParams;
  const run = ([av, ov]: View[], base: number): void => {
    const contig = isContiguousView(av!);
    // Strided: merge dimensions the input reads as one, so the kernel's index loop is short.
    const dims = coalesce(av!.shape, [av!.strides]);
    const n = sizeOf(av!.shape);
    launch(
      unaryKernel,
      {
        bind: { a: av!, out: ov! },
        params: { ...opParams, n, alpha, beta, seed, base, shape: padded(dims.shape, MAX_RANK, 1), a_strides: dims.strides[0]! },
        constants: { ...opConstants, WG, OP: op, CONTIG: contig, RANK: contig ? 1 : Math.max(1, dims.shape.length) },
        workgroups: Math.ceil(n / WG),
      },
      name,
    );
  };
  if (a.isContiguous) inFlatChunks([a, out], run);
  else inLeadingBlocks(name, out, [a, out], run);
  return out;
}

/**
 * f(a, b) elementwise with NumPy broadcasting; `alpha` is the op's scalar (maskedFill's value).
 * Comparisons take two float32 or two int32 operands; the masked ops a float32 or int32 mask b.
 */
export function runBinary(name: BinaryName, a: Tensor, b: Tensor, alpha = 0): Tensor {
  const ints = COMPARISONS.includes(name) && a.dtype === 'int32';
  checkDType(name, a, ints ? 'int32' : 'float32', 'first operand');
  const maskInt = MASKED.includes(name) && b.dtype === 'int32';
  checkDType(name, b, ints || maskInt ? 'int32' : 'float32', MASKED.includes(name) ? 'mask' : 'second operand');
  const shape = broadcastShapes(name, a.shape, b.shape);
  checkRank(name, shape);
  const out = empty(shape, 'float32', name);
  const run = ([av, bv, ov]: View[]): void => {
    const contig = sameShape(av!.shape, ov!.shape) && sameShape(bv!.shape, ov!.shape) && isContiguousView(av!) && isContiguousView(bv!);
    const periodic = !contig && isPeriodic(av!, ov!.shape) && isPeriodic(bv!, ov!.shape);
    // Merge dimensions that the output and both operands address as one (a bias add over
    // [B, F] stays 2-D; a contiguous-with-broadcast run becomes 1-D).
    const dims = coalesce(ov!.shape, [broadcastStrides(av!, ov!.shape), broadcastStrides(bv!, ov!.shape), ov!.strides]);
    const n = sizeOf(ov!.shape);
    launch(
      binaryKernel,
      {
        bind: { a: av!, b: bv!, out: ov! },
        params: {
          n,
          alpha,
          shape: padded(dims.shape, MAX_RANK, 1),
          a_strides: dims.strides[0]!,
          b_strides: dims.strides[1]!,
          a_period: sizeOf(av!.shape),
          b_period: sizeOf(bv!.shape),
        },
        constants: {
          WG,
          OP: BINARY[name],
          CONTIG: contig,
          PERIODIC: periodic,
          RANK: contig || periodic ? 1 : Math.max(1, dims.shape.length),
          MASK_INT: maskInt,
          INT_OPERANDS: ints,
        },
        workgroups: Math.ceil(n / WG),
      },
      name,
    );
  };
  if (sameShape(a.shape, shape) && sameShape(b.shape, shape) && a.isContiguous && b.isContiguous) inFlatChunks([a, b, out], run);
  else inLeadingBlocks(name, out, [a, b, out], run);
  return out;
}

/**
 * where(c, a, b) elementwise with NumPy broadcasting of all three: a where c is true (nonzero,
 * NaN included), else b. a and b are float32; c float32 or int32.
 */
export function runWhere(c: Tensor, a: Tensor, b: Tensor): Tensor {
  checkDType('where', a, 'float32', 'first value operand');
  checkDType('where', b, 'float32', 'second value operand');
  if (c.dtype !== 'float32' && c.dtype !== 'int32') {
    throw new DTypeError(`where: condition ${formatShape(c.shape)} is ${c.dtype}, expected float32 or int32`);
  }
  const problem = `condition ${formatShape(c.shape)} and values ${formatShape(a.shape)}, ${formatShape(b.shape)} cannot be broadcast together`;
  const shape = broadcastShapes('where', broadcastShapes('where', c.shape, a.shape, problem), b.shape, problem);
  checkRank('where', shape);
  const out = empty(shape, 'float32', 'where');
  const run = ([cv, av, bv, ov]: View[]): void => {
    const same = [cv!, av!, bv!].every((v) => sameShape(v.shape, ov!.shape) && isContiguousView(v));
    const dims = coalesce(ov!.shape, [broadcastStrides(av!, ov!.shape), broadcastStrides(bv!, ov!.shape), broadcastStrides(cv!, ov!.shape), ov!.strides]);
    const n = sizeOf(ov!.shape);
    launch(
      ternaryKernel,
      {
        bind: { c: cv!, a: av!, b: bv!, out: ov! },
        params: {
          n,
          shape: padded(dims.shape, MAX_RANK, 1),
          a_strides: dims.strides[0]!,
          b_strides: dims.strides[1]!,
          c_strides: dims.strides[2]!,
        },
        constants: { WG, CONTIG: same, RANK: same ? 1 : Math.max(1, dims.shape.length), MASK_INT: c.dtype === 'int32' },
        workgroups: Math.ceil(n / WG),
      },
      'where',
    );
  };
  if ([c, a, b].every((t) => sameShape(t.shape, shape) && t.isContiguous)) inFlatChunks([c, a, b, out], run);
  else inLeadingBlocks('where', out, [c, a, b, out], run);
  return out;
}

/**
 * `run` over the views whole, or, when one is larger than a binding, over blocks of the output's
 * first dimension: each operand is cut along it too, unless it is broadcast along it (then whole).
 * `run` gets the flat index of the block's first output element.
 */
function inLeadingBlocks(op: string, out: View, views: readonly View[], run: (views: View[], base: number) => void): void {
  if (out.shape.length === 0 || fitsBinding(...views)) {
    run([...views], 0);
    return;
  }
  const lead = out.shape[0]!;
  const slice = sizeOf(out.shape.slice(1));
  const dimOf = (v: View) => (v.shape.length === out.shape.length && v.shape[0] === lead && lead > 1 ? 0 : null);
  inBlocks(op, 'slice along the first dimension', lead, views.map((v) => [v, dimOf(v)] as const), (vs, start) => run(vs, start * slice));
}
/** y += alpha · x, in place (same shape; y contiguous). Accumulates gradients. */
export function axpyInPlace(y: Tensor, x: Tensor, alpha: number): void {
  if (!sameShape(x.shape, y.shape)) {
    throw new ShapeError(`axpy: shapes ${formatShape(y.shape)} and ${formatShape(x.shape)} differ`);
  }
  if (!y.isContiguous) throw new ShapeError('axpy: the accumulator must be contiguous');
  tidy(() =>
    inFlatChunks([x.isContiguous ? x : runUnary('affine', x, 1, 0), y], ([xv, yv]) => {
      const n = sizeOf(yv!.shape);
      launch(axpyKernel, { bind: { x: xv!, y: yv! }, params: { n, alpha }, constants: { WG }, workgroups: Math.ceil(n / WG) }, 'axpy');
    }),
  );
}

/**
 * Whether `t` is contiguous and broadcast to `shape` only along leading dimensions: then output
 * element i reads element i mod t.size.
 */
function isPeriodic(t: View, shape: readonly number[]): boolean {
  if (!isContiguousView(t)) return false;
  const lead = shape.length - t.shape.length;
  // Drop t's leading 1s: what remains must equal the tail of the output shape.
  let k = 0;
  while (k < t.shape.length && t.shape[k] === 1) k++;
  for (let i = k; i < t.shape.length; i++) if (t.shape[i] !== shape[lead + i]) return false;
  return true;
}
