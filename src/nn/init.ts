// Weight initialisation, drawn from the global seeded generator (wg.manualSeed), as in
// torch.nn.init. Each function returns a new tensor of `shape`.

import { tensor } from '../creation';
import { globalGenerator } from '../random';
import { sizeOf, type Tensor } from '../tensor';

/** fan_in and fan_out of a weight: [out, in] for Linear, [out, in, kH, kW] for Conv2d. */
export function fans(shape: readonly number[]): { fanIn: number; fanOut: number } {
  const receptive = shape.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: (shape[1] ?? 1) * receptive, fanOut: shape[0]! * receptive };
}

export function uniform(shape: readonly number[], low: number, high: number): Tensor {
  return tensor(globalGenerator.fillUniform(new Float32Array(sizeOf(shape)), low, high), shape);
}

export function normal(shape: readonly number[], std: number): Tensor {
  return tensor(globalGenerator.fillNormal(new Float32Array(sizeOf(shape)), 0, std), shape);
}

/** He/Kaiming uniform for ReLU nets: U(±√(6 / fan_in)) (gain √2). */
export function kaimingUniform(shape: readonly number[]): Tensor {
  const bound = Math.sqrt(6 / fans(shape).fanIn);
  return uniform(shape, -bound, bound);
}

/** He/Kaiming normal for ReLU nets: N(0, 2 / fan_in). */
export function kaimingNormal(shape: readonly number[]): Tensor {
  return normal(shape, Math.sqrt(2 / fans(shape).fanIn));
}

/** Glorot/Xavier uniform: U(±√(6 / (fan_in + fan_out))). */
export function xavierUniform(shape: readonly number[]): Tensor {
  const { fanIn, fanOut } = fans(shape);
  const bound = Math.sqrt(6 / (fanIn + fanOut));
  return uniform(shape, -bound, bound);
}

/** Glorot/Xavier normal: N(0, 2 / (fan_in + fan_out)). */
export function xavierNormal(shape: readonly number[]): Tensor {
  const { fanIn, fanOut } = fans(shape);
  return normal(shape, Math.sqrt(2 / (fanIn + fanOut)));
}

/** PyTorch's default for Linear and Conv2d weights and biases: U(±1/√fan_in). */
export function defaultUniform(shape: readonly number[], fanIn: number): Tensor {
  const bound = 1 / Math.sqrt(fanIn);
  return uniform(shape, -bound, bound);
}

export type InitName = 'default' | 'kaiming-uniform' | 'kaiming-normal' | 'xavier-uniform' | 'xavier-normal';

export function initWeight(shape: readonly number[], init: InitName): Tensor {
  switch (init) {
    case 'kaiming-uniform': return kaimingUniform(shape);
    case 'kaiming-normal': return kaimingNormal(shape);
    case 'xavier-uniform': return xavierUniform(shape);
    case 'xavier-normal': return xavierNormal(shape);
    default: return defaultUniform(shape, fans(shape).fanIn);
  }
}
