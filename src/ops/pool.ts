// PLACEHOLDER: replaced by the pooling work.
import type { Tensor } from '../tensor';
export interface Pool2dOptions { stride?: number | [number, number]; padding?: number | [number, number] }
export function maxPool2d(_x: Tensor, _k: number | [number, number], _opts: Pool2dOptions = {}): Tensor { throw new Error('maxPool2d: not implemented yet'); }
export function avgPool2d(_x: Tensor, _k: number | [number, number], _opts: Pool2dOptions = {}): Tensor { throw new Error('avgPool2d: not implemented yet'); }
