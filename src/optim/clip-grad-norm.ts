// clipGradNorm: rescale gradients so that their joint L2 norm is at most maxNorm, like
// torch.nn.utils.clip_grad_norm_. Everything stays on the GPU: each gradient's sum of squares
// goes into partial sums, one kernel reduces them to the total norm, and the rescale kernels read
// that norm from GPU memory, so no step waits for a readback.

import optimWGSL from '../../shaders/optim.wgsl?raw';
import { filled } from '../ops/copy';
import { WG } from '../ops/util';
import { runtime } from '../runtime/device';
import { DTypeError, ShapeError } from '../runtime/errors';
import { defineKernel } from '../runtime/kernel';
import { Params } from '../runtime/params';
import { empty, formatShape, type Tensor } from '../tensor';
import { checkNumber } from './optimizer';

const sumSquaresKernel = defineKernel('clipGradNorm.sumSquares', optimWGSL, ['read', 'write'], 'sum_squares');
const normTotalKernel = defineKernel('clipGradNorm.norm', optimWGSL, ['read', 'write'], 'norm_total');
const clipScaleKernel = defineKernel('clipGradNorm.scale', optimWGSL, ['read', 'write'], 'clip_scale');

/** Elements each invocation of sum_squares accumulates (the ITEMS override). */
const ITEMS = 8;
const CHUNK = WG * ITEMS;

/**
 * Scale the gradients of `params` in place by min(1, maxNorm / (norm + 1e-6)), where norm is the
 * L2 norm of all gradients together. Parameters without .grad are ignored. Returns the total norm
 * (before clipping) as a one-element tensor, as PyTorch does; read it with `await norm.item()`
 * when needed, and dispose it (or create it inside tidy()).
 */
export function clipGradNorm(params: Iterable<Tensor>, maxNorm: number): Tensor {
  checkNumber('clipGradNorm', 'maxNorm', maxNorm, 0);
  const grads: Tensor[] = [];
  for (const p of params) {
    const g = p.grad;
    if (!g) continue;
    if (g.dtype !== 'float32') throw new DTypeError(`clipGradNorm: a gradient ${formatShape(g.shape)} is ${g.dtype}, expected float32`);
    if (!g.isContiguous) {
      throw new ShapeError(`clipGradNorm: the gradient ${formatShape(g.shape)} is a non-contiguous view; it is scaled in place`);
    }
    grads.push(g);
  }
  const groups = grads.map((g) => Math.ceil(g.size / CHUNK));
  const totalGroups = groups.reduce((a, b) => a + b, 0);
  // No gradients, or only empty ones: the norm is 0 and nothing needs scaling.
  if (totalGroups === 0) return filled([], 0);
  const executor = runtime().executor;
  const partials = empty([totalGroups], 'float32', 'clipGradNorm');
  let slot = 0;
  grads.forEach((g, i) => {
    executor.dispatch(sumSquaresKernel, {
      constants: { WG, ITEMS },
      buffers: [g.buffer('clipGradNorm'), partials.buffer()],
      params: new Params().u32(g.size, g.offset, slot, groups[i]!),
      workgroups: groups[i]!,
    });
    slot += groups[i]!;
  });
  const norm = empty([], 'float32', 'clipGradNorm');
  executor.dispatch(normTotalKernel, {
    constants: { WG },
    buffers: [partials.buffer(), norm.buffer()],
    params: new Params().u32(totalGroups),
    workgroups: 1,
  });
  partials.dispose();
  for (const g of grads) {
    executor.dispatch(clipScaleKernel, {
      constants: { WG },
      buffers: [norm.buffer(), g.buffer('clipGradNorm')],
      params: new Params().u32(g.size, g.offset, 0, 0).f32(maxNorm),
      workgroups: Math.ceil(g.size / WG),
    });
  }
  return norm;
}
