// wg.memory(): what webgrad holds on the GPU right now.

import type { MemoryStats } from './runtime/buffer-pool';
import { runtime, type DryRunResult } from './runtime/device';
import { globalGenerator } from './random';

export type { MemoryStats };

export function memory(): MemoryStats {
  const rt = runtime();
  return {
    liveTensors: rt.liveTensors,
    liveBytes: rt.pool.liveBytes,
    pooledBytes: rt.pool.pooledBytes,
    peakBytes: rt.pool.peakBytes,
  };
}

/** Start measuring peakBytes afresh from the current live bytes. */
export function resetPeakMemory(): void {
  runtime().pool.resetPeak();
}

/** Wait until the GPU has finished all submitted work (and surface any GPU error). */
export async function sync(): Promise<void> {
  await runtime().executor.sync();
}

/**
 * Run `fn` without touching the GPU: ops check shapes and count their allocations but allocate
 * and dispatch nothing (the memory planner's and the autotuner's dry runs). Returns the peak
 * bytes allocated (above what was live before), the largest tensor, and the kernels that would
 * have run with the bytes they bind. The global generator is
 * rewound after it, so that a dry run does not take the random numbers (dropout masks) of the
 * real run that follows.
 */
export function dryRun(fn: () => void): DryRunResult {
  const rng = globalGenerator.getState();
  try {
    return runtime().dryRun(fn);
  } finally {
    globalGenerator.setState(rng);
  }
}
