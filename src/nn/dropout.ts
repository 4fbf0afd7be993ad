import { dropout } from '../ops/elementwise';
import { globalGenerator } from '../random';
import { ShapeError } from '../runtime/errors';
import type { Tensor } from '../tensor';
import { Module } from './module';

/** Zeroes elements with probability p in training (scaling the rest by 1/(1−p)); identity in eval. */
export class Dropout extends Module {
  constructor(readonly p = 0.5) {
    super();
    if (!(p >= 0 && p < 1)) throw new ShapeError(`Dropout: p must be in [0, 1), got ${p}`);
  }

  forward(x: Tensor): Tensor {
    if (!this.training || this.p === 0) return x;
    return dropout(x, this.p, globalGenerator.nextU32());
  }
}
