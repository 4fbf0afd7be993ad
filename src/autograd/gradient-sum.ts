// How backward() adds gradients that meet: the tape knows nothing about kernels, so the ops layer
// that owns addition provides it (ops/elementwise.ts registers it when it loads, which importing
// the public API always does).

import type { Tensor } from '../tensor';

export interface GradientSum {
  /** a + b, same shape, in a new tensor. */
  add(a: Tensor, b: Tensor): Tensor;
  /** acc += g in place (acc contiguous, same shape). */
  addInto(acc: Tensor, g: Tensor): void;
}

let sum: GradientSum | null = null;

export function provideGradientSum(s: GradientSum): void {
  sum = s;
}

export function gradientSum(): GradientSum {
  if (!sum) throw new Error('backward(): no gradient addition was registered (import the ops before differentiating)');
  return sum;
}
