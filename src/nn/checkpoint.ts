// Activation checkpointing, as PyTorch's torch.utils.checkpoint (non-reentrant): trade compute
// for memory. checkpoint(fn, ...inputs) runs fn and keeps only its inputs and outputs: the
// activations inside fn, which its ops would keep for their backward rules, are freed at once,
// and backward() runs fn again (once) to get them back when it reaches the segment
// (src/autograd/segment.ts). A transformer block checkpointed this way keeps one [B, T, D] tensor
// instead of its dozen activations, for one more forward pass of the block.
//
// The gradients are those of the run without checkpointing, bit for bit: the re-run draws the
// same random numbers (the global generator is set back to where it was, so dropout masks and
// attention dropout repeat), runs under the same autocast, and BatchNorm does not update its
// running statistics a second time (it asks isRecomputing()).
//
// Modules: `module.checkpointed = true` makes every call of module.forward a checkpoint
// (module.ts); the Trainer sets it on a model's checkpointBlocks() when its plan says so.

import { isGradEnabled } from '../autograd/grad-mode';
import { inSegment, isRecomputing, Segment } from '../autograd/segment';
import { autocastRequested, withAutocast } from '../ops/autocast';
import { globalGenerator } from '../random';
import { WebGradError } from '../runtime/errors';
import { tidy } from '../scope';

/**
 * `fn(...inputs)`, keeping none of the activations inside fn for backward(), which re-runs fn
 * instead. Every tensor fn reads must be one of `inputs` or a parameter (a tensor fn captured
 * from outside may be gone by the time backward() runs it again). Without grad mode, or inside
 * another checkpoint (whose re-run covers this one), it is a plain call.
 */
export function checkpoint<A extends unknown[], R>(fn: (...inputs: A) => R, ...inputs: A): R {
  if (typeof fn !== 'function') {
    throw new WebGradError(`wg.nn.checkpoint: the first argument must be the function to run, got ${fn === null ? 'null' : typeof fn}`);
  }
  if (!isGradEnabled() || inSegment()) return fn(...inputs);
  const rng = globalGenerator.getState();
  const autocast = autocastRequested();
  const forward = (...xs: unknown[]) => {
    if (!isRecomputing()) return fn(...(xs as A));
    // The re-run: the same random numbers and precision as the first run, then the generator
    // goes back to where backward() found it.
    const now = globalGenerator.getState();
    globalGenerator.setState(rng);
    try {
      return withAutocast(autocast, () => fn(...(xs as A)));
    } finally {
      globalGenerator.setState(now);
    }
  };
  const segment = new Segment(`wg.nn.checkpoint(${fn.name || 'fn'})`, forward, inputs);
  // The scope frees fn's activations now; the outputs (and what they hold) stay.
  return tidy(() => segment.run()) as R;
}
