// PLACEHOLDER: replaced by the reductions work (sum/mean/max over axes).
import type { Tensor } from '../tensor';
import { sameShape } from './util';

export interface ReduceOptions { keepdim?: boolean }
export type Axis = number | readonly number[];

export function sum(_a: Tensor, _axis?: Axis, _keepdim?: boolean): Tensor { throw new Error('sum: not implemented yet'); }
export function mean(_a: Tensor, _axis?: Axis, _keepdim?: boolean): Tensor { throw new Error('mean: not implemented yet'); }
export function max(_a: Tensor, _axis?: Axis, _keepdim?: boolean): Tensor { throw new Error('max: not implemented yet'); }

/** Sum a broadcast gradient back to `shape`. */
export function sumToShape(g: Tensor, shape: readonly number[]): Tensor {
  if (sameShape(g.shape, shape)) return g;
  throw new Error('sumToShape: reductions not implemented yet');
}
