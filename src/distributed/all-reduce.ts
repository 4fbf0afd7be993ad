// The all-reduce of one attempt: each bucket of the flat vector starts its ring (ring.ts) as soon
// as every parameter it holds has its contribution in place, so that with gradients the buckets
// of the last layers are on the wire while backward still computes the first layers' gradients.
// Ring messages go to the next rank over this replica's peer link with it, or through the hub,
// as this replica declared in its shard message; they come from the previous rank either way.

import type { Tensor } from '../tensor';
import { ProtocolError } from './errors';
import type { Begin, Route } from './messages';
import type { Replica } from './replica';
import { ringAllReduceBucket, type Phase, type RingLink } from './ring';
import { sumVector, type SumVector } from './sums';
import { WIRE_DTYPE } from './wire';

export class AllReduce {
  readonly sums: SumVector;
  /** This attempt's rounding errors (f16 wire): the next sync's carried residual once committed. */
  readonly residual: Float32Array | null;
  private readonly rank: number;
  private readonly W: number;
  /** Parameters whose contribution is not in place yet, per bucket. */
  private readonly waiting: Set<number>[];
  private readonly started: boolean[];
  private readonly rings: Promise<void>[] = [];
  private readonly contributions: (Tensor | null)[];

  constructor(
    private readonly r: Replica,
    private readonly b: Begin,
    private readonly via: Route,
    /** The residual carried from the last sync (f16), added to this replica's contribution. */
    private readonly carried: Float32Array | null,
  ) {
    const plan = r.link.plan!;
    this.sums = sumVector(r.reduction, plan);
    this.residual = plan.wire === 'f16' ? new Float32Array(plan.total) : null;
    this.W = b.participants.length;
    this.rank = b.participants.indexOf(r.id);
    this.contributions = plan.layout.map(() => null);
    this.waiting = plan.buckets.map((bucket) => {
      const set = new Set<number>();
      plan.offsets.forEach((o, i) => {
        const size = plan.layout[i]!.shape.reduce((a, x) => a * x, 1);
        if (o < bucket.start + bucket.count && o + size > bucket.start) set.add(i);
      });
      return set;
    });
    this.started = plan.buckets.map(() => false);
  }

  /** Parameter i's contribution is complete in `t` (kept as it is now): start the buckets it completes. */
  ready(i: number, t: Tensor | null): void {
    this.contributions[i] = t;
    this.waiting.forEach((w, k) => {
      if (w.delete(i) && w.size === 0) this.start(k);
    });
  }

  /** Every contribution is complete (parameters without one count as zeros): start the remaining buckets. */
  allReady(): void {
    this.waiting.forEach((w, k) => {
      w.clear();
      this.start(k);
    });
  }

  /** Resolves once every bucket holds the complete sums; rejects with the first failure. */
  async done(): Promise<void> {
    const settled = await Promise.allSettled(this.rings);
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;
  }

  dispose(): void {
    this.sums.dispose();
  }

  private start(k: number): void {
    if (this.started[k]) return;
    this.started[k] = true;
    const filled = this.sums.fill(k, this.contributions, this.carried);
    const ring = filled.then(() => (this.W > 1 ? ringAllReduceBucket(this.sums, this.r.link.plan!, k, this.rank, this.W, this.ringLink(), this.residual) : undefined));
    ring.catch(() => undefined); // done() reports it
    this.rings.push(ring);
  }

  /** The ring's messages of this attempt: parts to the next rank, from the previous one. */
  private ringLink(): RingLink {
    const { r, b, W, rank, via } = this;
    const next = b.participants[(rank + 1) % W]!;
    const prev = b.participants[(rank + W - 1) % W]!;
    const plan = r.link.plan!;
    const dtype = WIRE_DTYPE[plan.wire];
    return {
      send: (phase: Phase, bucket: number, offset: number, count: number, payload: Uint8Array) => {
        const header = { type: 'grad' as const, step: b.step, attempt: b.attempt, phase, bucket, offset, count, tensors: plan.segments(bucket, offset, count), dtype };
        if (via === 'peer') r.peers.send(next, header, payload);
        else r.link.sendTo([next], header, payload);
      },
      receive: (phase: Phase, bucket: number, offset: number, count: number) =>
        r.link.until(() => {
          const m = r.mailbox.grad(b, phase, bucket, offset);
          if (!m) {
            r.checkAttempt(b);
            return undefined;
          }
          if (m.from !== prev || m.msg.count !== count) {
            throw new ProtocolError(`member ${m.from} sent ${count === m.msg.count ? '' : 'a wrongly sized '}part [${offset}, +${count}) of bucket ${bucket}; it was due from member ${prev}`);
          }
          return m.payload;
        }),
    };
  }
}
