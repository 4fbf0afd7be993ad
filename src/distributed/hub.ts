// The hub of a session: membership, signalling and relay, whatever carries the bytes (a WebSocket
// server in Node, MessagePorts in a page). It
//   - admits members: the first "join" to the empty session fixes its model layout, agreed
//     settings and sync settings (mode, outer optimizer, wire format), later ones must match them
//     while it has members;
//   - introduces members to each other: it relays WebRTC signals (offers, answers, ICE candidates)
//     between members only, bounded in size and number, so that replicas open direct peer links
//     and run the ring over them; a pair whose link fails, is refused or stalls is relayed from
//     then on (and the attempt under way, if it needs that link, is run again);
//   - keeps the membership (join order), the leader (the oldest member that holds the session's
//     state; the oldest member before any step) and who holds the state, and tells every member
//     after each change;
//   - relays each message to the member ids it names, stamping the sender's id, after checking it
//     (size, schema, gradient layout against the model, leader-only messages from the leader);
//   - numbers the attempts: a "begin" must carry the session's next attempt number (and, while
//     members hold the state, its step); other messages of an attempt must belong to the one under
//     way and be what their sender owes next (attempt-progress.ts; those of an abandoned attempt
//     are dropped): so no number a peer sends is bigger than what the hub has seen;
//   - drops members that break the rules, go silent for longer than the timeout, or hold an
//     attempt up past the step's deadline (step-deadline.ts); leaves out of a step the holders of
//     the state that are not ready for it by then (they are sent the state when they are);
//   - forgets the session's past (model, settings, attempts, holders) when its last member leaves.
// It knows which members hold the state from what it relays: after a "begin", its participants
// that held it or are not being sent it (members left out of an attempt stop counting: they may
// fall behind); a "commit" makes every participant a holder.

import { now } from '../clock';
import { decodeFrame, encodeFrame, stampSender, type Frame } from './frame';
import { BucketPlan, checkLayout, isIndex, layoutDifference, type ModelLayout } from './layout';
import { AttemptProgress } from './attempt-progress';
import { StepDeadline } from './step-deadline';
import {
  checkRelayed,
  checkSignal,
  checkSyncSettings,
  LEADER_ONLY,
  type AttemptMessage,
  type Begin,
  type Closed,
  type Member,
  type Members,
  type Ready,
  type Welcome,
} from './messages';
import { ProtocolError } from './errors';

/** The most signals one member may send another in a session (a link takes a handful). */
const MAX_SIGNALS_PER_PAIR = 256;

export interface HubOptions {
  /** The largest message accepted, in bytes (default 1 MiB). */
  maxMessageBytes?: number;
  /** The most a gradient or state message carries, in bytes (default 48 KiB, safe for WebRTC data channels). */
  partBytes?: number;
  /** Gradients are reduced in buckets of this many bytes (default 2 MiB). */
  bucketBytes?: number;
  /** A member not heard from for this long is dropped (default 30 s); members send a heartbeat every quarter of it. */
  timeoutMs?: number;
  /**
   * The least time an attempt of a step is given (default: twice the timeout). Past its deadline,
   * the participants that hold it up (they were sent what they need, and have not answered) are
   * dropped and the others run the step again; holders of the state that are not ready for the
   * next step that long after the leader are left out of it (and sent the state when they are).
   */
  minStepDeadlineMs?: number;
  /** The deadline is at least this many times the slowest of the session's last 8 committed attempts (default 4). */
  stepDeadlineFactor?: number;
  /** The largest model accepted, in parameters (default 256 Mi). */
  maxModelElements?: number;
  /** Where the hub reports joins, departures and rejections (default: nowhere). */
  log?: (line: string) => void;
}

/** One member's connection, as the hub sees it: send bytes, or close with a code and reason. */
export interface HubLink {
  send(frame: Uint8Array): void;
  close(code: number, reason: string): void;
}

/** What the transport tells the hub about a connection: a frame arrived, or it closed. */
export interface HubConnection {
  receive(frame: Uint8Array): void;
  closed(): void;
}

/** Close codes (WebSocket's application range), also sent in the hub's "closed" message. */
export const CloseCode = {
  left: 1000,
  shutdown: 1001,
  protocol: 4400,
  unauthorized: 4401,
  notFound: 4404,
  timeout: 4408,
  mismatch: 4409,
  tooBig: 4413,
} as const;

interface Connection {
  id: number;
  name: string;
  link: HubLink;
  joined: boolean;
  gone: boolean;
  lastHeard: number;
}

export class Hub {
  readonly maxMessageBytes: number;
  readonly partBytes: number;
  readonly bucketBytes: number;
  readonly timeoutMs: number;
  private readonly maxModelElements: number;
  private readonly log: (line: string) => void;
  private layout: ModelLayout | null = null;
  private plan: BucketPlan | null = null;
  private agreement = '';
  /** The session's sync settings, canonical JSON. */
  private sync = '';
  /** Who set the model and settings (the first member of the empty session). */
  private founder = '';
  private readonly connections = new Set<Connection>();
  /** Joined members by id, in join order. */
  private readonly members = new Map<number, Connection>();
  private nextId = 1;
  private synced: number[] = [];
  private leader = 0;
  /** The latest attempt any leader began: who has sent what, and whether it was committed. */
  private attempt: AttemptProgress | null = null;
  /** The step each holder of the state last said it is ready for. */
  private readonly readyFor = new Map<number, number>();
  private readonly deadline: StepDeadline;
  private sweeper: ReturnType<typeof setInterval> | null = null;
  /** Pairs "a-b" (a < b) whose ring messages the hub relays: their peer link failed or stalled. */
  private readonly relayedPairs = new Set<string>();
  /** The latest attempt abandoned because of a peer link, and why (replicas abort it). */
  private abandonedForLink: { attempt: number; why: string } | null = null;
  /** Signals relayed per ordered pair "from>to". */
  private readonly signals = new Map<string, number>();
  /** Senders and attempts whose late messages were said in the log ("id:attempt"), the last 1024. */
  private readonly lateSaid = new Set<string>();

  constructor(opts: HubOptions = {}) {
    this.maxMessageBytes = opts.maxMessageBytes ?? 1 << 20;
    this.partBytes = Math.min(opts.partBytes ?? 48 << 10, this.maxMessageBytes - 4096);
    this.bucketBytes = opts.bucketBytes ?? 2 << 20;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.deadline = new StepDeadline(opts.minStepDeadlineMs ?? 2 * this.timeoutMs, opts.stepDeadlineFactor ?? 4);
    this.maxModelElements = opts.maxModelElements ?? 1 << 28;
    this.log = opts.log ?? (() => undefined);
    if (this.partBytes < 64) throw new ProtocolError(`Hub: maxMessageBytes ${this.maxMessageBytes} leaves no room for gradient messages`);
  }

  /** The current members, in join order. */
  get memberList(): Member[] {
    return [...this.members.values()].map((c) => ({ id: c.id, name: c.name }));
  }

  /** A new connection; its first message must be a "join". */
  connect(link: HubLink): HubConnection {
    const c: Connection = { id: 0, name: 'a new connection', link, joined: false, gone: false, lastHeard: now() };
    this.connections.add(c);
    this.sweeper ??= setInterval(() => this.sweep(), Math.max(50, this.timeoutMs / 4));
    return { receive: (bytes) => this.receive(c, bytes), closed: () => this.drop(c, 'disconnected') };
  }

  /** Close every connection and stop. */
  close(): void {
    for (const c of [...this.connections]) this.reject(c, CloseCode.shutdown, 'the coordinator is shutting down');
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
    this.deadline.stop();
  }

  private receive(c: Connection, bytes: Uint8Array): void {
    if (c.gone) return;
    c.lastHeard = now();
    if (bytes.byteLength > this.maxMessageBytes) {
      return this.reject(c, CloseCode.tooBig, `${c.name} sent a message of ${bytes.byteLength.toLocaleString('en')} bytes; the session accepts at most ${this.maxMessageBytes.toLocaleString('en')}`);
    }
    let f: Frame;
    try {
      f = decodeFrame(bytes);
      if (!c.joined) {
        if (f.header.type !== 'join') throw new ProtocolError(`the first message must be "join", got "${f.header.type}"`);
        return this.join(c, f.header);
      }
      if (f.header.type === 'beat') return;
      if (f.header.type === 'leave') return this.reject(c, CloseCode.left, `${c.name} left`);
      if (f.header.type === 'link') return this.linkDown(c, f.header);
      if (f.header.type === 'signal') return this.signal(c, f, bytes);
      this.relay(c, f, bytes);
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e;
      this.reject(c, CloseCode.protocol, `rejected a message from ${c.name}: ${e.message}`);
    }
  }

  private join(c: Connection, h: Record<string, unknown>): void {
    const name = typeof h.name === 'string' && h.name.trim() ? h.name.trim().slice(0, 64) : '';
    const layout = checkLayout(h.layout, this.maxModelElements);
    const agreement = canonical(h.agreement);
    // A replica that says nothing of how it syncs (an older one) syncs every step in float32.
    const syncSettings = checkSyncSettings(h.sync ?? { every: 1, outer: null, wire: 'f32' });
    const sync = JSON.stringify(syncSettings);
    c.id = this.nextId++;
    c.name = `${name || 'replica'} #${c.id}`;
    if (!this.layout) {
      this.layout = layout;
      this.plan = new BucketPlan(layout, this.bucketBytes, this.partBytes, syncSettings.wire);
      this.agreement = agreement;
      this.sync = sync;
      this.founder = c.name;
    } else {
      const diff = layoutDifference(layout, this.layout);
      const refusal = diff
        ? `${name || 'a replica'} trains another model than the session: ${diff}`
        : agreement !== this.agreement
          ? `${name || 'a replica'} has other settings than the session: ${agreement} instead of ${this.agreement}`
          : sync !== this.sync
            ? `${name || 'a replica'} syncs otherwise than the session: ${sync} instead of ${this.sync}`
            : null;
      if (refusal) {
        const size = `${this.members.size} ${this.members.size === 1 ? 'member' : 'members'} now`;
        return this.reject(
          c,
          CloseCode.mismatch,
          `${refusal}. Every replica trains the session's model with its settings, set by ${this.founder} when it joined the empty session (${size}): ` +
            'start this replica with the same model and settings, or start another coordinator for this one (a session takes the model of whoever joins it when it is empty)',
        );
      }
    }
    c.joined = true;
    this.members.set(c.id, c);
    const welcome: Welcome = {
      type: 'welcome',
      id: c.id,
      bucketBytes: this.bucketBytes,
      partBytes: this.partBytes,
      maxMessageBytes: this.maxMessageBytes,
      heartbeatMs: Math.max(25, Math.floor(this.timeoutMs / 4)),
    };
    c.link.send(encodeFrame(welcome));
    this.log(`${c.name} joined (${this.members.size} in the session)`);
    this.membershipChanged();
  }

  private relay(c: Connection, f: Frame, bytes: Uint8Array): void {
    const msg = checkRelayed(f.header, f.payload.byteLength, this.plan!);
    const to = f.header.to;
    if (!Array.isArray(to) || !to.every((id) => Number.isSafeInteger(id) && id > 0) || to.length > this.nextId) {
      throw new ProtocolError(`a "${msg.type}" message has no valid "to" list of member ids`);
    }
    if (LEADER_ONLY.includes(msg.type) && c.id !== this.leader) {
      throw new ProtocolError(`only the leader (member ${this.leader}) sends "${msg.type}" messages`);
    }
    if (msg.type === 'begin') this.begin(c, msg, to as number[]);
    else if (msg.type === 'ready') this.ready(c, msg);
    else if (!this.ofAttemptUnderWay(c, msg, to as number[])) return;
    stampSender(bytes, c.id);
    for (const id of to as number[]) {
      const m = this.members.get(id);
      if (m && (m !== c || msg.type === 'commit')) m.link.send(bytes);
    }
  }

  /** Check a "begin" against the session's numbering and state, and record who holds the state. */
  private begin(c: Connection, msg: Begin, to: number[]): void {
    const others = msg.participants.slice(1);
    if (msg.participants[0] !== c.id || !msg.syncTo.every((id) => msg.participants.includes(id)) || to.length !== others.length || !others.every((id) => to.includes(id))) {
      throw new ProtocolError('a "begin" must list its sender first, go to the other participants and send state only to participants');
    }
    const last = this.attempt;
    const attempt = (last?.begin.attempt ?? -1) + 1;
    if (msg.attempt !== attempt) throw new ProtocolError(`a "begin" of attempt ${msg.attempt}; the session's next attempt is ${attempt}`);
    // While some members hold the session's state, its step is known: the leader is one of them.
    const step = this.synced.length && last ? last.begin.step + (last.committed ? 1 : 0) : msg.step;
    if (msg.step !== step) throw new ProtocolError(`a "begin" of step ${msg.step}; the session's state is at step ${step}`);
    if (last) last.abandoned ||= !last.committed;
    this.attempt = new AttemptProgress(msg, this.plan!, now(), (a, b) => this.relayedPairs.has(pairKey(a, b)));
    this.deadline.start(() => this.attemptOverdue());
    // Holders after a begin: its participants that held the state already (whether or not the
    // leader sends it to them again) and those it is not sent to (the leader vouches for them).
    // A member left out of the attempt may fall behind: it stops counting as a holder.
    const held = new Set(this.synced);
    const syncTo = new Set(msg.syncTo);
    this.setSynced(msg.participants.filter((id) => !syncTo.has(id) || held.has(id)));
  }

  /**
   * True for a message of the attempt under way, false for a late one (of an abandoned attempt:
   * nobody needs it). A message of an attempt no leader began, from a member that takes no part in
   * it, or a second commit, is refused.
   */
  private ofAttemptUnderWay(c: Connection, msg: AttemptMessage, to: number[]): boolean {
    const at = this.attempt;
    const b = at?.begin;
    if (!at || !b || msg.attempt > b.attempt || (msg.attempt === b.attempt && msg.step !== b.step)) {
      throw new ProtocolError(`a "${msg.type}" of step ${msg.step} attempt ${msg.attempt}, which no leader began${b ? ` (the latest is step ${b.step} attempt ${b.attempt})` : ''}`);
    }
    // Participants of an abandoned attempt drop its messages (a commit too: they saw it abandoned
    // first). Late ones are normal after an abort; a replay looks the same: said once per sender and attempt.
    if (msg.attempt < b.attempt || at.abandoned) {
      const key = `${c.id}:${msg.attempt}`;
      if (!this.lateSaid.has(key)) {
        this.lateSaid.add(key);
        if (this.lateSaid.size > 1024) this.lateSaid.delete(this.lateSaid.values().next().value!);
        this.log(`dropped a "${msg.type}" of step ${msg.step} attempt ${msg.attempt} from ${c.name}: that attempt is over (a late message, or a replay)`);
      }
      return false;
    }
    at.record(c.id, msg, to, c.name);
    if (msg.type === 'commit') {
      this.deadline.stop();
      this.deadline.took(now() - at.startedAt);
      this.setSynced(b.participants);
    }
    return true;
  }

  /**
   * A "ready": remember which step a holder is ready for. The leader's means it has moved on from
   * any attempt not committed; holders of the state get the step's deadline to be ready too.
   */
  private ready(c: Connection, msg: Ready): void {
    if (msg.synced) this.readyFor.set(c.id, msg.step);
    else this.readyFor.delete(c.id);
    if (c.id !== this.leader) return;
    if (this.attempt && !this.attempt.committed && !this.attempt.abandoned) {
      this.attempt.abandoned = true;
      this.deadline.stop();
    }
    if (msg.synced && this.laggards(msg.step).length) this.deadline.start(() => this.notReady(msg.step));
  }

  /** Holders of the state, the leader aside, that have not said they are ready for `step`. */
  private laggards(step: number): number[] {
    return this.synced.filter((id) => id !== this.leader && this.readyFor.get(id) !== step);
  }

  /**
   * Past the deadline of an attempt: drop those that hold it up (the others run the step again);
   * with nobody visibly at fault, relay the peer links it may be stuck on and run it again, where
   * the hub sees every ring message.
   */
  private attemptOverdue(): void {
    const at = this.attempt;
    if (!at || at.committed || at.abandoned) return;
    const why = this.deadline.describe();
    const late = `${((now() - at.startedAt) / 1000).toFixed(1)} s after the attempt began`;
    const culprits = at.holdingUp().filter((h) => this.members.has(h.id));
    if (!culprits.length) {
      const stalled = at.stalledLinks().filter(([a, b]) => this.members.has(a) && this.members.has(b));
      if (stalled.length) {
        const links = stalled.map(([a, b]) => `${this.nameOf(a)} → ${this.nameOf(b)}`).join(', ');
        this.abandon(at, `step ${at.begin.step} attempt ${at.begin.attempt} did not complete within its deadline (${why}) over the peer links ${links}: they are relayed through the coordinator from now on and the step runs again`, stalled);
        return;
      }
      this.log(`step ${at.begin.step} attempt ${at.begin.attempt} is past its deadline (${why}) with nobody to drop; it waits on`);
      this.deadline.start(() => this.attemptOverdue());
      return;
    }
    for (const { id, owes } of culprits) {
      const m = this.members.get(id)!;
      this.reject(m, CloseCode.timeout, `${m.name} held up step ${at.begin.step} (attempt ${at.begin.attempt}): it had not sent ${owes} ${late} (deadline ${why}); the others run the step again without it`);
    }
  }

  /** Past the deadline for holders to be ready: the session goes on without them; they are sent the state when they are ready. */
  private notReady(step: number): void {
    const late = this.laggards(step);
    if (!late.length) return;
    const why = this.deadline.describe();
    for (const id of late) this.log(`${this.members.get(id)?.name ?? `member ${id}`} was not ready for step ${step} within the deadline (${why}) after the leader: the session goes on without it (it is sent the state when it is ready)`);
    this.setSynced(this.synced.filter((id) => !late.includes(id)));
  }

  private setSynced(ids: number[]): void {
    const alive = ids.filter((id) => this.members.has(id));
    if (alive.length === this.synced.length && alive.every((id, i) => id === this.synced[i])) return;
    this.synced = alive;
    this.membershipChanged();
  }

  /**
   * A member's peer link with another failed or refused a message: relay the pair from now on,
   * and run the attempt under way again if both take part in it. Each pair is relayed once: a
   * member cannot abort more attempts this way than it has peers.
   */
  private linkDown(c: Connection, h: Record<string, unknown>): void {
    const peer = h.peer;
    if (!isIndex(peer) || peer === c.id || !this.members.has(peer)) {
      if (isIndex(peer) && peer < this.nextId && peer !== c.id) return; // a member that has just left
      throw new ProtocolError(`a "link" report names member ${JSON.stringify(peer)}, which is not another member of the session`);
    }
    const key = pairKey(c.id, peer);
    if (this.relayedPairs.has(key)) return;
    const reason = typeof h.reason === 'string' ? h.reason.slice(0, 300) : 'no reason given';
    const what = `${c.name} reports its peer link with ${this.nameOf(peer)} failed (${reason}): the pair is relayed through the coordinator from now on`;
    const at = this.attempt;
    if (at && !at.committed && !at.abandoned && at.begin.participants.includes(c.id) && at.begin.participants.includes(peer)) {
      this.abandon(at, `${what}, and step ${at.begin.step} attempt ${at.begin.attempt} runs again`, [[c.id, peer]]);
      return;
    }
    this.log(what);
    this.relayedPairs.add(key);
    this.membershipChanged();
  }

  /** Give up on attempt `at` (its participants abort it and the leader begins the next), relaying `pairs`. */
  private abandon(at: AttemptProgress, why: string, pairs: [number, number][]): void {
    this.log(why);
    for (const [a, b] of pairs) this.relayedPairs.add(pairKey(a, b));
    at.abandoned = true;
    this.deadline.stop();
    this.abandonedForLink = { attempt: at.begin.attempt, why };
    this.membershipChanged();
  }

  /** Relay a WebRTC signal to the one member it names, if that is another member. */
  private signal(c: Connection, f: Frame, bytes: Uint8Array): void {
    checkSignal(f.header, f.payload.byteLength);
    const to = f.header.to;
    if (!Array.isArray(to) || to.length !== 1 || !isIndex(to[0]) || to[0] === c.id) {
      throw new ProtocolError('a "signal" message must go to one other member');
    }
    const target = this.members.get(to[0]);
    if (!target) {
      // Not a member (any more): nobody to introduce. The sender's link to it fails by its timeout.
      this.log(`refused a signal from ${c.name} to member ${to[0]}: it is not a member of the session`);
      return;
    }
    const key = `${c.id}>${target.id}`;
    const n = (this.signals.get(key) ?? 0) + 1;
    if (n > MAX_SIGNALS_PER_PAIR) throw new ProtocolError(`${c.name} sent more than ${MAX_SIGNALS_PER_PAIR} signals to ${target.name}`);
    this.signals.set(key, n);
    stampSender(bytes, c.id);
    target.link.send(bytes);
  }

  private nameOf(id: number): string {
    return this.members.get(id)?.name ?? `member ${id}`;
  }

  /** Recompute the leader and tell every member who is in the session. */
  private membershipChanged(): void {
    this.synced = this.synced.filter((id) => this.members.has(id));
    this.leader = this.synced[0] ?? this.members.keys().next().value ?? 0;
    const b = this.attempt?.begin;
    const last = b ? { step: b.step, attempt: b.attempt } : null;
    const relayed = [...this.relayedPairs].map((k) => k.split('-').map(Number) as [number, number]);
    const members: Members = {
      type: 'members',
      members: this.memberList,
      leader: this.leader,
      synced: [...this.synced],
      lastBegin: last,
      relayed,
      abandoned: this.abandonedForLink,
    };
    const frame = encodeFrame(members);
    for (const m of this.members.values()) m.link.send(frame);
  }

  /** Tell the member why, close its connection, and forget it. */
  private reject(c: Connection, code: number, reason: string): void {
    if (c.gone) return;
    this.log(c.joined && code === CloseCode.left ? `${reason} (${this.members.size - 1} in the session)` : reason);
    const closed: Closed = { type: 'closed', code, reason };
    try {
      c.link.send(encodeFrame(closed));
      c.link.close(code, truncateUtf8(reason, 120));
    } finally {
      this.drop(c, reason);
    }
  }

  private drop(c: Connection, why: string): void {
    if (c.gone) return;
    c.gone = true;
    this.connections.delete(c);
    if (!c.joined) return;
    this.members.delete(c.id);
    this.readyFor.delete(c.id);
    for (const k of [...this.relayedPairs]) if (k.split('-').map(Number).includes(c.id)) this.relayedPairs.delete(k);
    for (const k of [...this.signals.keys()]) if (k.split('>').map(Number).includes(c.id)) this.signals.delete(k);
    // An attempt that loses a participant is abandoned everywhere (its commit, if it comes, is dropped).
    if (this.attempt && !this.attempt.committed && this.attempt.begin.participants.includes(c.id)) {
      this.attempt.abandoned = true;
      this.deadline.stop();
    }
    if (why === 'disconnected') this.log(`${c.name} disconnected (${this.members.size} left in the session)`);
    if (this.members.size === 0) this.startAfresh();
    this.membershipChanged();
  }

  /**
   * With no members left, nothing of the session's past binds those that join next: the next
   * member sets the model and settings.
   */
  private startAfresh(): void {
    this.layout = null;
    this.plan = null;
    this.agreement = '';
    this.sync = '';
    this.founder = '';
    this.attempt = null;
    this.abandonedForLink = null;
    this.relayedPairs.clear();
    this.signals.clear();
    this.readyFor.clear();
    this.deadline.reset();
    this.synced = [];
  }

  private sweep(): void {
    const t = now();
    for (const c of [...this.connections]) {
      if (t - c.lastHeard > this.timeoutMs) {
        this.reject(c, CloseCode.timeout, `${c.name} timed out: nothing heard from it for ${(this.timeoutMs / 1000).toFixed(1)} s`);
      }
    }
  }
}

/** The key of an unordered pair of member ids. */
function pairKey(a: number, b: number): string {
  return a < b ? `${a}-${b}` : `${b}-${a}`;
}

/** Agreed settings as a canonical string (keys sorted; values must be plain JSON scalars). */
function canonical(v: unknown): string {
  if (v === undefined) return '{}';
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ProtocolError('the agreed settings are not an object');
  const entries = Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1));
  for (const [k, x] of entries) {
    if (!['string', 'number', 'boolean'].includes(typeof x)) throw new ProtocolError(`the agreed setting "${k}" is not a string, number or boolean`);
  }
  return JSON.stringify(Object.fromEntries(entries));
}

/** `s` cut to at most `bytes` bytes of UTF-8 (WebSocket close reasons hold 123). */
function truncateUtf8(s: string, bytes: number): string {
  const enc = new TextEncoder();
  if (enc.encode(s).length <= bytes) return s;
  let out = s;
  while (enc.encode(`${out}…`).length > bytes) out = out.slice(0, -1);
  return `${out}…`;
}
