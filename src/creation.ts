// Creating tensors: from data, filled with a value, or random (seeded).

import { runtime } from './runtime/device';
import { DTypeError, ShapeError } from './runtime/errors';
import { copyView, fillView } from './kernels/copy';
import { Generator, globalGenerator } from './random';
import { empty, formatShape, sizeOf, type DType, type Tensor } from './tensor';
import { checkShape } from './checks';

export type TensorData = number[] | NestedArray | Float32Array | Int32Array | Uint8Array | number;
interface NestedArray extends Array<number | NestedArray> {}

export interface TensorOptions {
  requiresGrad?: boolean;
  dtype?: DType;
}

/** A tensor from data: numbers, nested arrays, Float32Array or Int32Array (shape inferred if omitted). */
export function tensor(data: TensorData, shape?: readonly number[], opts: TensorOptions = {}): Tensor {
  const inferred = inferShape(data);
  const target = shape ? checkShape('tensor', shape) : inferred;
  const n = sizeOf(inferred);
  if (sizeOf(target) !== n) {
    throw new ShapeError(`tensor: ${n} values do not fill shape ${formatShape(target)} (${sizeOf(target)} elements)`);
  }
  const dtype: DType = opts.dtype ?? (data instanceof Int32Array ? 'int32' : 'float32');
  if (dtype !== 'float32' && dtype !== 'int32') throw new DTypeError(`tensor: unsupported dtype ${String(dtype)}`);
  if (opts.requiresGrad && dtype !== 'float32') throw new DTypeError('tensor: only float32 tensors can require grad');
  // Allocate first: a tensor over the device's limits fails before any copying.
  const t = empty(target, dtype, 'tensor');
  try {
    if (n > 0) runtime().executor.upload(t.buffer(), 0, flatten(data, dtype, n));
  } catch (e) {
    t.dispose();
    throw e;
  }
  t.requiresGrad = opts.requiresGrad ?? false;
  return t;
}

export function zeros(shape: readonly number[], opts: TensorOptions = {}): Tensor {
  return full(shape, 0, opts);
}

export function ones(shape: readonly number[], opts: TensorOptions = {}): Tensor {
  return full(shape, 1, opts);
}

export function full(shape: readonly number[], value: number, opts: TensorOptions = {}): Tensor {
  const t = empty(checkShape('full', shape), opts.dtype ?? 'float32', 'full');
  fillView(t, value);
  t.requiresGrad = opts.requiresGrad ?? false;
  return t;
}

/**
 * A contiguous copy of any view, in fresh memory (not recorded by autograd: ops/copy.ts's
 * contiguous() is the differentiable one). A view larger than one binding is copied in blocks.
 */
export function contiguousCopy(t: Tensor, op = 'contiguous'): Tensor {
  const out = empty(t.shape, t.dtype, op);
  copyView(t, out, op);
  return out;
}

/**
 * Values from `start` (inclusive) to `end` (exclusive) in steps of `step`, like torch.arange:
 * arange(n) is 0 … n−1. int32 when start, end and step are all integers (positions for an
 * embedding), float32 otherwise, unless opts.dtype says. Each value is start + i·step, computed
 * in float64 and rounded once.
 */
export function arange(start: number, end?: number, step = 1, opts: TensorOptions = {}): Tensor {
  if (end === undefined) [start, end] = [0, start];
  const args = `arange(${start}, ${end}, ${step})`;
  if (![start, end, step].every(Number.isFinite)) throw new ShapeError(`${args}: start, end and step must be finite numbers`);
  if (step === 0) throw new ShapeError(`${args}: step must not be zero`);
  if ((end - start) * step < 0) throw new ShapeError(`${args}: end is on the wrong side of start for this step`);
  const n = Math.max(0, Math.ceil((end - start) / step));
  const dtype = opts.dtype ?? ([start, end, step].every(Number.isInteger) ? 'int32' : 'float32');
  if (dtype === 'int32' && ![start, step].every(Number.isInteger)) throw new DTypeError(`${args}: int32 values need an integer start and step`);
  if (n > 2 ** 28) throw new ShapeError(`${args}: ${n} values are too many`);
  const values = dtype === 'int32' ? new Int32Array(n) : new Float32Array(n);
  for (let i = 0; i < n; i++) values[i] = start + i * step;
  if (dtype === 'int32' && n > 0 && values[n - 1] !== start + (n - 1) * step) throw new DTypeError(`${args}: values do not fit int32`);
  return tensor(values, [n], { dtype, requiresGrad: opts.requiresGrad });
}

export interface RandomOptions {
  /** A seed for this tensor alone; without it the global generator (wg.manualSeed) is used. */
  seed?: number;
  requiresGrad?: boolean;
}

/** Standard normal samples. */
export function randn(shape: readonly number[], opts: RandomOptions = {}): Tensor {
  return random('randn', shape, opts, (gen, out) => gen.fillNormal(out));
}

/** Uniform samples in [0, 1). */
export function rand(shape: readonly number[], opts: RandomOptions = {}): Tensor {
  return random('rand', shape, opts, (gen, out) => gen.fillUniform(out));
}

/**
 * A float32 tensor of `shape` filled on the CPU by `fill`. The GPU memory is taken first, so a
 * shape over the device's limits fails at once instead of after drawing gigabytes of numbers.
 */
function random(op: string, shape: readonly number[], opts: RandomOptions, fill: (gen: Generator, out: Float32Array) => Float32Array): Tensor {
  const t = empty(checkShape(op, shape), 'float32', op);
  try {
    const gen = opts.seed !== undefined ? new Generator(opts.seed) : globalGenerator;
    if (t.size > 0) runtime().executor.upload(t.buffer(), 0, fill(gen, new Float32Array(t.size)));
  } catch (e) {
    t.dispose();
    throw e;
  }
  t.requiresGrad = opts.requiresGrad ?? false;
  return t;
}

function inferShape(data: TensorData): number[] {
  if (typeof data === 'number') return [];
  if (ArrayBuffer.isView(data)) return [data.length];
  const shape: number[] = [];
  let level: unknown = data;
  while (Array.isArray(level)) {
    shape.push(level.length);
    level = level[0];
  }
  return shape;
}

/** `v` if int32 holds it exactly, else a DTypeError naming it and element `i`. */
function fitInt32(v: number, i: number): number {
  if (!Number.isInteger(v) || v < -(2 ** 31) || v >= 2 ** 31) {
    throw new DTypeError(`tensor: value ${v} (element ${i}) does not fit int32 (integers from -2147483648 to 2147483647)`);
  }
  return v;
}

function flatten(data: TensorData, dtype: DType, n: number): Float32Array | Int32Array {
  const out = dtype === 'int32' ? new Int32Array(n) : new Float32Array(n);
  // Int32Array storage wraps 3e9 and turns NaN into 0: values from elsewhere are checked to fit.
  const fit = dtype === 'int32' && !(data instanceof Int32Array) ? fitInt32 : (v: number) => v;
  if (typeof data === 'number') {
    out[0] = fit(data, 0);
    return out;
  }
  if (ArrayBuffer.isView(data)) {
    const values = data as ArrayLike<number>;
    if (dtype === 'int32' && !(data instanceof Int32Array)) for (let i = 0; i < n; i++) out[i] = fit(values[i]!, i);
    else out.set(values);
    return out;
  }
  const shape = inferShape(data);
  let i = 0;
  const walk = (v: unknown, depth: number): void => {
    if (depth === shape.length) {
      if (typeof v !== 'number') throw new ShapeError(`tensor: expected a number at depth ${depth}, got ${typeof v}`);
      out[i] = fit(v, i);
      i++;
      return;
    }
    if (!Array.isArray(v) || v.length !== shape[depth]) {
      throw new ShapeError(`tensor: ragged nested array (expected length ${shape[depth]} at depth ${depth})`);
    }
    for (const x of v) walk(x, depth + 1);
  };
  walk(data, 0);
  return out;
}
