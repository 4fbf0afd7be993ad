// Launching the elementwise kernels (shaders/elementwise.wgsl): unary ops, binary ops with NumPy
// broadcasting, and the in-place y += alpha·x that accumulates gradients. Not recorded by
// autograd: the public ops and their backward rules (elementwise.ts, reduce.ts) call these.
// Operands are read through their strides, so views need no copy.

import elementwiseWGSL from '../../shaders/elementwise.wgsl?raw';
import { broadcastShapes, checkDType, checkRank, sameShape } from '../checks';
import { defineKernel } from '../kernels/kernel';
import { broadcastStrides, coalesce, MAX_RANK, padded, WG } from '../kernels/layout';
import { launch } from '../kernels/launch';
import { fitsBinding, inBlocks, inFlatChunks } from '../kernels/segments';
import { isContiguousView, sizeOf, type View } from '../kernels/view';
import { ShapeError } from '../runtime/errors';
import { tidy } from '../scope';
import { empty, formatShape, type Tensor } from '../tensor';

const unaryKernel = defineKernel('unary', { code: elementwiseWGSL, entry: 'unary', bindings: { a: 'read', out: 'write' } });
const binaryKernel = defineKernel('binary', { code: elementwiseWGSL, entry: 'binary', bindings: { a: 'read', b: 'read', out: 'write' } });
const axpyKernel = defineKernel('axpy', { code: elementwiseWGSL, entry: 'axpy', bindings: { x: 'read', y: 'write' } });

// Op codes, mirrored by unary_op / binary_op in shaders/elementwise.wgsl.
const UNARY = {
  neg: 0, exp: 1, log: 2, sqrt: 3, relu: 4, gelu: 5, tanh: 6, sigmoid: 7,
  affine: 8, powScalar: 9, reciprocal: 10, abs: 11, clamp: 12, isnan: 14,
  dropout: 16,
} as const;
const BINARY = {
  add: 0, sub: 1, mul: 2, div: 3, maximum: 4, eq: 7,
  reluGrad: 8, geluGrad: 9, tanhGrad: 10, sigmoidGrad: 11, absGrad: 13,
} as const;

export type UnaryName = keyof typeof UNARY;
export type BinaryName = keyof typeof BINARY;

/** f(a) elementwise; `alpha`, `beta` are the op's scalars (affine: alpha·a + beta), `seed` dropout's. */
export function runUnary(name: UnaryName, a: Tensor, alpha = 0, beta = 0, seed = 0): Tensor {
  checkDType(name, a);
  checkRank(name, a.shape);
  const out = empty(a.shape, 'float32', name);
  const run = ([av, ov]: View[], base: number): void => {
    const contig = isContiguousView(av!);
    // Strided: merge dimensions the input reads as one, so the kernel's index loop is short.
    const dims = coalesce(av!.shape, [av!.strides]);
    const n = sizeOf(av!.shape);
    launch(
      unaryKernel,
      {
        bind: { a: av!, out: ov! },
        params: { n, alpha, beta, seed, base, shape: padded(dims.shape, MAX_RANK, 1), a_strides: dims.strides[0]! },
        constants: { WG, OP: UNARY[name], CONTIG: contig, RANK: contig ? 1 : Math.max(1, dims.shape.length) },
        workgroups: Math.ceil(n / WG),
      },
      name,
    );
  };
  if (a.isContiguous) inFlatChunks([a, out], run);
  else inLeadingBlocks(name, out, [a, out], run);
  return out;
}

/** f(a, b) elementwise with NumPy broadcasting. */
export function runBinary(name: BinaryName, a: Tensor, b: Tensor): Tensor {
  checkDType(name, a, 'float32', 'first operand');
  checkDType(name, b, 'float32', 'second operand');
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
          shape: padded(dims.shape, MAX_RANK, 1),
          a_strides: dims.strides[0]!,
          b_strides: dims.strides[1]!,
          a_period: sizeOf(av!.shape),
          b_period: sizeOf(bv!.shape),
        },
        constants: { WG, OP: BINARY[name], CONTIG: contig, PERIODIC: periodic, RANK: contig || periodic ? 1 : Math.max(1, dims.shape.length) },
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
 * `run` over the views whole, or, when one is larger than a binding, over blocks of the output's
 * first dimension: each operand is cut along it too, unless it is broadcast along it (then whole).
 */
function inLeadingBlocks(op: string, out: View, views: readonly View[], run: (views: View[], base: number) => void): void {
  if (out.shape.length === 0 || fitsBinding(...views)) {
    run([...views], 0);
    return;
  }
  const lead = out.shape[0]!;
  const dimOf = (v: View) => (v.shape.length === out.shape.length && v.shape[0] === lead && lead > 1 ? 0 : null);
  inBlocks(op, 'slice along the first dimension', lead, views.map((v) => [v, dimOf(v)] as const), (vs) => run(vs, 0));
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
