// clipGradNorm: rescale gradients so that their joint L2 norm is at most maxNorm, like
// torch.nn.utils.clip_grad_norm_. Everything stays on the GPU (grad-stats.ts): each gradient's
// sum of squares goes into partial sums, one kernel reduces them to the total norm, and the
// rescale kernels read that norm from GPU memory, so no step waits for a readback.

import { zeros } from '../creation';
import { empty, type Tensor } from '../tensor';
import { clipScale, collectGrads, gradStat } from './grad-stats';
import { checkNumber } from './optimizer';

/**
 * Scale the gradients of `params` in place by min(1, maxNorm / (norm + 1e-6)), where norm is the
 * L2 norm of all gradients together. Parameters without .grad are ignored. Returns the total norm
 * (before clipping) as a one-element tensor, as PyTorch does; read it with `await norm.item()`
 * when needed, and dispose it (or create it inside tidy()).
 */
export function clipGradNorm(params: Iterable<Tensor>, maxNorm: number): Tensor {
  checkNumber('clipGradNorm', 'maxNorm', maxNorm, 0);
  const grads = collectGrads('clipGradNorm', params);
  const norm = empty([], 'float32', 'clipGradNorm');
  // No gradients, or only empty ones: the norm is 0 and nothing needs scaling.
  if (!gradStat('sumSquares', grads, norm, { root: true })) {
    norm.dispose();
    return zeros([]);
  }
  clipScale(grads, norm, maxNorm);
  return norm;
}
