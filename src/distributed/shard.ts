// Cutting a global batch among replicas: rank r of W gets a contiguous slice, and the first
// (B mod W) ranks get one sample more, so any batch size works with any number of replicas.

import { WebGradError } from '../runtime/errors';

/** This rank's slice of a global batch of `globalBatch` samples: samples [start, start + count). */
export function shardRange(globalBatch: number, rank: number, worldSize: number): { start: number; count: number } {
  if (!Number.isInteger(worldSize) || worldSize < 1 || !Number.isInteger(rank) || rank < 0 || rank >= worldSize) {
    throw new WebGradError(`shardRange: rank ${rank} of ${worldSize} replicas is not a rank`);
  }
  const base = Math.floor(globalBatch / worldSize);
  const extra = globalBatch % worldSize;
  return { start: rank * base + Math.min(rank, extra), count: base + (rank < extra ? 1 : 0) };
}
