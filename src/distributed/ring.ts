// Ring all-reduce of one bucket of the flat vector among W replicas: reduce-scatter, then
// all-gather. The bucket is cut into W chunks. In reduce-scatter step t (0 … W−2), rank r sends
// chunk (r − t) mod W to the next rank and adds the chunk (r − t − 1) mod W it receives from the
// previous rank into its own. Chunk c is therefore summed in one fixed order, starting at rank c:
//   ((g_c + g_{c+1}) + g_{c+2}) + …
// whatever order messages arrive in, and ends complete at rank c − 1 (mod W). All-gather then
// passes the complete chunks around the ring, each rank forwarding the bytes it received: every
// replica ends with the very same bits.
//
// Each bucket is a ring of its own, so buckets run concurrently and a bucket starts as soon as its
// contribution is in place (during backward, for gradients).
//
// In the f16 wire format every value this rank rounds for the wire (a partial sum it passes on, or
// a complete chunk it owns) leaves its rounding error in `residual` (at that element: each element
// is rounded by each rank exactly once), to be added to its next contribution; the owner of a
// complete chunk keeps the rounded values itself, so that all replicas still hold the same bits.

import type { BucketPlan } from './layout';
import type { SumVector } from './sums';
import { decodeWire, encodeWire } from './wire';

export type Phase = 'reduce' | 'gather';

/** Messages to the next rank and from the previous one (payloads in the session's wire format). */
export interface RingLink {
  send(phase: Phase, bucket: number, offset: number, count: number, payload: Uint8Array): void;
  receive(phase: Phase, bucket: number, offset: number, count: number): Promise<Uint8Array>;
}

export async function ringAllReduceBucket(
  sums: SumVector,
  plan: BucketPlan,
  k: number,
  rank: number,
  W: number,
  link: RingLink,
  /** Where this rank's rounding errors go (f16), the whole vector; null for f32. */
  residual: Float32Array | null,
): Promise<void> {
  const mod = (i: number) => ((i % W) + W) % W;
  const start = plan.buckets[k]!.start;
  const wire = plan.wire;
  /** Send the values of chunk c (read from the sums), rounded for the wire; with `own`, keep the rounded values. */
  const sendChunk = async (phase: Phase, c: number, own: boolean) => {
    const [lo, hi] = plan.chunk(k, c, W);
    const values = await sums.read(start + lo, start + hi);
    for (const [o, n] of plan.parts(k, c, W)) {
      const v = values.subarray(o - lo, o - lo + n);
      const payload = encodeWire(wire, v, residual?.subarray(start + o, start + o + n));
      if (own && residual) sums.set(start + o, decodeWire(wire, payload, n));
      link.send(phase, k, o, n, payload);
    }
  };
  for (let t = 0; t < W - 1; t++) {
    await sendChunk('reduce', mod(rank - t), false);
    // The chunk's parts, then one addition of the whole chunk (one upload and kernel on the GPU).
    const c = mod(rank - t - 1);
    const [lo, hi] = plan.chunk(k, c, W);
    const received = new Float32Array(hi - lo);
    for (const [o, n] of plan.parts(k, c, W)) received.set(decodeWire(wire, await link.receive('reduce', k, o, n), n), o - lo);
    sums.add(start + lo, received);
  }
  // Chunk rank + 1 is complete here: this rank owns it. Then each step forwards what the last brought.
  await sendChunk('gather', mod(rank + 1), true);
  for (let t = 0; t < W - 1; t++) {
    const parts = plan.parts(k, mod(rank - t), W);
    const received: Uint8Array[] = [];
    for (const [o, n] of parts) {
      const payload = await link.receive('gather', k, o, n);
      sums.set(start + o, decodeWire(wire, payload, n));
      received.push(payload);
    }
    if (t < W - 2) parts.forEach(([o, n], i) => link.send('gather', k, o, n, received[i]!));
  }
}
