// What a replica knows of its session: the members, the leader and the holders of the state (the
// hub's latest members message), each member's latest "ready" (and whether a committed attempt has
// answered it), and the attempts begun. The leader decides from it whom to begin a step with; the
// others, which begin to follow; applications see it as `peers`.

import type { Begin, Members, Ready } from './messages';

export interface PeerInfo {
  id: number;
  name: string;
  /** Rank in the latest step, or -1 for a replica that takes part from the next step on. */
  rank: number;
  isSelf: boolean;
  isLeader: boolean;
  /** True while it waits for the next step boundary to be sent the state and take part. */
  joining: boolean;
  /** Samples per second the replica computed gradients at in its last step (0 before its first). */
  samplesPerSecond: number;
  /** How this replica reaches it: over a direct peer link, through the coordinator, or a link being made (null for itself). */
  link: 'peer' | 'relay' | 'connecting' | null;
}

export interface Membership {
  rank: number;
  worldSize: number;
  peers: PeerInfo[];
}

const NOBODY: Members = { type: 'members', members: [], leader: 0, synced: [], lastBegin: null, relayed: [], abandoned: null };

export class SessionView {
  /** The hub's latest members message. */
  members: Members = NOBODY;
  /** The latest attempt begun that this replica takes part in, or took part in. */
  latestBegin: Begin | null = null;
  /** The latest attempt any leader began (the hub's members message says; or this replica began it since). */
  lastBegun: { step: number; attempt: number } | null = null;
  /** The latest "ready" of every member (this one's included). */
  private readonly readies = new Map<number, Ready>();
  /** Members whose latest "ready" a committed attempt has answered (they took part in it). */
  private readonly answered = new Set<number>();

  get leader(): number {
    return this.members.leader;
  }

  /** Member ids in join order. */
  get ids(): number[] {
    return this.members.members.map((m) => m.id);
  }

  /** Whether the hub counts member `id` as holding the session's state. */
  holds(id: number): boolean {
    return this.members.synced.includes(id);
  }

  updateMembers(m: Members): void {
    this.members = m;
    // A members message may have left the hub before this replica's latest begin reached it.
    const last = m.lastBegin;
    if (last && !(this.lastBegun && this.lastBegun.attempt > last.attempt)) this.lastBegun = last;
    const alive = new Set(this.ids);
    for (const id of this.readies.keys()) if (!alive.has(id)) this.readies.delete(id);
    for (const id of this.answered) if (!alive.has(id)) this.answered.delete(id);
  }

  /** Member `from` (or this replica) is ready; says whether that changed whether it is joining. */
  ready(from: number, r: Ready): boolean {
    const joining = this.joining(from);
    this.readies.set(from, r);
    this.answered.delete(from);
    return joining !== !r.synced;
  }

  /** A begin from the leader. */
  begun(b: Begin): void {
    if (!this.latestBegin || b.attempt > this.latestBegin.attempt) this.latestBegin = b;
  }

  /** This replica, as leader, began `b`. */
  began(b: Begin): void {
    this.latestBegin = b;
    this.lastBegun = { step: b.step, attempt: b.attempt };
  }

  /**
   * Attempt `attempt` was committed: it has answered its participants' "ready" (the next one each
   * sends comes after the commit: the hub relays in order), and until then they wait for no begin.
   * (An abandoned attempt answers nothing: its participants wait at the same step boundary.)
   */
  committed(attempt: number, self: number): void {
    const b = this.latestBegin;
    if (b?.attempt !== attempt) return;
    for (const id of b.participants) if (id !== self) this.answered.add(id);
  }

  /**
   * Whether member `id` waits to take part in step `step`: a "ready" that a committed attempt
   * answered is spent; a holder's counts once it is for this step (the one it sent while joining,
   * or for the step before, is stale); the latest of a replica that holds no state says it waits
   * for it.
   */
  waitsFor(id: number, step: number): boolean {
    const r = this.readies.get(id);
    return !!r && !this.answered.has(id) && (!this.holds(id) || (r.synced && r.step === step));
  }

  private joining(id: number): boolean {
    return this.readies.get(id)?.synced === false && !this.answered.has(id);
  }

  /** The members as this replica (member `self`) knows them, in join order. */
  peers(self: number, links: Record<number, 'peer' | 'relay' | 'connecting'> = {}): PeerInfo[] {
    const participants = this.latestBegin?.participants ?? [];
    return this.members.members.map((m) => ({
      id: m.id,
      name: m.name,
      rank: participants.indexOf(m.id),
      isSelf: m.id === self,
      isLeader: m.id === this.members.leader,
      joining: this.joining(m.id),
      samplesPerSecond: this.readies.get(m.id)?.samplesPerSecond ?? 0,
      link: m.id === self ? null : (links[m.id] ?? 'relay'),
    }));
  }

  /** The latest "ready" of each member, for debugging a stalled session. */
  describeReadies(): Record<number, Ready> {
    return Object.fromEntries(this.readies);
  }
}
