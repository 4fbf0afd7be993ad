// Elementwise ops: unary (neg, exp, log, …) and binary with NumPy broadcasting (add, sub, mul,
// div, …), each with its backward rule beside it. One WGSL file serves them all; the op is an
// override constant. Operands are read through their strides, so views need no copy.

import elementwiseWGSL from '../../shaders/elementwise.wgsl?raw';
import { record } from '../autograd/record';
import { runtime } from '../runtime/device';
import { defineKernel } from '../kernels/kernel';
import { Params } from '../kernels/params';
import { ShapeError } from '../runtime/errors';
import { empty, formatShape, type Tensor } from '../tensor';
import { sumToShape } from './reduce';
import { bindView } from '../kernels/binding';
import { inFlatChunks } from '../kernels/segments';
import { coalesce, broadcastShapes, broadcastStrides, checkDType, checkRank, MAX_RANK, sameShape, WG } from './util';

const unaryKernel = defineKernel('unary', elementwiseWGSL, ['read', 'write'], 'unary');
const binaryKernel = defineKernel('binary', elementwiseWGSL, ['read', 'read', 'write'], 'binary');
const axpyKernel = defineKernel('axpy', elementwiseWGSL, ['read', 'write'], 'axpy');

// Op codes, mirrored by unary_op / binary_op in shaders/elementwise.wgsl.
const UNARY = {
  neg: 0, exp: 1, log: 2, sqrt: 3, relu: 4, gelu: 5, tanh: 6, sigmoid: 7,
  affine: 8, powScalar: 9, reciprocal: 10, abs: 11, clamp: 12, gtScalar: 13, isnan: 14, sign: 15,
  dropout: 16,
} as const;
const BINARY = {
  add: 0, sub: 1, mul: 2, div: 3, maximum: 4, minimum: 5, pow: 6, eq: 7,
  reluGrad: 8, geluGrad: 9, tanhGrad: 10, sigmoidGrad: 11, gt: 12, absGrad: 13,
} as const;

type UnaryName = keyof typeof UNARY;
type BinaryName = keyof typeof BINARY;

/** A number or a tensor: numbers become scalar operands where the op allows. */
export type Operand = Tensor | number;

function runUnary(name: UnaryName, a: Tensor, alpha = 0, beta = 0, seed = 0): Tensor {
  checkDType(name, a);
  checkRank(name, a.shape);
  const out = empty(a.shape, 'float32', name);
  inFlatChunks([a, out], ([av, ov], base) => {
    const x = bindView(name, av!);
    const contig = av!.isContiguous;
    // Strided: merge dimensions the input reads as one, so the kernel's index loop is short.
    const dims = coalesce(av!.shape, [av!.strides]);
    const params = new Params()
      .u32(av!.size, dims.shape.length)
      .f32(alpha, beta)
      .vecU32(dims.shape, MAX_RANK, 1)
      .vecU32(dims.strides[0]!, MAX_RANK)
      .vecU32([], MAX_RANK)
      .u32(x.offset, seed, base);
    runtime().executor.dispatch(unaryKernel, {
      constants: { WG, OP: UNARY[name], CONTIG: contig, RANK: contig ? 1 : Math.max(1, dims.shape.length) },
      buffers: [x.range, bindView(name, ov!).range],
      params,
      workgroups: Math.ceil(av!.size / WG),
    });
  });
  return out;
}

function runBinary(name: BinaryName, a: Tensor, b: Tensor): Tensor {
  checkDType(name, a, 'float32', 'first operand');
  checkDType(name, b, 'float32', 'second operand');
  const shape = broadcastShapes(name, a.shape, b.shape);
  checkRank(name, shape);
  const out = empty(shape, 'float32', name);
  const contig = sameShape(a.shape, shape) && sameShape(b.shape, shape) && a.isContiguous && b.isContiguous;
  const periodic = !contig && isPeriodic(a, shape) && isPeriodic(b, shape);
  const dispatch = (av: Tensor, bv: Tensor, ov: Tensor): void => {
    const x = bindView(name, av, 'first operand');
    const y = bindView(name, bv, 'second operand');
    // Merge dimensions that the output and both operands address as one (a bias add over
    // [B, F] stays 2-D; a contiguous-with-broadcast run becomes 1-D).
    const dims = coalesce(ov.shape, [broadcastStrides(av, ov.shape), broadcastStrides(bv, ov.shape), ov.strides]);
    const params = new Params()
      .u32(ov.size, dims.shape.length)
      .f32(0, 0)
      .vecU32(dims.shape, MAX_RANK, 1)
      .vecU32(dims.strides[0]!, MAX_RANK)
      .vecU32(dims.strides[1]!, MAX_RANK)
      .u32(x.offset, y.offset, 0, av.size, bv.size);
    runtime().executor.dispatch(binaryKernel, {
      constants: { WG, OP: BINARY[name], CONTIG: contig, PERIODIC: periodic, RANK: contig || periodic ? 1 : Math.max(1, dims.shape.length) },
      buffers: [x.range, y.range, bindView(name, ov).range],
      params,
      workgroups: Math.ceil(ov.size / WG),
    });
  };
  if (contig) inFlatChunks([a, b, out], ([av, bv, ov]) => dispatch(av!, bv!, ov!));
  else dispatch(a, b, out);
  return out;
}

// ---- unary ops -------------------------------------------------------------------------------

export function neg(a: Tensor): Tensor {
  return record('neg', runUnary('neg', a), [a], (g) => [neg(g)]);
}

export function exp(a: Tensor): Tensor {
  const out = runUnary('exp', a);
  return record('exp', out, [a], (g, [y]) => [mul(g, y!)], [out]);
}

export function log(a: Tensor): Tensor {
  return record('log', runUnary('log', a), [a], (g, [x]) => [div(g, x!)], [a]);
}

export function sqrt(a: Tensor): Tensor {
  const out = runUnary('sqrt', a);
  // d sqrt(x) = g / (2 sqrt(x))
  return record('sqrt', out, [a], (g, [y]) => [div(g, scale(y!, 2))], [out]);
}

export function relu(a: Tensor): Tensor {
  return record('relu', runUnary('relu', a), [a], (g, [x]) => [runBinary('reluGrad', g, x!)], [a]);
}

/** GELU, the exact erf form (PyTorch's default). */
export function gelu(a: Tensor): Tensor {
  return record('gelu', runUnary('gelu', a), [a], (g, [x]) => [runBinary('geluGrad', g, x!)], [a]);
}

export function tanh(a: Tensor): Tensor {
  const out = runUnary('tanh', a);
  return record('tanh', out, [a], (g, [y]) => [runBinary('tanhGrad', g, y!)], [out]);
}

export function sigmoid(a: Tensor): Tensor {
  const out = runUnary('sigmoid', a);
  return record('sigmoid', out, [a], (g, [y]) => [runBinary('sigmoidGrad', g, y!)], [out]);
}

export function abs(a: Tensor): Tensor {
  return record('abs', runUnary('abs', a), [a], (g, [x]) => [runBinary('absGrad', g, x!)], [a]);
}

/** alpha * a + beta */
export function affine(a: Tensor, alpha: number, beta: number): Tensor {
  return record('affine', runUnary('affine', a, alpha, beta), [a], (g) => [scale(g, alpha)]);
}

export function scale(a: Tensor, s: number): Tensor {
  return affine(a, s, 0);
}

/** a ** p for a number p. */
export function powScalar(a: Tensor, p: number): Tensor {
  return record('pow', runUnary('powScalar', a, p), [a], (g, [x]) => [mul(g, scale(powScalar(x!, p - 1), p))], [a]);
}

export function clamp(a: Tensor, min: number, max: number): Tensor {
  const out = runUnary('clamp', a, min, max);
  // Gradient passes where a was inside [min, max].
  return record('clamp', out, [a], (g, [x]) => [mul(g, runBinary('eq', x!, runUnary('clamp', x!, min, max)))], [a]);
}

/**
 * Inverted dropout: zero each element with probability p and scale the rest by 1/(1-p). The mask
 * is a hash of (seed, element index), so backward recomputes it rather than storing it.
 */
export function dropout(a: Tensor, p: number, seed: number): Tensor {
  if (!(p >= 0 && p < 1)) throw new ShapeError(`dropout: p must be in [0, 1), got ${p}`);
  const x = a.isContiguous ? a : runUnary('affine', a, 1, 0);
  const out = runUnary('dropout', x, p, 1 / (1 - p), seed);
  if (x !== a) x.dispose();
  return record('dropout', out, [a], (g) => [dropout(g, p, seed)]);
}

/** 1 where a > s, else 0 (not differentiable). */
export function gtScalar(a: Tensor, s: number): Tensor {
  return runUnary('gtScalar', a, s);
}

/** 1 where a is NaN, else 0. */
export function isnan(a: Tensor): Tensor {
  return runUnary('isnan', a);
}

// ---- binary ops ------------------------------------------------------------------------------

export function add(a: Operand, b: Operand): Tensor {
  if (typeof b === 'number') return affine(asTensor('add', a), 1, b);
  if (typeof a === 'number') return affine(b, 1, a);
  return record('add', runBinary('add', a, b), [a, b], (g) => [sumToShape(g, a.shape), sumToShape(g, b.shape)]);
}

export function sub(a: Operand, b: Operand): Tensor {
  if (typeof b === 'number') return affine(asTensor('sub', a), 1, -b);
  if (typeof a === 'number') return affine(b, -1, a);
  return record('sub', runBinary('sub', a, b), [a, b], (g, _, needs) => [
    needs[0] ? sumToShape(g, a.shape) : null,
    needs[1] ? sumToShape(neg(g), b.shape) : null,
  ]);
}

export function mul(a: Operand, b: Operand): Tensor {
  if (typeof b === 'number') return scale(asTensor('mul', a), b);
  if (typeof a === 'number') return scale(b, a);
  return record(
    'mul',
    runBinary('mul', a, b),
    [a, b],
    (g, [x, y], needs) => [
      needs[0] ? reduceGrad(runBinary('mul', g, y!), a.shape) : null,
      needs[1] ? reduceGrad(runBinary('mul', g, x!), b.shape) : null,
    ],
    [a, b],
  );
}

export function div(a: Operand, b: Operand): Tensor {
  if (typeof b === 'number') return scale(asTensor('div', a), 1 / b);
  if (typeof a === 'number') return mul(reciprocal(b), a);
  return record(
    'div',
    runBinary('div', a, b),
    [a, b],
    (g, [x, y], needs) => [
      needs[0] ? reduceGrad(runBinary('div', g, y!), a.shape) : null,
      // d(x/y)/dy = -x / y²
      needs[1] ? reduceGrad(neg(runBinary('div', runBinary('mul', g, x!), runBinary('mul', y!, y!))), b.shape) : null,
    ],
    [a, b],
  );
}

export function reciprocal(a: Tensor): Tensor {
  const out = runUnary('reciprocal', a);
  // d(1/x) = -g / x² = -g * y²
  return record('reciprocal', out, [a], (g, [y]) => [neg(runBinary('mul', g, runBinary('mul', y!, y!)))], [out]);
}

/** Elementwise maximum; the gradient goes to the larger operand (to a on ties). */
export function maximum(a: Tensor, b: Tensor): Tensor {
  const out = runBinary('maximum', a, b);
  return record(
    'maximum',
    out,
    [a, b],
    (g, [x, y], needs) => {
      const aWins = runBinary('eq', runBinary('maximum', x!, y!), expandTo(x!, out.shape));
      return [
        needs[0] ? reduceGrad(runBinary('mul', g, aWins), a.shape) : null,
        needs[1] ? reduceGrad(runBinary('mul', g, affine(aWins, -1, 1)), b.shape) : null,
      ];
    },
    [a, b],
  );
}

/** 1 where a == b, else 0 (not differentiable). */
export function eq(a: Tensor, b: Tensor): Tensor {
  return runBinary('eq', a, b);
}

/** 1 where a > b, else 0 (not differentiable). */
export function gt(a: Tensor, b: Tensor): Tensor {
  return runBinary('gt', a, b);
}

/** y += alpha * x, in place (both contiguous, same shape). Used to accumulate gradients. */
export function axpyInPlace(y: Tensor, x: Tensor, alpha: number): void {
  if (!sameShape(x.shape, y.shape)) {
    throw new ShapeError(`axpy: shapes ${formatShape(y.shape)} and ${formatShape(x.shape)} differ`);
  }
  if (!y.isContiguous) throw new ShapeError('axpy: the accumulator must be contiguous');
  const src = x.isContiguous ? x : runUnary('affine', x, 1, 0);
  inFlatChunks([src, y], ([xv, yv]) => {
    const bx = bindView('axpy', xv!);
    const by = bindView('axpy', yv!);
    const params = new Params().u32(yv!.size, 0).f32(alpha, 0).vecU32([], MAX_RANK).vecU32([], MAX_RANK).vecU32([], MAX_RANK).u32(bx.offset, by.offset);
    runtime().executor.dispatch(axpyKernel, {
      constants: { WG },
      buffers: [bx.range, by.range],
      params,
      workgroups: Math.ceil(yv!.size / WG),
    });
  });
  if (src !== x) src.dispose();
}

// ---- helpers ---------------------------------------------------------------------------------

/**
 * Whether `t` is contiguous and broadcast to `shape` only along leading dimensions: then output
 * element i reads element i mod t.size.
 */
function isPeriodic(t: Tensor, shape: readonly number[]): boolean {
  if (!t.isContiguous) return false;
  const lead = shape.length - t.ndim;
  // Drop t's leading 1s: what remains must equal the tail of the output shape.
  let k = 0;
  while (k < t.ndim && t.shape[k] === 1) k++;
  for (let i = k; i < t.ndim; i++) if (t.shape[i] !== shape[lead + i]) return false;
  return true;
}

/** Sum a broadcast gradient back to `shape`, freeing the intermediate. */
function reduceGrad(g: Tensor, shape: readonly number[]): Tensor {
  const r = sumToShape(g, shape);
  if (r !== g) g.dispose();
  return r;
}

function expandTo(x: Tensor, shape: readonly number[]): Tensor {
  return x.view(shape, broadcastStrides(x, shape), x.offset);
}

function asTensor(op: string, a: Operand): Tensor {
  if (typeof a === 'number') throw new ShapeError(`${op}: at least one operand must be a tensor`);
  return a;
}
