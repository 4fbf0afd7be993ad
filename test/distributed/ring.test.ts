// The all-reduce's arithmetic, without a session: W ranks in this process run the ring of every
// bucket over an in-memory link, keeping their sums on the GPU or the CPU. Checked: every rank
// ends with the same bits; the GPU's sums are the CPU's bit for bit, which are the float32 sums in
// the ring's fixed order (chunk c starts at rank c); in the f16 wire format the ranks still agree,
// and what they rounded away is in their residuals (nothing lost, only carried to the next sync).
// Also the f16 conversion itself, against every one of the 65,536 half-precision values.

import { describe, expect, it } from 'vitest';
import { BucketPlan, type ModelLayout } from '../../src/distributed/layout';
import { ringAllReduceBucket, type Phase, type RingLink } from '../../src/distributed/ring';
import { sumVector, type Reduction } from '../../src/distributed/sums';
import { decodeWire, encodeWire, floatToHalf, type WireFormat } from '../../src/distributed/wire';
import { halfToFloat } from '../../src/tensor';
import { gpu, Rng, wg } from '../helpers';

/** Parameters of awkward sizes (1, 17, 33, 65 elements …), so that buckets, chunks and parts cut through them. */
const LAYOUT: ModelLayout = [
  { name: 'a', shape: [17, 3], dtype: 'float32' },
  { name: 'b', shape: [1], dtype: 'float32' },
  { name: 'c', shape: [33], dtype: 'float32' },
  { name: 'd', shape: [5, 13], dtype: 'float32' },
];

/** In-memory ring messages: a rank's receive waits for the message its previous rank sent. */
function memoryRing(W: number): (rank: number) => RingLink {
  const boxes = new Map<string, { payload?: Uint8Array; waiter?: (p: Uint8Array) => void }>();
  const box = (to: number, phase: Phase, bucket: number, offset: number) => {
    const k = `${to}:${phase}:${bucket}:${offset}`;
    if (!boxes.has(k)) boxes.set(k, {});
    return boxes.get(k)!;
  };
  return (rank) => ({
    send(phase, bucket, offset, _count, payload) {
      const b = box((rank + 1) % W, phase, bucket, offset);
      const copy = payload.slice(); // the sender may reuse its buffer
      if (b.waiter) b.waiter(copy);
      else b.payload = copy;
    },
    receive(phase, bucket, offset) {
      const b = box(rank, phase, bucket, offset);
      if (b.payload) return Promise.resolve(b.payload);
      return new Promise((resolve) => (b.waiter = resolve));
    },
  });
}

/** Every rank's vector after the all-reduce of `contributions` (one per rank), with each rank's residual. */
async function allReduce(contributions: Float32Array[], plan: BucketPlan, kind: Reduction): Promise<{ sums: Float32Array[]; residuals: (Float32Array | null)[] }> {
  const W = contributions.length;
  const link = memoryRing(W);
  const ranks = contributions.map((c) => {
    const sums = sumVector(kind, plan);
    const tensors = plan.layout.map((p, i) => wg.tensor(c.subarray(plan.offsets[i]!, plan.offsets[i]! + p.shape.reduce((a, b) => a * b, 1)), p.shape));
    return { sums, tensors, residual: plan.wire === 'f16' ? new Float32Array(plan.total) : null };
  });
  await Promise.all(
    ranks.map(async (r, rank) => {
      // Buckets in reverse order, as backward produces them, each a ring of its own.
      await Promise.all(
        plan.buckets.map(async (_, j) => {
          const k = plan.buckets.length - 1 - j;
          await r.sums.fill(k, r.tensors, null);
          await ringAllReduceBucket(r.sums, plan, k, rank, W, link(rank), r.residual);
        }),
      );
    }),
  );
  const sums = await Promise.all(ranks.map((r) => r.sums.read(0, plan.total)));
  for (const r of ranks) {
    r.sums.dispose();
    for (const t of r.tensors) t.dispose();
  }
  return { sums, residuals: ranks.map((r) => r.residual) };
}

/** The float32 sum in the ring's order: element e of chunk c is ((g_c + g_{c+1}) + …) over ranks from c. */
function ringOrderSum(contributions: Float32Array[], plan: BucketPlan): Float32Array {
  const W = contributions.length;
  const out = new Float32Array(plan.total);
  plan.buckets.forEach((b, k) => {
    for (let c = 0; c < W; c++) {
      const [lo, hi] = plan.chunk(k, c, W);
      for (let e = b.start + lo; e < b.start + hi; e++) {
        let s = contributions[c]![e]!;
        for (let i = 1; i < W; i++) s = Math.fround(s + contributions[(c + i) % W]![e]!);
        out[e] = s;
      }
    }
  });
  return out;
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

function contributionsOf(W: number, plan: BucketPlan, rng: Rng): Float32Array[] {
  // Values of mixed magnitudes, so that the order of additions changes the rounding.
  return Array.from({ length: W }, () => Float32Array.from(rng.array(plan.total), (v, i) => v * 10 ** ((i % 7) - 3)));
}

describe('ring all-reduce', () => {
  it('sums in the fixed ring order on the GPU with the bits of the CPU, and every rank gets the same bits (f32)', async () => {
    await gpu({ autotune: false });
    const rng = new Rng();
    for (const W of [2, 3, 4]) {
      // Buckets of 40 values, parts of 3: chunks and parts that do not divide anything evenly.
      const plan = new BucketPlan(LAYOUT, 160, 12);
      const contributions = contributionsOf(W, plan, rng);
      const expected = ringOrderSum(contributions, plan);
      for (const kind of ['gpu', 'cpu'] as const) {
        const { sums } = await allReduce(contributions, plan, kind);
        sums.forEach((s, rank) => expect(sameBits(s, expected), `${kind}, W = ${W}, rank ${rank} (seed ${rng.seed})`).toBe(true));
      }
    }
  });

  it('f16 on the wire: the ranks agree bit for bit, and the residuals hold what the rounding lost', async () => {
    await gpu({ autotune: false });
    const rng = new Rng();
    for (const W of [2, 3, 4]) {
      const plan = new BucketPlan(LAYOUT, 160, 12, 'f16');
      expect(plan.partElements).toBe(6); // 12 bytes: six float16 values a message
      const contributions = contributionsOf(W, plan, rng);
      const exact = new Float64Array(plan.total);
      const magnitude = new Float64Array(plan.total);
      for (const c of contributions) c.forEach((v, i) => ((exact[i]! += v), (magnitude[i]! += Math.abs(v))));
      for (const kind of ['gpu', 'cpu'] as const) {
        const { sums, residuals } = await allReduce(contributions, plan, kind);
        sums.forEach((s, rank) => expect(sameBits(s, sums[0]!), `${kind}, W = ${W}, rank ${rank} (seed ${rng.seed})`).toBe(true));
        // Every sum is a float16 value.
        expect([...sums[0]!].every((v) => halfToFloat(floatToHalf(v)) === v)).toBe(true);
        for (let i = 0; i < plan.total; i++) {
          const carried = residuals.reduce((a, r) => a + r![i]!, 0);
          // sum + what the ranks carry to the next sync = the exact sum, to the float32 rounding of the partial sums.
          expect(Math.abs(sums[0]![i]! + carried - exact[i]!), `element ${i} (seed ${rng.seed})`).toBeLessThanOrEqual(W * 2 ** -23 * magnitude[i]!);
          // Each of the W roundings to float16 is off by half a unit in the last place (2^-11 relative, 2^-25 below the normal range).
          expect(Math.abs(sums[0]![i]! - exact[i]!)).toBeLessThanOrEqual(W * (2 ** -11 * magnitude[i]! + 2 ** -25));
        }
      }
    }
  });
});

describe('the f16 wire format', () => {
  it('rounds every float16 value to itself, and every float32 to its nearest float16 (ties to even), saturating at ±65504', () => {
    for (let h = 0; h < 0x10000; h++) {
      const v = halfToFloat(h);
      if (Number.isNaN(v)) expect(Number.isNaN(halfToFloat(floatToHalf(v)))).toBe(true);
      else expect(floatToHalf(v), `0x${h.toString(16)}`).toBe(h === 0x8000 ? 0x8000 : h);
    }
    // Halfway between neighbours: to the even one; just past halfway: up.
    for (let h = 1; h < 0x7bff; h++) {
      const lo = halfToFloat(h);
      const hi = halfToFloat(h + 1);
      const mid = (lo + hi) / 2;
      expect(floatToHalf(Math.fround(mid)), `between 0x${h.toString(16)} and the next`).toBe(h % 2 === 0 ? h : h + 1);
      const above = Math.fround(mid + (hi - lo) / 8);
      expect(floatToHalf(above)).toBe(h + 1);
    }
    expect(floatToHalf(1e6)).toBe(0x7bff);
    expect(floatToHalf(-70000)).toBe(0xfbff);
    expect(floatToHalf(Infinity)).toBe(0x7c00);
    expect(floatToHalf(1e-9)).toBe(0);
  });

  it('keeps the rounding error of each value sent, and none for f32', () => {
    const values = Float32Array.from([0.1, -3.14159, 70000, 1e-7, Infinity, NaN, 0]);
    const residual = new Float32Array(values.length);
    const payload = encodeWire('f16', values, residual);
    expect(payload.byteLength).toBe(values.length * 2);
    const back = decodeWire('f16', payload, values.length);
    for (let i = 0; i < 4; i++) expect(Math.fround(back[i]! + residual[i]!)).toBe(values[i]);
    expect(back[2]).toBe(65504);
    expect([back[4], residual[4], residual[5], residual[6]]).toEqual([Infinity, 0, 0, 0]);
    expect(Number.isNaN(back[5])).toBe(true);
    const r32 = new Float32Array(values.length).fill(7);
    const f32: WireFormat = 'f32';
    expect(decodeWire(f32, encodeWire(f32, values, r32), values.length)).toEqual(values);
    expect([...r32]).toEqual(new Array(values.length).fill(0));
  });
});
