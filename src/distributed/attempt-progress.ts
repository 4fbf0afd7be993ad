// What the hub knows of the attempt under way: the messages each participant owes, in the order it
// sends them, checked one by one as it sends them (a peer cannot skip ahead, repeat one, or send
// one to others than those who wait for it), and, when the attempt overstays its deadline, who
// holds it up: a participant that owes a message whose inputs it has all been sent.
//
// In attempt `begin`, with participants P (rank = index, the leader first) and W = |P|:
//   the leader   "sync" parts to the replicas it sends the state to   needs nothing
//   each         "shard" to the others (when W > 1)                   needs the state, if sent it
//   each         ring step t = 0 … 2(W−1)−1: its chunk's "grad" parts  t = 0: every shard (to
//                to the next rank, bucket by bucket                   compute); t > 0: the previous
//                                                                     rank's step t − 1
//   each but the leader   "done" to the leader                        the previous rank's last step
//   the leader   "commit" to all                                      every "done", its ring
// (ring.ts sends in that order: reduce-scatter steps, then all-gather steps.)

import { ProtocolError } from './errors';
import type { BucketPlan } from './layout';
import type { AttemptMessage, Begin } from './messages';

/** Where a participant is in its ring messages: step t, bucket, part within the bucket's chunk. */
interface Cursor {
  t: number;
  bucket: number;
  part: number;
}

interface Sent {
  shard: boolean;
  ring: Cursor;
  done: boolean;
}

export class AttemptProgress {
  /** Set when a participant leaves, or the leader moves on: its messages are dropped from then on. */
  abandoned = false;
  committed = false;
  private readonly W: number;
  private readonly steps: number;
  private readonly sent = new Map<number, Sent>();
  /** State parts the leader has sent, and how many it declared (null before the first). */
  private syncSent = 0;
  private syncParts: number | null = null;

  constructor(
    readonly begin: Begin,
    private readonly plan: BucketPlan,
    readonly startedAt: number,
  ) {
    this.W = begin.participants.length;
    this.steps = 2 * (this.W - 1);
    for (const id of begin.participants) {
      const ring = { t: 0, bucket: 0, part: 0 };
      this.settle(ring, this.rank(id));
      this.sent.set(id, { shard: false, ring, done: false });
    }
  }

  get leader(): number {
    return this.begin.participants[0]!;
  }

  /** Check that `msg` is what `from` owes next, sent to whom it must go, and count it; a ProtocolError if not. */
  record(from: number, msg: AttemptMessage, to: number[], who: string): void {
    const s = this.sent.get(from);
    if (!s) throw new ProtocolError(`a "${msg.type}" of step ${msg.step} attempt ${msg.attempt}, which ${who} takes no part in`);
    const P = this.begin.participants;
    const r = this.rank(from);
    const expectTo = (ids: number[], whom: string) => {
      if (to.length !== ids.length || !ids.every((id) => to.includes(id))) {
        throw new ProtocolError(`a "${msg.type}" of attempt ${msg.attempt} goes to ${whom} (members ${ids.join(', ') || 'none'}), not to ${to.join(', ') || 'nobody'}`);
      }
    };
    const once = (done: boolean) => {
      if (done) throw new ProtocolError(`${who} sent a second "${msg.type}" in attempt ${msg.attempt}`);
    };
    switch (msg.type) {
      case 'sync': {
        expectTo(this.begin.syncTo, 'the replicas the leader sends the state to');
        if (msg.part !== this.syncSent || (this.syncParts !== null && msg.parts !== this.syncParts)) {
          throw new ProtocolError(`a "sync" message is part ${msg.part} of ${msg.parts}; part ${this.syncSent}${this.syncParts === null ? '' : ` of ${this.syncParts}`} is due`);
        }
        this.syncParts = msg.parts;
        this.syncSent++;
        return;
      }
      case 'shard':
        once(s.shard);
        expectTo(P.filter((id) => id !== from), 'the other participants');
        s.shard = true;
        return;
      case 'grad': {
        if (this.W > 1 && !s.shard) throw new ProtocolError(`${who} sent gradients in attempt ${msg.attempt} before its shard size`);
        const due = this.due(r, s.ring);
        if (!due || msg.phase !== due.phase || msg.bucket !== due.bucket || msg.offset !== due.offset || msg.count !== due.count) {
          const owed = due ? `${due.phase} bucket ${due.bucket} [${due.offset}, +${due.count})` : 'no more';
          throw new ProtocolError(`a "grad" message (${msg.phase} bucket ${String(msg.bucket)} [${String(msg.offset)}, +${String(msg.count)})) out of the ring's order: ${owed} is due from ${who}`);
        }
        expectTo([P[(r + 1) % this.W]!], 'the next rank');
        s.ring.part++;
        this.settle(s.ring, r);
        return;
      }
      case 'done':
        once(s.done);
        if (from === this.leader || s.ring.t < this.steps) throw new ProtocolError(`${who} sent "done" in attempt ${msg.attempt} before its gradients`);
        expectTo([this.leader], 'the leader');
        s.done = true;
        return;
      case 'commit':
        once(this.committed);
        if (s.ring.t < this.steps || P.some((id) => id !== this.leader && !this.sent.get(id)!.done)) {
          throw new ProtocolError(`the leader committed attempt ${msg.attempt} before every participant held the sums`);
        }
        expectTo(P, 'every participant');
        this.committed = true;
        return;
    }
  }

  /** The participants that hold the attempt up, each with what it owes: its inputs were sent, its output was not. */
  holdingUp(): { id: number; owes: string }[] {
    const P = this.begin.participants;
    const stateSent = this.begin.syncTo.length === 0 || (this.syncParts !== null && this.syncSent >= this.syncParts);
    const out: { id: number; owes: string }[] = [];
    if (!stateSent) out.push({ id: this.leader, owes: 'the state, to the replicas that joined' });
    for (const id of P) {
      const s = this.sent.get(id)!;
      const prev = this.sent.get(P[(this.rank(id) + this.W - 1) % this.W]!)!;
      // The leader sends the state first; those it is sent to need all of it.
      const hasState = stateSent || (id !== this.leader && !this.begin.syncTo.includes(id));
      const t = s.ring.t;
      if (this.W > 1 && !s.shard) {
        if (hasState) out.push({ id, owes: 'its shard size' });
      } else if (t < this.steps) {
        if (t === 0 ? P.every((p) => this.sent.get(p)!.shard) : prev.ring.t >= t) out.push({ id, owes: `its gradients (ring step ${t + 1} of ${this.steps})` });
      } else if (prev.ring.t >= this.steps) {
        if (id !== this.leader && !s.done) out.push({ id, owes: 'its "done"' });
        if (id === this.leader && !this.committed && hasState && P.every((p) => p === id || this.sent.get(p)!.done)) out.push({ id, owes: 'the commit' });
      }
    }
    return out;
  }

  private rank(id: number): number {
    return this.begin.participants.indexOf(id);
  }

  /** The chunk rank r sends at ring step t. */
  private chunk(r: number, t: number): number {
    const W = this.W;
    const c = t < W - 1 ? r - t : r + 1 - (t - (W - 1));
    return ((c % W) + W) % W;
  }

  /** The ring message at `at`, or null once rank r has sent them all. */
  private due(r: number, at: Cursor): { phase: 'reduce' | 'gather'; bucket: number; offset: number; count: number } | null {
    if (at.t >= this.steps) return null;
    const [offset, count] = this.plan.parts(at.bucket, this.chunk(r, at.t), this.W)[at.part]!;
    return { phase: at.t < this.W - 1 ? 'reduce' : 'gather', bucket: at.bucket, offset, count };
  }

  /** Move the cursor past buckets (and steps) that have no more parts for rank r. */
  private settle(at: Cursor, r: number): void {
    while (at.t < this.steps) {
      if (at.bucket >= this.plan.buckets.length) {
        at.t++;
        at.bucket = 0;
        at.part = 0;
      } else if (at.part >= this.plan.parts(at.bucket, this.chunk(r, at.t), this.W).length) {
        at.bucket++;
        at.part = 0;
      } else {
        return;
      }
    }
  }
}
