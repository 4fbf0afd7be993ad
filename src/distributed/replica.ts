// One replica's protocol state, shared by its parts: the step loop (data-parallel.ts), the leader
// role (leader.ts), an attempt of a step (attempt.ts) and the state sent to replicas that join
// (state-transfer.ts). It routes what the link receives: the hub's membership and peers' "ready"
// and "begin" into the session view, the messages of attempts into the mailbox.

import type { Trainer } from '../train/trainer';
import type { Tensor } from '../tensor';
import { ProtocolError } from './errors';
import { modelLayout } from './layout';
import { Mailbox } from './mailbox';
import type { Begin, Members, Relayed } from './messages';
import { ReplicaLink } from './replica-link';
import { SessionView, type Membership } from './session-view';
import type { Transport } from './transport';

/** An attempt that cannot complete (a participant left, or a newer attempt began): run the step again. */
export class Aborted extends Error {}

export class Replica {
  readonly link: ReplicaLink;
  readonly view = new SessionView();
  readonly mailbox = new Mailbox();
  /** The model's parameters, in layout order. */
  readonly params: Tensor[];
  /** Global steps applied by the session so far (this replica's count once it holds the state; the trainer's steps at first). */
  steps: number;
  /** Whether this replica holds the session's state. */
  synced = false;
  /** This replica's rank in the latest step (-1 before its first), and the replicas in it. */
  rank = -1;
  worldSize = 0;
  /** The last attempt this replica ran, and how many it ran of its step. */
  handled = { step: -1, attempt: -1 };
  tried = 0;
  lastSamplesPerSecond = 0;

  constructor(
    readonly trainer: Trainer,
    transport: Transport,
    readonly minReplicas: number,
    private readonly notify: (m: Membership) => void,
    readonly log: (line: string) => void,
  ) {
    // A resumed trainer leads the session from its own step count (others are sent its state).
    this.steps = trainer.steps;
    this.params = trainer.model.namedParameters().map(([, t]) => t);
    this.link = new ReplicaLink(transport, modelLayout(trainer.model));
    this.link.onMembers = (m) => this.fromHub(m);
    this.link.onPeer = (from, msg, payload) => this.fromPeer(from, msg, payload);
  }

  get id(): number {
    return this.link.id;
  }

  /** `ids` without this replica. */
  others(ids: number[]): number[] {
    return ids.filter((id) => id !== this.id);
  }

  /** Throws if attempt `b` can no longer complete: this replica failed, a participant left, or a newer attempt began. */
  checkAttempt(b: Begin): void {
    if (this.link.failure) throw this.link.failure;
    const alive = new Set(this.view.ids);
    const gone = b.participants.filter((id) => !alive.has(id));
    if (gone.length) throw new Aborted(`member ${gone.join(', ')} left`);
    const l = this.view.latestBegin;
    if (l && l.attempt > b.attempt && l.participants.includes(this.id)) throw new Aborted(`the leader began attempt ${l.attempt} of step ${l.step}`);
  }

  notifyMembership(): void {
    this.notify({ rank: this.rank, worldSize: this.worldSize, peers: this.view.peers(this.id) });
  }

  private fromHub(m: Members): void {
    this.view.updateMembers(m);
    this.log(`members ${this.view.ids.join(',')}, leader ${m.leader}, synced ${m.synced.join(',')}`);
    this.notifyMembership();
  }

  private fromPeer(from: number, msg: Relayed, payload: Uint8Array): void {
    if (msg.type === 'ready') {
      this.log(`ready from ${from}: step ${msg.step}${msg.synced ? '' : ' (joining)'}`);
      if (this.view.ready(from, msg)) this.notifyMembership();
      return;
    }
    if (msg.type === 'begin') {
      if (from !== this.view.leader) throw new ProtocolError(`member ${from} sent "begin" but the leader is member ${this.view.leader}`);
      this.view.begun(msg);
      return;
    }
    // Messages of an attempt this replica has moved past are late: drop them.
    if (msg.attempt < this.handled.attempt || (this.synced && msg.step < this.steps)) return;
    this.mailbox.put(from, msg, payload);
    if (msg.type === 'commit') this.view.committed(msg.attempt, this.id);
  }
}
