// One number over all gradients, computed on the GPU and left there (shaders/grad_stats.wgsl):
// a pass per gradient writes partials, one workgroup adds them up. clipGradNorm takes the norm
// (sum of squares); the Trainer counts the inf/NaN elements, and with loss scaling unscales the
// gradients in the same pass. The result stays in GPU memory: rescaling reads it there, and the
// Trainer reads the count back together with the loss.

import gradStatsWGSL from '../../shaders/grad_stats.wgsl?raw';
import { WG } from '../kernels/layout';
import { launch } from '../kernels/launch';
import { rowKernel } from '../kernels/rows';
import { reduceProfile } from '../ops/reduce';
import { DTypeError, ShapeError } from '../runtime/errors';
import { empty, formatShape, type Tensor } from '../tensor';

/**
 * Lanes per workgroup and elements per lane of the per-tensor passes (the WG and ITEMS overrides):
 * on software adapters few lanes folding long runs, as the row reductions do (reduceProfile:
 * SwiftShader pays dearly for each workgroup's combine), else 256 lanes of 8 elements.
 */
function perTensorTile(): { lanes: number; items: number } {
  const { maxWorkgroup, perLane } = reduceProfile();
  return { lanes: Math.min(WG, maxWorkgroup), items: Math.max(8, perLane) };
}

export type GradStat = 'sumSquares' | 'unscaleCheck';

const ENTRY: Record<GradStat, [string, 'read' | 'write']> = {
  sumSquares: ['sum_squares', 'read'],
  unscaleCheck: ['unscale_check', 'write'],
};

/** The gradients of `params` that exist, checked to be float32 and contiguous (they may be changed in place). */
export function collectGrads(op: string, params: Iterable<Tensor>): Tensor[] {
  const grads: Tensor[] = [];
  for (const p of params) {
    const g = p.grad;
    if (!g) continue;
    if (g.dtype !== 'float32') throw new DTypeError(`${op}: a gradient ${formatShape(g.shape)} is ${g.dtype}, expected float32`);
    if (!g.isContiguous) {
      throw new ShapeError(`${op}: the gradient ${formatShape(g.shape)} is a non-contiguous view; it is changed in place`);
    }
    grads.push(g);
  }
  return grads;
}

/**
 * Write into `out` (a one-element view) Σ g² over all `grads` (its square root with `root`) for
 * 'sumSquares', or, for 'unscaleCheck', the number of inf/NaN elements, multiplying every
 * gradient in place by `factor` (factor 1: only counting). Returns false (writing nothing) when
 * there is no element.
 */
export function gradStat(stat: GradStat, grads: readonly Tensor[], out: Tensor, { factor = 1, root = false } = {}): boolean {
  const { lanes, items } = perTensorTile();
  const groups = grads.map((g) => Math.ceil(g.size / (lanes * items)));
  const totalGroups = groups.reduce((a, b) => a + b, 0);
  if (totalGroups === 0) return false;
  const [entry, access] = ENTRY[stat];
  const perTensor = rowKernel(`gradStats.${entry}`, gradStatsWGSL, entry, { g: access, partials: 'write' }, entry);
  const partials = empty([totalGroups], 'float32', 'gradient statistics');
  let slot = 0;
  grads.forEach((g, i) => {
    launch(
      perTensor,
      { bind: { g, partials }, params: { n: g.size, slot, groups: groups[i]!, factor }, constants: { WG: lanes, ITEMS: items }, workgroups: groups[i]! },
      stat,
    );
    slot += groups[i]!;
  });
  launch(
    rowKernel('gradStats.total', gradStatsWGSL, 'total', { partials: 'read', out: 'write' }, 'grad_total'),
    { bind: { partials, out }, params: { n: totalGroups }, constants: { WG, ROOT: root }, workgroups: 1 },
    stat,
  );
  partials.dispose();
  return true;
}

/** Rescale every gradient in place by min(1, maxNorm / (norm + 1e-6)), reading `norm` on the GPU. */
export function clipScale(grads: readonly Tensor[], norm: Tensor, maxNorm: number): void {
  const kernel = rowKernel('gradStats.clip_scale', gradStatsWGSL, 'clip_scale', { norm: 'read', g: 'write' }, 'clip_scale');
  for (const g of grads) {
    launch(kernel, { bind: { norm, g }, params: { n: g.size, factor: maxNorm }, constants: { WG }, workgroups: Math.ceil(g.size / WG) }, 'clipGradNorm');
  }
}
