// Elementwise ops: unary (neg, exp, log, …) and binary with NumPy broadcasting (add, sub, mul,
// div, …), each with its backward rule beside it. The kernels are launched by pointwise.ts; this
// file is what autograd sees.

import { provideGradientSum } from '../autograd/gradient-sum';
import { record } from '../autograd/record';
import { broadcastStrides } from '../kernels/layout';
import { ShapeError, WebGradError } from '../runtime/errors';
import { tidy } from '../scope';
import type { Tensor } from '../tensor';
import { axpyInPlace, runBinary, runUnary } from './pointwise';
import { sumGradTo, sumToShape } from './reduce';

/** A tensor, or a number that becomes a scalar operand where the op allows. */
export type TensorOrNumber = Tensor | number;

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

export interface GeluOptions {
  /** 'none' (default): the exact erf form; 'tanh': the tanh approximation (GPT-2's gelu_new), as PyTorch's. */
  approximate?: 'none' | 'tanh';
}

/** GELU: the exact erf form (PyTorch's default), or with { approximate: 'tanh' } the tanh approximation. */
export function gelu(a: Tensor, { approximate = 'none' }: GeluOptions = {}): Tensor {
  if (approximate === 'tanh') {
    return record('geluTanh', runUnary('geluTanh', a), [a], (g, [x]) => [runBinary('geluTanhGrad', g, x!)], [a]);
  }
  if (approximate !== 'none') throw new WebGradError(`gelu: approximate must be 'none' or 'tanh', got ${JSON.stringify(approximate)}`);
  return record('gelu', runUnary('gelu', a), [a], (g, [x]) => [runBinary('geluGrad', g, x!)], [a]);
}

/** SiLU (swish): x·sigmoid(x), computed as x / (1 + exp(−x)) like PyTorch (so silu(−∞) is NaN). */
export function silu(a: Tensor): Tensor {
  return record('silu', runUnary('silu', a), [a], (g, [x]) => [runBinary('siluGrad', g, x!)], [a]);
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
  // The mask hashes the element's flat index: a strided view is made contiguous first.
  const out = tidy(() => runUnary('dropout', a.isContiguous ? a : runUnary('affine', a, 1, 0), p, 1 / (1 - p), seed));
  return record('dropout', out, [a], (g) => [dropout(g, p, seed)]);
}

/** 1 where a is NaN, else 0. */
export function isnan(a: Tensor): Tensor {
  return runUnary('isnan', a);
}

// ---- binary ops ------------------------------------------------------------------------------

export function add(a: TensorOrNumber, b: TensorOrNumber): Tensor {
  if (typeof b === 'number') return affine(asTensor('add', a), 1, b);
  if (typeof a === 'number') return affine(b, 1, a);
  return record('add', runBinary('add', a, b), [a, b], (g) => [sumToShape(g, a.shape), sumToShape(g, b.shape)]);
}

export function sub(a: TensorOrNumber, b: TensorOrNumber): Tensor {
  if (typeof b === 'number') return affine(asTensor('sub', a), 1, -b);
  if (typeof a === 'number') return affine(b, -1, a);
  return record('sub', runBinary('sub', a, b), [a, b], (g, _, needs) => [
    needs[0] ? sumToShape(g, a.shape) : null,
    needs[1] ? sumToShape(neg(g), b.shape) : null,
  ]);
}

export function mul(a: TensorOrNumber, b: TensorOrNumber): Tensor {
  if (typeof b === 'number') return scale(asTensor('mul', a), b);
  if (typeof a === 'number') return scale(b, a);
  return record(
    'mul',
    runBinary('mul', a, b),
    [a, b],
    (g, [x, y], needs) => [
      needs[0] ? sumGradTo(runBinary('mul', g, y!), a.shape) : null,
      needs[1] ? sumGradTo(runBinary('mul', g, x!), b.shape) : null,
    ],
    [a, b],
  );
}

export function div(a: TensorOrNumber, b: TensorOrNumber): Tensor {
  if (typeof b === 'number') return scale(asTensor('div', a), 1 / b);
  if (typeof a === 'number') return mul(reciprocal(b), a);
  return record(
    'div',
    runBinary('div', a, b),
    [a, b],
    (g, [x, y], needs) => [
      needs[0] ? sumGradTo(runBinary('div', g, y!), a.shape) : null,
      // d(x/y)/dy = -x / y²
      needs[1] ? sumGradTo(neg(runBinary('div', runBinary('mul', g, x!), runBinary('mul', y!, y!))), b.shape) : null,
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
        needs[0] ? sumGradTo(runBinary('mul', g, aWins), a.shape) : null,
        needs[1] ? sumGradTo(runBinary('mul', g, affine(aWins, -1, 1)), b.shape) : null,
      ];
    },
    [a, b],
  );
}


// backward() sums the gradients that meet with these (the tape imports no ops).
provideGradientSum({ add: (a, b) => runBinary('add', a, b), addInto: (acc, g) => axpyInPlace(acc, g, 1) });

// ---- helpers ---------------------------------------------------------------------------------

function expandTo(x: Tensor, shape: readonly number[]): Tensor {
  return x.view(shape, broadcastStrides(x, shape), x.offset);
}

function asTensor(op: string, a: TensorOrNumber): Tensor {
  if (typeof a === 'number') throw new ShapeError(`${op}: at least one operand must be a tensor`);
  return a;
}
