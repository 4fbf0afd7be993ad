// DataParallel: one replica of a data-parallel session. Each replica computes the gradients of its
// shard of the global batch (micro-batched by its Trainer as usual), the gradients are summed
// across replicas by a ring all-reduce, and every replica applies the same update: the result is
// one device training on the global batch.
//
// A step, as every replica sees it:
//   1. "ready": I am at the start of step s (and hold the session's state, or need it).
//   2. The leader (rank 0) waits until every replica that holds the state is ready, then sends
//      "begin" (step, attempt, participants in rank order, who must be sent the state) and the state
//      itself (a webgrad checkpoint) to replicas that joined since the last step.
//   3. Each participant takes its shard, tells the others its size ("shard"), and computes its
//      gradients scaled by shard / global batch.
//   4. Ring all-reduce (ring.ts); then "done" to the leader, which sends "commit" to all
//      participants in one message that the hub relays to all of them at once (itself included).
//   5. On "commit", and only then, each applies the update.
// If a participant leaves, times out or holds the attempt up past the step's deadline (the hub
// drops it) before the commit, the attempt is abandoned everywhere (gradients discarded, nothing
// applied) and the survivors run the step again as a new attempt, re-sharded among themselves. A
// replica that joins waits for the next step (or attempt) boundary; one that holds the state but is
// not ready for a step by the deadline is left out of it and sent the state when it is.

import { tensor } from '../creation';
import { loadCheckpoint, saveCheckpoint } from '../io/checkpoint';
import type { Trainer } from '../train/trainer';
import type { Tensor } from '../tensor';
import { DistributedError, ProtocolError } from './errors';
import { decodeFrame, encodeFrame, floats, HUB, type Frame } from './frame';
import { BucketPlan, modelLayout, type ModelLayout } from './layout';
import { checkRelayed, type Begin, type Commit, type Members, type Ready, type Relayed, type Welcome } from './messages';
import { ringAllReduce, type Phase, type RingLink } from './ring';
import type { Transport } from './transport';

export interface DataParallelOptions {
  trainer: Trainer;
  transport: Transport;
  /** How the other replicas see this one (default "replica"). */
  name?: string;
  /** The session's first step waits until this many replicas are ready (default 1). */
  minReplicas?: number;
  /** Settings every replica must share (global batch size, data seed, …): a replica with others is refused. */
  agreement?: Record<string, string | number | boolean>;
  /** Where to describe the protocol's decisions (membership, begins, aborted attempts, commits): for debugging a session. */
  log?: (line: string) => void;
}

/** Where a step runs: its global index, this replica's rank and the number of replicas. */
export interface ShardPlace {
  step: number;
  rank: number;
  worldSize: number;
}

/**
 * This replica's shard for a step. Called once per attempt (again with a new rank and world size
 * when a replica leaves mid-step); DataParallel disposes the tensors it returns.
 */
export type ShardFn = (at: ShardPlace) => { x: Tensor; y: Tensor } | Promise<{ x: Tensor; y: Tensor }>;

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
}

export interface Membership {
  rank: number;
  worldSize: number;
  peers: PeerInfo[];
}

export interface DataParallelStepResult {
  /** Index of the global step just applied (0-based). */
  step: number;
  /** Mean loss over the global batch. */
  loss: number;
  globalBatch: number;
  /** This replica's shard size. */
  samples: number;
  rank: number;
  worldSize: number;
  /** 1, plus the attempts abandoned because a replica left or timed out. */
  attempts: number;
  /** How this replica's Trainer split its shard (0 micro-batches for an empty shard). */
  microBatches: number;
  microBatchSize: number;
  /** Wall time of the step; of it, computing this replica's gradients (the rest is communication and waiting). */
  ms: number;
  computeMs: number;
  communicationMs: number;
  /** Bytes this replica sent and received during the step (every message, the ring's included). */
  bytesSent: number;
  bytesReceived: number;
}

/** An attempt that cannot complete (a participant left, or a newer attempt began): run the step again. */
class Aborted extends Error {}

interface Stored {
  step: number;
  attempt: number;
  from: number;
  msg: Relayed;
  payload: Uint8Array;
}

const NOBODY: Members = { type: 'members', members: [], leader: 0, synced: [], lastBegin: null };

export class DataParallel {
  readonly trainer: Trainer;
  /** Global steps applied by the session so far (this replica's count once it holds the state; the trainer's steps at first). */
  steps = 0;
  /** This replica's rank in the latest step (-1 before its first). */
  rank = -1;
  /** Replicas in the latest step (0 before the first). */
  worldSize = 0;
  /** Called when replicas join or leave, and at the start of every step (with fresh speeds). */
  onMembershipChange: ((m: Membership) => void) | null = null;

  private readonly transport: Transport;
  private readonly name: string;
  private readonly minReplicas: number;
  private readonly agreement: Record<string, string | number | boolean>;
  private readonly log: (line: string) => void;
  private readonly layout: ModelLayout;
  private readonly params: Tensor[];
  private readonly joined: Promise<void>;
  private id = 0;
  private plan: BucketPlan | null = null;
  private view: Members = NOBODY;
  private synced = false;
  /** The latest "ready" of every member (this one's included). */
  private readonly readies = new Map<number, Ready>();
  /** Members whose latest "ready" a committed attempt has answered (they took part in it). */
  private readonly answered = new Set<number>();
  private latestBegin: Begin | null = null;
  /** The latest attempt any leader began (the hub's members message says; or this replica began it since). */
  private lastBegun: { step: number; attempt: number } | null = null;
  /** The last attempt this replica ran, and how many it ran of its step. */
  private handled = { step: -1, attempt: -1 };
  private tried = 0;
  private readonly inbox = new Map<string, Stored>();
  private readonly waiters = new Set<() => void>();
  private failure: DistributedError | null = null;
  private closedReason: string | null = null;
  private heartbeat: ReturnType<typeof setInterval> | null = null;
  /** How often to tell the hub this replica is alive (from its welcome). */
  private heartbeatMs: number | undefined;
  private busy = false;
  private lastSamplesPerSecond = 0;
  private bytesSent = 0;
  private bytesReceived = 0;

  constructor(opts: DataParallelOptions) {
    this.trainer = opts.trainer;
    if (this.trainer.mixed.precision !== 'f32') {
      // Loss scaling decides per replica whether to skip an update and how to rescale: replicas would part ways.
      throw new DistributedError(
        `DataParallel: a Trainer with precision '${this.trainer.mixed.precision}' is not supported yet (each replica would skip ` +
          "updates and scale its loss on its own); use precision 'f32'",
      );
    }
    this.transport = opts.transport;
    this.name = opts.name ?? 'replica';
    this.minReplicas = opts.minReplicas ?? 1;
    this.agreement = opts.agreement ?? {};
    const log = opts.log;
    this.log = log ? (line) => log(`${this.name} #${this.id}: ${line}`) : () => undefined;
    // A resumed trainer leads the session from its own step count (others are sent its state).
    this.steps = this.trainer.steps;
    const named = this.trainer.model.namedParameters();
    this.layout = modelLayout(this.trainer.model);
    this.params = named.map(([, t]) => t);
    this.joined = this.join();
    this.joined.catch(() => undefined); // step() reports it
  }

  /** The members of the session as this replica knows them, in join order. */
  get peers(): PeerInfo[] {
    const participants = this.latestBegin?.participants ?? [];
    return this.view.members.map((m) => ({
      id: m.id,
      name: m.name,
      rank: participants.indexOf(m.id),
      isSelf: m.id === this.id,
      isLeader: m.id === this.view.leader,
      joining: this.readies.get(m.id)?.synced === false && !this.answered.has(m.id),
      samplesPerSecond: this.readies.get(m.id)?.samplesPerSecond ?? 0,
    }));
  }

  /** Resolves once the hub has admitted this replica (step() waits for it too). */
  ready(): Promise<void> {
    return this.joined;
  }

  /**
   * One global step. Pass this replica's shard (x, y), or a function that returns the shard for a
   * given rank and world size (it is called again if the step is re-run with fewer replicas).
   * Resolves once the update is applied; rejects, leaving the session, if this replica cannot go on.
   */
  async step(x: Tensor, y: Tensor): Promise<DataParallelStepResult>;
  async step(shard: ShardFn): Promise<DataParallelStepResult>;
  async step(a: Tensor | ShardFn, b?: Tensor): Promise<DataParallelStepResult> {
    if (this.busy) throw new DistributedError('DataParallel.step: the previous step has not finished; await it first');
    const owned = typeof a === 'function';
    const source: ShardFn = typeof a === 'function' ? a : () => ({ x: a, y: b! });
    this.busy = true;
    try {
      await this.joined;
      return await this.runStep(source, owned);
    } catch (e) {
      this.fail(e instanceof DistributedError ? e : new DistributedError(`this replica left the session after an error: ${(e as Error).message}`));
      throw e;
    } finally {
      this.busy = false;
    }
  }

  /** Leave the session (the others go on without this replica). */
  close(): void {
    if (!this.failure) this.toHub({ type: 'leave' });
    this.fail(new DistributedError('this replica left the session'));
  }

  // ---- joining and messages ----

  private async join(): Promise<void> {
    this.transport.onFrame = (bytes) => this.receive(bytes);
    this.transport.onClose = (why) => this.fail(new DistributedError(`${this.transport.description} ended the session for this replica: ${this.closedReason ?? why}`));
    try {
      await this.transport.open();
    } catch (e) {
      throw e instanceof DistributedError ? e : new DistributedError(`could not connect to ${this.transport.description}: ${(e as Error).message}`);
    }
    this.toHub({ type: 'join', name: this.name, layout: this.layout, agreement: this.agreement });
    const heartbeatMs = await this.until(() => this.heartbeatMs);
    this.heartbeat = setInterval(() => this.toHub({ type: 'beat' }), heartbeatMs);
  }

  private receive(bytes: Uint8Array): void {
    if (this.failure) return;
    this.bytesReceived += bytes.byteLength;
    try {
      const f = decodeFrame(bytes);
      if (f.from === HUB) this.fromHub(f);
      else this.fromPeer(f);
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e;
      this.fail(new ProtocolError(`this replica rejected a message and left the session: ${e.message}`));
    }
    this.changed();
  }

  private fromHub(f: Frame): void {
    const h = f.header;
    if (h.type === 'welcome') {
      const w = h as unknown as Welcome;
      this.id = w.id;
      this.heartbeatMs = w.heartbeatMs;
      this.plan = new BucketPlan(this.layout, w.bucketBytes, w.partBytes);
    } else if (h.type === 'members') {
      this.view = h as unknown as Members;
      // A members message may have left the hub before this replica's latest begin reached it.
      const last = this.view.lastBegin;
      if (last && !(this.lastBegun && this.lastBegun.attempt > last.attempt)) this.lastBegun = last;
      this.log(`members ${this.view.members.map((m) => m.id).join(',')}, leader ${this.view.leader}, synced ${this.view.synced.join(',')}`);
      const alive = new Set(this.view.members.map((m) => m.id));
      for (const id of this.readies.keys()) if (!alive.has(id)) this.readies.delete(id);
      for (const id of this.answered) if (!alive.has(id)) this.answered.delete(id);
      this.notifyMembership();
    } else if (h.type === 'closed') {
      this.closedReason = String((h as { reason?: unknown }).reason);
    } else {
      throw new ProtocolError(`unknown message "${h.type}" from the hub`);
    }
  }

  private fromPeer(f: Frame): void {
    if (!this.plan) throw new ProtocolError(`a "${f.header.type}" message from member ${f.from} before this replica was admitted`);
    const msg = checkRelayed(f.header, f.payload.byteLength, this.plan);
    if (msg.type === 'ready') {
      this.log(`ready from ${f.from}: step ${msg.step}${msg.synced ? '' : ' (joining)'}`);
      const joining = this.peers.find((p) => p.id === f.from)?.joining ?? false;
      this.readies.set(f.from, msg);
      this.answered.delete(f.from);
      if (joining !== !msg.synced) this.notifyMembership();
      return;
    }
    if (msg.type === 'begin') {
      if (f.from !== this.view.leader) throw new ProtocolError(`member ${f.from} sent "begin" but the leader is member ${this.view.leader}`);
      if (!this.latestBegin || msg.attempt > this.latestBegin.attempt) this.latestBegin = msg;
      return;
    }
    // Messages of an attempt this replica has moved past are late: drop them.
    if (msg.attempt < this.handled.attempt || (this.synced && msg.step < this.steps)) return;
    const key = keyOf(msg, f.from);
    if (this.inbox.has(key)) throw new ProtocolError(`member ${f.from} sent ${key} twice`);
    this.inbox.set(key, { step: msg.step, attempt: msg.attempt, from: f.from, msg, payload: f.payload });
    if (msg.type === 'commit' && this.latestBegin?.attempt === msg.attempt) this.answer(this.latestBegin);
  }

  private toHub<H extends { type: string }>(header: H): void {
    this.sendFrame(encodeFrame(header));
  }

  private sendTo(ids: number[], header: Relayed, payload?: ArrayBufferView): void {
    if (ids.length) this.sendFrame(encodeFrame({ ...header, to: ids }, payload));
  }

  private sendFrame(frame: Uint8Array): void {
    if (this.failure) return;
    this.bytesSent += frame.byteLength;
    this.transport.send(frame);
  }

  private fail(e: DistributedError): void {
    if (this.failure) return;
    this.failure = e;
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.transport.close();
    this.changed();
  }

  /** Resolve with the first value `probe` returns, re-asking after every message; `probe` may throw. */
  private until<T>(probe: () => T | undefined): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const check = () => {
        try {
          if (this.failure) throw this.failure;
          const v = probe();
          if (v === undefined) return;
          resolve(v);
        } catch (e) {
          reject(e);
        }
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  private changed(): void {
    for (const w of [...this.waiters]) w();
  }

  private notifyMembership(): void {
    this.onMembershipChange?.({ rank: this.rank, worldSize: this.worldSize, peers: this.peers });
  }

  // ---- a step ----

  private async runStep(source: ShardFn, owned: boolean): Promise<DataParallelStepResult> {
    const started = now();
    this.bytesSent = 0;
    this.bytesReceived = 0;
    for (;;) {
      const begin = await this.nextBegin();
      let result: DataParallelStepResult;
      try {
        result = await this.attempt(begin, source, owned, started);
      } catch (e) {
        if (!(e instanceof Aborted)) throw e;
        this.log(`step ${begin.step} attempt ${begin.attempt} aborted: ${e.message}`);
        this.trainer.optimizer.zeroGrad();
        continue;
      }
      // The trainer's automatic checkpoints (if it keeps them), as after a step on one device.
      await this.trainer.checkpoints?.afterStep(this.trainer);
      return result;
    }
  }

  /** The begin of this replica's next attempt: from the leader, or made here if this replica leads. */
  private async nextBegin(): Promise<Begin> {
    for (;;) {
      const leader = this.view.leader;
      this.announceReady();
      if (leader === this.id) {
        const b = await this.lead();
        if (b) return b;
        continue;
      }
      const next = await this.until((): Begin | 'leader changed' | undefined => {
        if (this.view.leader !== leader) return 'leader changed';
        const b = this.latestBegin;
        return b && b.participants.includes(this.id) && b.attempt > this.handled.attempt ? b : undefined;
      });
      if (next !== 'leader changed') return next;
    }
  }

  /**
   * A committed attempt has answered its participants' "ready": the next one each sends comes after
   * the commit (the hub relays in order), and until then it is not waiting for a begin. (An
   * abandoned attempt answers nothing: its participants wait at the same step boundary.)
   */
  private answer(b: Begin): void {
    for (const id of b.participants) if (id !== this.id) this.answered.add(id);
  }

  private announceReady(): void {
    const ready: Ready = {
      type: 'ready',
      step: this.steps,
      synced: this.synced,
      samplesPerSecond: this.lastSamplesPerSecond,
    };
    this.readies.set(this.id, ready);
    this.sendTo(this.others(this.view.members.map((m) => m.id)), ready);
  }

  /**
   * As leader: wait until every replica holding the state (as the hub counts them) is ready for
   * this step (and, before the session's first attempt, until minReplicas are), then begin the
   * attempt with every ready replica, sending the state to those that do not hold it.
   */
  private async lead(): Promise<Begin | null> {
    const s = this.steps;
    // A "ready" that a committed attempt answered is spent; a holder's counts once it is for this step (the
    // one it sent while joining, or for the step before, is stale); the latest of a replica that
    // holds no state says it waits for it.
    const holds = (id: number) => this.view.synced.includes(id);
    const current = (id: number) => {
      const r = this.readies.get(id);
      return !!r && !this.answered.has(id) && (!holds(id) || (r.synced && r.step === s));
    };
    const participants = await this.until((): number[] | null | undefined => {
      if (this.view.leader !== this.id) return null;
      const alive = new Set(this.view.members.map((m) => m.id));
      if (this.view.synced.some((id) => id !== this.id && alive.has(id) && !current(id))) return undefined;
      const ready = [this.id, ...this.view.members.map((m) => m.id).filter((id) => id !== this.id && current(id))];
      if (this.lastBegun === null && ready.length < this.minReplicas) return undefined;
      return ready;
    });
    if (!participants) return null;
    // Attempts are numbered through the session, and the hub accepts only the next number: the
    // one after the last attempt any leader began.
    const attempt = (this.lastBegun?.attempt ?? -1) + 1;
    const begin: Begin = { type: 'begin', step: s, attempt, participants, syncTo: participants.filter((id) => id !== this.id && !holds(id)) };
    this.log(`begins step ${s} attempt ${attempt} with ${participants.join(',')}${begin.syncTo.length ? ` (state to ${begin.syncTo.join(',')})` : ''}`);
    this.synced = true;
    this.latestBegin = begin;
    this.lastBegun = { step: s, attempt };
    // Through the hub even when nobody else takes part: the hub numbers the attempts.
    this.sendFrame(encodeFrame({ ...begin, to: this.others(participants) }));
    if (begin.syncTo.length) await this.sendState(begin);
    return begin;
  }

  private async attempt(b: Begin, source: ShardFn, owned: boolean, started: number): Promise<DataParallelStepResult> {
    this.tried = this.handled.step === b.step ? this.tried + 1 : 1;
    this.handled = { step: b.step, attempt: b.attempt };
    this.log(`runs step ${b.step} attempt ${b.attempt} with ${b.participants.join(',')}`);
    this.purge(b);
    const W = b.participants.length;
    const rank = b.participants.indexOf(this.id);
    this.rank = rank;
    this.worldSize = W;
    this.notifyMembership();
    const live = () => this.checkAttempt(b);
    if (b.syncTo.includes(this.id)) await this.receiveState(b);
    else if (!this.synced || b.step !== this.steps) {
      throw new ProtocolError(`the leader began step ${b.step} without sending this replica the state of step ${b.step} (it holds ${this.synced ? `step ${this.steps}` : 'none'})`);
    }
    live();

    const computeStart = now();
    const shard = await source({ step: b.step, rank, worldSize: W });
    let samples: number;
    let globalBatch: number;
    let loss = 0;
    let micro = { microBatches: 0, microBatchSize: 0 };
    try {
      samples = shard.x.shape[0] ?? 0;
      this.sendTo(this.others(b.participants), { type: 'shard', step: b.step, attempt: b.attempt, samples });
      globalBatch = await this.until(() => {
        live();
        let sum = samples;
        for (const id of this.others(b.participants)) {
          const m = this.inbox.get(`shard:${b.step}:${b.attempt}:${id}`);
          if (!m) return undefined;
          sum += (m.msg as { samples: number }).samples;
        }
        return sum;
      });
      if (globalBatch === 0) throw new DistributedError(`step ${b.step}: every replica passed an empty shard`);
      this.trainer.optimizer.zeroGrad();
      if (samples > 0) {
        const r = await this.trainer.computeGradients(shard.x, shard.y, { gradScale: samples / globalBatch });
        loss = r.loss;
        micro = { microBatches: r.microBatches, microBatchSize: r.microBatchSize };
      }
    } finally {
      if (owned) {
        shard.x.dispose();
        shard.y.dispose();
      }
    }
    live();
    const computeMs = now() - computeStart;

    let sums: Float32Array | null = null;
    if (W > 1) {
      sums = await this.readGradients();
      await ringAllReduce(sums, this.plan!, rank, W, this.ringLink(b));
    }
    const leader = b.participants[0]!;
    const lossSum = loss * samples;
    if (leader === this.id) await this.commitAsLeader(b, lossSum, globalBatch);
    else this.sendTo([leader], { type: 'done', step: b.step, attempt: b.attempt, lossSum });
    const commit = await this.until(() => {
      // A commit that arrived stands even if someone has left since.
      const c = this.inbox.get(`commit:${b.step}:${b.attempt}:`);
      if (c) return c;
      live();
      return undefined;
    });
    this.log(`step ${b.step} attempt ${b.attempt} committed`);
    if (commit.from !== leader) throw new ProtocolError(`member ${commit.from} sent a commit; the leader of step ${b.step} is member ${leader}`);

    // Committed: from here on nothing waits, so the update is applied whole.
    if (sums) this.writeGradients(sums);
    this.trainer.applyGradients();
    this.steps = b.step + 1;
    this.trainer.steps = this.steps;
    this.lastSamplesPerSecond = computeMs > 0 ? (samples * 1000) / computeMs : 0;
    const ms = now() - started;
    const c = commit.msg as Commit;
    return {
      step: b.step,
      loss: c.loss,
      globalBatch: c.globalBatch,
      samples,
      rank,
      worldSize: W,
      attempts: this.tried,
      ...micro,
      ms,
      computeMs,
      communicationMs: ms - computeMs,
      bytesSent: this.bytesSent,
      bytesReceived: this.bytesReceived,
    };
  }

  /** Throws if attempt `b` can no longer complete: this replica failed, a participant left, or a newer attempt began. */
  private checkAttempt(b: Begin): void {
    if (this.failure) throw this.failure;
    const alive = new Set(this.view.members.map((m) => m.id));
    const gone = b.participants.filter((id) => !alive.has(id));
    if (gone.length) throw new Aborted(`member ${gone.join(', ')} left`);
    const l = this.latestBegin;
    if (l && l.attempt > b.attempt && l.participants.includes(this.id)) throw new Aborted(`the leader began attempt ${l.attempt} of step ${l.step}`);
  }

  private async commitAsLeader(b: Begin, ownLossSum: number, globalBatch: number): Promise<void> {
    const lossSum = await this.until(() => {
      let sum = ownLossSum;
      for (const id of this.others(b.participants)) {
        const m = this.inbox.get(`done:${b.step}:${b.attempt}:${id}`);
        if (!m) {
          this.checkAttempt(b);
          return undefined;
        }
        sum += (m.msg as { lossSum: number }).lossSum;
      }
      return sum;
    });
    // To every participant, this replica included: the hub relays it to all of them at once.
    this.sendTo(b.participants, { type: 'commit', step: b.step, attempt: b.attempt, loss: lossSum / globalBatch, globalBatch });
  }

  private ringLink(b: Begin): RingLink {
    const W = b.participants.length;
    const rank = b.participants.indexOf(this.id);
    const next = b.participants[(rank + 1) % W]!;
    const prev = b.participants[(rank + W - 1) % W]!;
    const plan = this.plan!;
    return {
      send: (phase: Phase, bucket: number, offset: number, values: Float32Array) => {
        const count = values.length;
        this.sendTo([next], { type: 'grad', step: b.step, attempt: b.attempt, phase, bucket, offset, count, tensors: plan.segments(bucket, offset, count) }, values);
      },
      receive: (phase: Phase, bucket: number, offset: number, count: number) =>
        this.until(() => {
          const m = this.inbox.get(`grad:${b.step}:${b.attempt}:${phase}:${bucket}:${offset}`);
          if (!m) {
            this.checkAttempt(b);
            return undefined;
          }
          if (m.from !== prev || (m.msg as { count: number }).count !== count) {
            throw new ProtocolError(`member ${m.from} sent ${count === (m.msg as { count: number }).count ? '' : 'a wrongly sized '}part [${offset}, +${count}) of bucket ${bucket}; it was due from member ${prev}`);
          }
          return floats(m.payload);
        }),
    };
  }

  /** Every parameter's gradient, end to end in layout order (zeros where a parameter has none). */
  private async readGradients(): Promise<Float32Array> {
    const flat = new Float32Array(this.plan!.total);
    const arrays = await Promise.all(this.params.map((p) => p.grad?.toArray()));
    arrays.forEach((a, i) => a && flat.set(a, this.plan!.offsets[i]!));
    return flat;
  }

  private writeGradients(flat: Float32Array): void {
    this.params.forEach((p, i) => {
      const start = this.plan!.offsets[i]!;
      p.grad?.dispose();
      p.grad = tensor(flat.subarray(start, start + p.size), p.shape);
    });
  }

  // ---- the state of replicas that join ----

  private async sendState(b: Begin): Promise<void> {
    const bytes = await saveCheckpoint({ model: this.trainer.model, optimizer: this.trainer.optimizer, progress: { step: b.step } });
    const size = this.plan!.partElements * 4;
    const parts = Math.ceil(bytes.byteLength / size);
    for (let part = 0; part < parts; part++) {
      this.sendTo(b.syncTo, { type: 'sync', step: b.step, attempt: b.attempt, part, parts, bytes: bytes.byteLength }, bytes.subarray(part * size, (part + 1) * size));
    }
  }

  private async receiveState(b: Begin): Promise<void> {
    const leader = b.participants[0]!;
    const limit = this.maxStateBytes();
    const parts = await this.until(() => {
      this.checkAttempt(b);
      const first = this.inbox.get(`sync:${b.step}:${b.attempt}:0`);
      if (!first) return undefined;
      const { parts, bytes } = first.msg as { parts: number; bytes: number };
      if (bytes > limit) throw new ProtocolError(`the leader sent a state of ${bytes.toLocaleString('en')} bytes; this model's is at most ${limit.toLocaleString('en')}`);
      const got: Uint8Array[] = [];
      for (let i = 0; i < parts; i++) {
        const m = this.inbox.get(`sync:${b.step}:${b.attempt}:${i}`);
        if (!m) return undefined;
        const h = m.msg as { parts: number; bytes: number };
        if (m.from !== leader || h.parts !== parts || h.bytes !== bytes) throw new ProtocolError(`member ${m.from} sent a state part that does not belong to the leader's state`);
        got.push(m.payload);
      }
      const total = got.reduce((n, p) => n + p.byteLength, 0);
      if (total !== bytes) throw new ProtocolError(`the leader's state has ${total} bytes in its parts but declares ${bytes}`);
      return got;
    });
    const bytes = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
    let at = 0;
    for (const p of parts) {
      bytes.set(p, at);
      at += p.byteLength;
    }
    try {
      loadCheckpoint(bytes, { model: this.trainer.model, optimizer: this.trainer.optimizer });
    } catch (e) {
      throw new ProtocolError(`the state the leader sent does not fit this replica's model and optimizer: ${(e as Error).message}`);
    }
    this.steps = b.step;
    this.trainer.steps = b.step;
    this.synced = true;
  }

  /** The most a state (checkpoint) of this model can take: parameters, buffers and up to two optimizer states each. */
  private maxStateBytes(): number {
    const elements = Object.values(this.trainer.model.stateDict()).reduce((n, t) => n + t.size, 0);
    return elements * 4 * 3 + (1 << 20);
  }

  private purge(b: Begin): void {
    for (const [k, m] of this.inbox) if (m.attempt < b.attempt) this.inbox.delete(k);
  }

  private others(ids: number[]): number[] {
    return ids.filter((id) => id !== this.id);
  }
}

function keyOf(m: Exclude<Relayed, { type: 'ready' | 'begin' }>, from: number): string {
  const at = `${m.type}:${m.step}:${m.attempt}:`;
  switch (m.type) {
    case 'grad':
      return `${at}${m.phase}:${m.bucket}:${m.offset}`;
    case 'sync':
      return `${at}${m.part}`;
    case 'commit':
      return at;
    default:
      return `${at}${from}`;
  }
}

function now(): number {
  return globalThis.performance?.now() ?? Date.now();
}

