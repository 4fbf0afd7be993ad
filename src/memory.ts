// wg.memory(): what webgrad holds on the GPU right now.

import type { MemoryStats } from './runtime/buffer-pool';
import { runtime } from './runtime/device';

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
