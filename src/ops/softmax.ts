// PLACEHOLDER: replaced by the reductions work.
import type { Tensor } from '../tensor';
export function softmax(_a: Tensor, _axis = -1): Tensor { throw new Error('softmax: not implemented yet'); }
export function logSoftmax(_a: Tensor, _axis = -1): Tensor { throw new Error('logSoftmax: not implemented yet'); }
