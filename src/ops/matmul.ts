// PLACEHOLDER: replaced by the matmul work.
import type { Tensor } from '../tensor';
export function matmul(_a: Tensor, _b: Tensor): Tensor { throw new Error('matmul: not implemented yet'); }
