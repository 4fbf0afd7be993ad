// What the hub knows of the attempt under way: the messages each participant owes, in the order it
// sends them, checked one by one as it sends them (a peer cannot skip ahead, repeat one, or send
// one to others than those who wait for it), and, when the attempt overstays its deadline, who
// holds it up: a participant that owes a message whose inputs it has all been sent.
//
// In attempt `begin`, with participants P (rank = index, the leader first) and W = |P|:
//   the leader   "sync" parts to the replicas it sends the state to   needs nothing
//   each         "shard" to the others (when W > 1), naming the       needs the state, if sent it
//                route of its ring messages (peer link or relay)
//   each, per bucket, ring step t = 0 … 2(W−1)−1: its chunk's "grad"  t = 0: every shard (to
//                parts to the next rank                               compute); t > 0: the previous
//                                                                     rank's step t − 1 of the bucket
//   each but the leader   "done" to the leader                        the previous rank's last steps
//   the leader   "commit" to all                                      every "done", its ring
// Each bucket is its own ring (ring.ts), so a participant may interleave the buckets as they become
// ready (backward produces the last layers' gradients first); within a bucket the order is fixed.
//
// A participant whose ring messages go over its peer link sends the hub none of them: the hub
// cannot tell how far that ring got. When such an attempt overstays its deadline with nobody
// visibly at fault, `stalledLinks` names the peer links whose receiver never finished: the hub
// relays those pairs from then on and the attempt is run again, where the hub sees everything.

import { ProtocolError } from './errors';
import type { BucketPlan } from './layout';
import type { AttemptMessage, Begin, Route } from './messages';

/** Where a participant is in one bucket's ring messages: step t, part within the chunk. */
interface Cursor {
  t: number;
  part: number;
}

interface Sent {
  shard: boolean;
  /** Its ring messages' route, from its shard (null before; relay for a lone participant). */
  via: Route | null;
  /** One cursor per bucket (those of a peer route stay at the start: the hub sees none). */
  ring: Cursor[];
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
    /** Whether the hub relays this pair's ring messages (their peer link failed or stalled). */
    private readonly relayed: (a: number, b: number) => boolean = () => false,
  ) {
    this.W = begin.participants.length;
    this.steps = 2 * (this.W - 1);
    for (const id of begin.participants) {
      const r = this.rank(id);
      const ring = plan.buckets.map((_, k) => this.settle({ t: 0, part: 0 }, r, k));
      this.sent.set(id, { shard: false, via: this.W > 1 ? null : 'relay', ring, done: false });
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
    const next = P[(r + 1) % this.W]!;
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
        if (msg.via === 'peer' && this.relayed(from, next)) {
          throw new ProtocolError(`${who} declared its ring messages go over its peer link with member ${next}, which the coordinator relays`);
        }
        s.shard = true;
        s.via = msg.via;
        return;
      case 'grad': {
        if (this.W > 1 && !s.shard) throw new ProtocolError(`${who} sent gradients in attempt ${msg.attempt} before its shard size`);
        if (s.via === 'peer') throw new ProtocolError(`${who} sent gradients through the coordinator in attempt ${msg.attempt}, having declared they go over its peer link`);
        const at = s.ring[msg.bucket]!; // checkRelayed has checked the bucket against the plan
        const due = this.due(r, msg.bucket, at);
        if (!due || msg.phase !== due.phase || msg.offset !== due.offset || msg.count !== due.count) {
          const owed = due ? `${due.phase} bucket ${msg.bucket} [${due.offset}, +${due.count})` : `nothing more of bucket ${msg.bucket}`;
          throw new ProtocolError(`a "grad" message (${msg.phase} bucket ${String(msg.bucket)} [${String(msg.offset)}, +${String(msg.count)})) out of the ring's order: ${owed} is due from ${who}`);
        }
        expectTo([next], 'the next rank');
        at.part++;
        this.settle(at, r, msg.bucket);
        return;
      }
      case 'done':
        once(s.done);
        if (from === this.leader || !this.ringSent(s)) throw new ProtocolError(`${who} sent "done" in attempt ${msg.attempt} before its gradients`);
        expectTo([this.leader], 'the leader');
        s.done = true;
        return;
      case 'commit':
        once(this.committed);
        if (!this.ringSent(s) || P.some((id) => id !== this.leader && !this.sent.get(id)!.done)) {
          throw new ProtocolError(`the leader committed attempt ${msg.attempt} before every participant held the sums`);
        }
        expectTo(P, 'every participant');
        this.committed = true;
        return;
    }
  }

  /**
   * The participants that hold the attempt up, each with what it owes: its inputs were sent, its
   * output was not. Only what the hub sees counts: a ring message over a peer link is neither an
   * input it knows was sent nor an output it knows is missing.
   */
  holdingUp(): { id: number; owes: string }[] {
    const P = this.begin.participants;
    const stateSent = this.begin.syncTo.length === 0 || (this.syncParts !== null && this.syncSent >= this.syncParts);
    const out: { id: number; owes: string }[] = [];
    if (!stateSent) out.push({ id: this.leader, owes: 'the state, to the replicas that joined' });
    const allShards = P.every((p) => this.sent.get(p)!.shard);
    for (const id of P) {
      const s = this.sent.get(id)!;
      const prev = this.sent.get(this.prev(id))!;
      // The leader sends the state first; those it is sent to need all of it.
      const hasState = stateSent || (id !== this.leader && !this.begin.syncTo.includes(id));
      if (this.W > 1 && !s.shard) {
        if (hasState) out.push({ id, owes: 'its shard size' });
        continue;
      }
      if (s.via === 'relay' && !this.ringSent(s)) {
        // A bucket whose next message has every input: the previous rank's step before it, seen by the hub.
        const owed = s.ring.findIndex((c) => c.t < this.steps && (c.t === 0 ? allShards : prev.via === 'relay' && prev.ring[s.ring.indexOf(c)]!.t >= c.t));
        if (owed >= 0) out.push({ id, owes: `its gradients (ring step ${s.ring[owed]!.t + 1} of ${this.steps}, bucket ${owed})` });
        continue;
      }
      // Its own ring messages are sent (or unseen); the previous rank's must all be in for it to finish.
      if (prev.via !== 'relay' || !this.ringSent(prev)) continue;
      if (id !== this.leader && !s.done) out.push({ id, owes: 'its "done"' });
      if (id === this.leader && !this.committed && hasState && P.every((p) => p === id || this.sent.get(p)!.done)) out.push({ id, owes: 'the commit' });
    }
    return out;
  }

  /**
   * The peer links [from, to] of this attempt whose receiver has not finished (no "done"; the
   * leader: no commit): where the attempt may be stuck without the hub seeing it.
   */
  stalledLinks(): [number, number][] {
    const out: [number, number][] = [];
    for (const id of this.begin.participants) {
      const from = this.prev(id);
      const finished = id === this.leader ? this.committed : this.sent.get(id)!.done;
      if (this.sent.get(from)!.via === 'peer' && !finished) out.push([from, id]);
    }
    return out;
  }

  /** Whether a participant's ring messages are all sent (or, over its peer link, whether it could be). */
  private ringSent(s: Sent): boolean {
    return s.via === 'peer' || s.ring.every((c) => c.t >= this.steps);
  }

  private rank(id: number): number {
    return this.begin.participants.indexOf(id);
  }

  private prev(id: number): number {
    return this.begin.participants[(this.rank(id) + this.W - 1) % this.W]!;
  }

  /** The chunk rank r sends at ring step t. */
  private chunk(r: number, t: number): number {
    const W = this.W;
    const c = t < W - 1 ? r - t : r + 1 - (t - (W - 1));
    return ((c % W) + W) % W;
  }

  /** The ring message of bucket k at `at`, or null once rank r has sent them all. */
  private due(r: number, k: number, at: Cursor): { phase: 'reduce' | 'gather'; offset: number; count: number } | null {
    if (at.t >= this.steps) return null;
    const [offset, count] = this.plan.parts(k, this.chunk(r, at.t), this.W)[at.part]!;
    return { phase: at.t < this.W - 1 ? 'reduce' : 'gather', offset, count };
  }

  /** Move the cursor of bucket k past ring steps that have no more parts for rank r. */
  private settle(at: Cursor, r: number, k: number): Cursor {
    while (at.t < this.steps && at.part >= this.plan.parts(k, this.chunk(r, at.t), this.W).length) {
      at.t++;
      at.part = 0;
    }
    return at;
  }
}
