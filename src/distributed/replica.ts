// One replica's protocol state, shared by its parts: the step loop (data-parallel.ts), the leader
// role (leader.ts), an attempt (attempt.ts) in either sync mode (sync-step.ts, round.ts), the
// all-reduce (all-reduce.ts) and the state sent to replicas that join (state-transfer.ts). It
// routes what the link receives: the hub's membership and peers' "ready" and "begin" into the
// session view, the membership and signals to the peer links, the messages of attempts (from the
// hub or over a peer link) into the mailbox.

import type { Optimizer } from '../optim/optimizer';
import type { Trainer } from '../train/trainer';
import type { Tensor } from '../tensor';
import { ProtocolError } from './errors';
import { modelLayout } from './layout';
import { Mailbox } from './mailbox';
import type { Begin, Grad, Members, Relayed, SyncSettings } from './messages';
import type { PeerConnector } from './peer-link';
import { PeerLinks } from './peer-links';
import { ReplicaLink } from './replica-link';
import { SessionView, type Membership } from './session-view';
import type { Reduction } from './sums';
import type { Transport } from './transport';

/** An attempt that cannot complete (a participant left, or a newer attempt began): run the step again. */
export class Aborted extends Error {}

export class Replica {
  readonly link: ReplicaLink;
  readonly view = new SessionView();
  readonly mailbox = new Mailbox();
  readonly peers: PeerLinks;
  /** The model's parameters, in layout order. */
  readonly params: Tensor[];
  /** Local optimizer steps applied so far (the session's, once this replica holds its state; the trainer's at first). */
  steps: number;
  /**
   * The session's syncs this replica's state has seen: the sync index ("step") of the attempts it
   * takes part in next. Equal to `steps` in synchronous mode; `steps` / every at the start of a round.
   */
  syncs: number;
  /** The wire format's rounding errors from the last committed sync (f16), added to the next contribution. */
  residual: Float32Array | null = null;
  /** The outer optimizer of rounds of local steps (its state is part of the session's), else null. */
  outer: Optimizer | null = null;
  /** Whether this replica holds the session's state. */
  synced = false;
  /** This replica's rank in the latest attempt (-1 before its first), and the replicas in it. */
  rank = -1;
  worldSize = 0;
  /** The last attempt this replica ran, and how many it ran of its sync. */
  handled = { step: -1, attempt: -1 };
  /** The begin of that attempt. */
  running: Begin | null = null;
  tried = 0;
  lastSamplesPerSecond = 0;

  constructor(
    readonly trainer: Trainer,
    transport: Transport,
    readonly settings: SyncSettings,
    readonly reduction: Reduction,
    connector: PeerConnector | null,
    readonly minReplicas: number,
    private readonly notify: (m: Membership) => void,
    readonly log: (line: string) => void,
  ) {
    const replica = this;
    // A resumed trainer leads the session from its own step count (others are sent its state);
    // a round it was in the middle of starts again.
    this.syncs = Math.floor(trainer.steps / settings.every);
    this.steps = this.syncs * settings.every;
    this.params = trainer.model.namedParameters().map(([, t]) => t);
    this.link = new ReplicaLink(transport, modelLayout(trainer.model), settings);
    this.link.onMembers = (m) => this.fromHub(m);
    this.link.onPeer = (from, msg, payload) => this.fromPeer(from, msg, payload);
    this.link.onSignal = (from, s, generation) => this.peers.signal(from, s, generation);
    this.link.onFail = () => this.peers.close();
    this.peers = new PeerLinks(
      {
        get id() {
          return replica.id;
        },
        plan: () => this.link.plan,
        maxMessageBytes: () => this.link.maxMessageBytes,
        deliver: (from, msg, payload) => this.fromPeerLink(from, msg, payload),
        toHub: (h) => this.link.toHub(h),
        count: (sent, received) => {
          this.link.bytesSent += sent;
          this.link.bytesReceived += received;
        },
        log: (line) => this.log(line),
      },
      connector,
    );
  }

  get id(): number {
    return this.link.id;
  }

  /** `ids` without this replica. */
  others(ids: number[]): number[] {
    return ids.filter((id) => id !== this.id);
  }

  /** Throws if attempt `b` can no longer complete: this replica failed, a participant left, the hub gave up on it, or a newer attempt began. */
  checkAttempt(b: Begin): void {
    if (this.link.failure) throw this.link.failure;
    const alive = new Set(this.view.ids);
    const gone = b.participants.filter((id) => !alive.has(id));
    if (gone.length) throw new Aborted(`member ${gone.join(', ')} left`);
    const abandoned = this.view.members.abandoned;
    if (abandoned && abandoned.attempt === b.attempt) throw new Aborted(`the coordinator gave up on it: ${abandoned.why}`);
    const l = this.view.latestBegin;
    if (l && l.attempt > b.attempt && l.participants.includes(this.id)) throw new Aborted(`the leader began attempt ${l.attempt} of step ${l.step}`);
  }

  notifyMembership(): void {
    this.notify({ rank: this.rank, worldSize: this.worldSize, peers: this.view.peers(this.id, this.peers.describe()) });
  }

  private fromHub(m: Members): void {
    this.view.updateMembers(m);
    this.peers.update(m);
    this.log(`members ${this.view.ids.join(',')}, leader ${m.leader}, synced ${m.synced.join(',')}${m.relayed.length ? `, relayed ${m.relayed.map((p) => p.join('-')).join(',')}` : ''}`);
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
    if (msg.attempt < this.handled.attempt || (this.synced && msg.step < this.syncs)) return;
    this.mailbox.put(from, msg, payload);
    if (msg.type === 'commit') this.view.committed(msg.attempt, this.id);
  }

  /**
   * A ring message over the peer link with `from`: it must belong to the attempt this replica runs
   * and come from its previous rank. One of an attempt already over is dropped, and said so (a
   * late message, or a replay); anything else that does not fit throws a ProtocolError, which
   * closes that link (the pair is relayed from then on) and leaves this replica in its session.
   */
  private fromPeerLink(from: number, msg: Grad, payload: Uint8Array): void {
    const h = this.handled;
    if (msg.attempt < h.attempt || (msg.attempt === h.attempt && msg.step !== h.step)) {
      this.log(`dropped a ring message from member ${from} of step ${msg.step} attempt ${msg.attempt}: that attempt is over (this replica runs step ${h.step} attempt ${h.attempt}); a late message or a replay`);
      return;
    }
    const b = this.running;
    if (msg.attempt > h.attempt || !b || b.attempt !== msg.attempt) {
      throw new ProtocolError(`a ring message of step ${msg.step} attempt ${msg.attempt}, which this replica has not begun (it runs step ${h.step} attempt ${h.attempt})`);
    }
    const r = b.participants.indexOf(this.id);
    const prev = b.participants[(r + b.participants.length - 1) % b.participants.length];
    if (r < 0 || from !== prev) throw new ProtocolError(`member ${from} is not the previous rank of step ${msg.step} attempt ${msg.attempt} (member ${prev} is)`);
    this.mailbox.put(from, msg, payload);
    this.link.changed();
  }
}
