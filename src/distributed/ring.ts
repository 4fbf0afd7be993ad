// Ring all-reduce of a flat float32 vector among W replicas: reduce-scatter, then all-gather.
// Every bucket is cut into W chunks. In reduce-scatter step t (0 … W−2), rank r sends chunk
// (r − t) mod W to the next rank and adds the chunk (r − t − 1) mod W it receives from the
// previous rank into its own. Chunk c is therefore summed in one fixed order, starting at rank c:
//   ((g_c + g_{c+1}) + g_{c+2}) + …
// whatever order messages arrive in, and ends complete at rank c − 1 (mod W). All-gather then
// passes the complete chunks around the ring, and each rank copies them: every replica ends with
// the very same bits.

import type { BucketPlan } from './layout';

export type Phase = 'reduce' | 'gather';

/** Messages to the next rank and from the previous one. */
export interface RingLink {
  send(phase: Phase, bucket: number, offset: number, values: Float32Array): void;
  receive(phase: Phase, bucket: number, offset: number, count: number): Promise<Float32Array>;
}

export async function ringAllReduce(flat: Float32Array, plan: BucketPlan, rank: number, W: number, link: RingLink): Promise<void> {
  const mod = (i: number) => ((i % W) + W) % W;
  const sendChunk = (phase: Phase, c: number) => {
    plan.buckets.forEach((b, k) => {
      for (const [o, n] of plan.parts(k, c, W)) link.send(phase, k, o, flat.subarray(b.start + o, b.start + o + n));
    });
  };
  const receiveChunk = async (phase: Phase, c: number) => {
    for (let k = 0; k < plan.buckets.length; k++) {
      const start = plan.buckets[k]!.start;
      for (const [o, n] of plan.parts(k, c, W)) {
        const values = await link.receive(phase, k, o, n);
        if (phase === 'gather') flat.set(values, start + o);
        else for (let i = 0; i < n; i++) flat[start + o + i]! += values[i]!;
      }
    }
  };
  for (let t = 0; t < W - 1; t++) {
    sendChunk('reduce', mod(rank - t));
    await receiveChunk('reduce', mod(rank - t - 1));
  }
  for (let t = 0; t < W - 1; t++) {
    sendChunk('gather', mod(rank + 1 - t));
    await receiveChunk('gather', mod(rank - t));
  }
}
