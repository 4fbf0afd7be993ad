// Autocast, as in PyTorch's AMP: inside autocastF16(fn), on a device with `shader-f16`, matmul
// and conv2d convert their float32 operands to float16 (half.ts) and run their f16 kernels, which
// accumulate in f32 and write f32 results; their backward passes run in f16 as well (the choice
// is made at forward time and kept with the graph). Every other op, the parameters, gradients and
// optimizer state stay float32. The Trainer opens the scope for 'f16-mixed' (mixed-precision.ts).

import { runtime } from '../runtime/device';

let depth = 0;

/** Run `fn` (synchronous) with autocast on. */
export function autocastF16<T>(fn: () => T): T {
  depth++;
  try {
    return fn();
  } finally {
    depth--;
  }
}

/** Whether an op called now should run in f16: inside autocastF16 on a device with shader-f16. */
export function autocastActive(): boolean {
  return depth > 0 && runtime().hasFeature('shader-f16');
}

/** Whether code running now is inside an autocastF16 scope (whatever the device offers). */
export function autocastRequested(): boolean {
  return depth > 0;
}

/** Run `fn` inside an autocast scope or outside any, as `on` says: a checkpointed segment re-runs as it first ran. */
export function withAutocast<T>(on: boolean, fn: () => T): T {
  const outer = depth;
  depth = on ? 1 : 0;
  try {
    return fn();
  } finally {
    depth = outer;
  }
}
