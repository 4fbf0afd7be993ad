// DataParallel: one replica of a data-parallel session. Replicas train one model together on
// shards of a global batch, in one of two sync modes:
//   - synchronous (the default, `sync: { every: 1 }`): each step, each replica computes the
//     gradients of its shard, the gradients are summed across replicas by a ring all-reduce, and
//     every replica applies the same update: one device training on the global batch;
//   - rounds of local steps (`sync: { every: H, outer }`, DiLoCo): each replica takes H optimizer
//     steps on its own shards, then the replicas average their parameter deltas and apply one outer
//     optimizer step (round.ts): H times fewer syncs.
//
// A sync, as every replica sees it:
//   1. "ready": I am at the start of sync s (and hold the session's state, or need it).
//   2. The leader (rank 0) waits until every replica that holds the state is ready, then sends
//      "begin" (sync, attempt, participants in rank order, who must be sent the state) and the state
//      itself (a webgrad checkpoint) to replicas that joined since the last sync.
//   3. Each participant computes (its shard's gradients; or its round's local steps), tells the
//      others its sample count ("shard") and how its ring messages go.
//   4. Ring all-reduce (all-reduce.ts, ring.ts) over the peer links (WebRTC) or through the hub;
//      then "done" to the leader, which sends "commit" to all participants in one message that the
//      hub relays to all of them at once (itself included).
//   5. On "commit", and only then, each applies the update.
// If a participant leaves, times out or holds the attempt up past the step's deadline (the hub
// drops it), or a peer link it needs fails, before the commit, the attempt is abandoned everywhere
// (nothing applied) and the others run it again as a new attempt: re-sharded among themselves in
// synchronous mode, with the round's remaining deltas otherwise. A replica that joins waits for
// the next sync (or round); one that holds the state but is not ready for a sync by the deadline
// is left out of it and sent the state when it is.
//
// Where each part lives: this file, the public class and the loop of attempts; replica.ts, the
// protocol state the parts share; replica-link.ts, the connection to the hub; peer-links.ts and
// webrtc.ts, the direct links; session-view.ts, what the replica knows of the session;
// mailbox.ts, messages waiting to be used; leader.ts, steps 2 and 4's commit; attempt.ts, what
// every attempt does; sync-step.ts and round.ts, the two modes; all-reduce.ts, ring.ts, sums.ts
// and wire.ts, the all-reduce; state-transfer.ts, the state sent to joiners.

import { now } from '../clock';
import type { Trainer } from '../train/trainer';
import type { Tensor } from '../tensor';
import { enterAttempt, type DataParallelStepResult, type ShardFn } from './attempt';
import { DistributedError } from './errors';
import { lead } from './leader';
import { MAX_EVERY, type Begin, type Ready, type SyncSettings } from './messages';
import type { PeerConnector } from './peer-link';
import { Aborted, Replica } from './replica';
import { Rounds } from './round';
import type { Membership, PeerInfo } from './session-view';
import type { Reduction } from './sums';
import { synchronousStep } from './sync-step';
import type { Transport } from './transport';
import { getRTCPeerConnection, WebRTCConnector, type WebRTCOptions } from './webrtc';
import type { WireFormat } from './wire';

export type { DataParallelStepResult, ShardFn, ShardPlace } from './attempt';
export type { Membership, PeerInfo } from './session-view';

export interface SyncOptions {
  /** Local optimizer steps between syncs (default 1). */
  every?: number;
  /**
   * The outer optimizer of rounds of local steps (DiLoCo): SGD on the averaged parameter delta,
   * with momentum and Nesterov momentum (DiLoCo's: lr 0.7, momentum 0.9, nesterov). Default with
   * `every` > 1: lr 1, no momentum (the replicas' parameters are averaged).
   */
  outer?: { lr: number; momentum?: number; nesterov?: boolean };
}

export interface DataParallelOptions {
  trainer: Trainer;
  transport: Transport;
  /** How the other replicas see this one (default "replica"). */
  name?: string;
  /** The session's first step waits until this many replicas are ready (default 1). */
  minReplicas?: number;
  /** Settings every replica must share (global batch size, data seed, …): a replica with others is refused. */
  agreement?: Record<string, string | number | boolean>;
  /** How often, and how, the replicas sync (default: every step, synchronous). Every replica must use the same. */
  sync?: SyncOptions;
  /** How values travel in the all-reduce: 'f32' (exact, default) or 'f16' (half the bytes, with error feedback). Every replica must use the same. */
  wire?: WireFormat;
  /**
   * Direct links between replicas for the all-reduce: 'webrtc' (default: RTCDataChannel; in Node,
   * the node-datachannel package), 'relay' (none: everything through the hub), or a PeerConnector.
   * A pair that cannot connect uses the relay.
   */
  links?: 'webrtc' | 'relay' | PeerConnector;
  /** WebRTC settings: STUN/TURN servers (none by default: replicas on one machine or network), the connection timeout. */
  webrtc?: WebRTCOptions;
  /**
   * Where the sums are added, in the same order and with the same bits either way: 'cpu' (default:
   * one readback of the contribution, additions in a Float32Array, one upload of the sums) or 'gpu'
   * (the vector stays on the GPU: a kernel adds each received chunk; each chunk sent onward is read
   * back). On SwiftShader 'gpu' took 1.2–2× as long per step for the MNIST MLP (sums.ts).
   */
  reduce?: Reduction;
  /** Where to describe the protocol's decisions (membership, links, begins, aborted attempts, commits): for debugging a session. */
  log?: (line: string) => void;
}

export class DataParallel {
  readonly trainer: Trainer;
  /** Called when replicas join or leave, and at the start of every step (with fresh speeds). */
  onMembershipChange: ((m: Membership) => void) | null = null;

  private readonly replica: Replica;
  private readonly rounds: Rounds | null;
  private readonly joined: Promise<void>;
  private busy = false;

  constructor(opts: DataParallelOptions) {
    this.trainer = opts.trainer;
    if (this.trainer.mixed.precision !== 'f32') {
      // Loss scaling decides per replica whether to skip an update and how to rescale: replicas would part ways.
      throw new DistributedError(
        `DataParallel: a Trainer with precision '${this.trainer.mixed.precision}' is not supported yet (each replica would skip ` +
          "updates and scale its loss on its own); use precision 'f32'",
      );
    }
    const settings = syncSettings(opts);
    const reduce = opts.reduce ?? 'cpu';
    if (reduce !== 'gpu' && reduce !== 'cpu') throw new DistributedError(`DataParallel: reduce is ${JSON.stringify(reduce)}; expected 'gpu' or 'cpu'`);
    const name = opts.name ?? 'replica';
    const log = opts.log;
    const self = () => this.replica.id;
    this.replica = new Replica(
      this.trainer,
      opts.transport,
      settings,
      reduce,
      null,
      opts.minReplicas ?? 1,
      (m) => this.onMembershipChange?.(m),
      log ? (line) => log(`${name} #${self()}: ${line}`) : () => undefined,
    );
    const rounds = settings.every > 1 || settings.outer !== null;
    this.rounds = rounds ? new Rounds(this.replica, settings) : null;
    this.replica.outer = this.rounds?.outer ?? null;
    const replica = this.replica;
    this.joined = (async () => {
      replica.peers.connector = await peerConnector(opts, replica.log);
      await replica.link.join(name, opts.agreement ?? {});
    })();
    this.joined.catch(() => undefined); // step() reports it
  }

  /** Steps applied so far (local steps included; this replica's count once it holds the session's state, the trainer's at first). */
  get steps(): number {
    return this.replica.steps;
  }

  /** This replica's rank in the latest attempt (-1 before its first). */
  get rank(): number {
    return this.replica.rank;
  }

  /** Replicas in the latest attempt (0 before the first). */
  get worldSize(): number {
    return this.replica.worldSize;
  }

  /** The members of the session as this replica knows them, in join order. */
  get peers(): PeerInfo[] {
    return this.replica.view.peers(this.replica.id, this.replica.peers.describe());
  }

  /** Resolves once the hub has admitted this replica (step() waits for it too). */
  ready(): Promise<void> {
    return this.joined;
  }

  /**
   * One step. Pass this replica's shard (x, y), or a function that returns the shard for a given
   * step, rank and world size (it is called again if the step is re-run with fewer replicas).
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
      const r = this.replica;
      r.link.bytesSent = 0;
      r.link.bytesReceived = 0;
      const result = this.rounds ? await this.roundStep(source, owned) : await this.synchronousStep(source, owned);
      // The trainer's automatic checkpoints (if it keeps them), as after a step on one device.
      await this.trainer.checkpoints?.afterStep(this.trainer);
      return result;
    } catch (e) {
      this.replica.link.fail(e instanceof DistributedError ? e : new DistributedError(`this replica left the session after an error: ${(e as Error).message}`));
      throw e;
    } finally {
      this.busy = false;
    }
  }

  /** Leave the session (the others go on without this replica). */
  close(): void {
    const link = this.replica.link;
    if (!link.failure) link.toHub({ type: 'leave' });
    link.fail(new DistributedError('this replica left the session'));
    this.replica.peers.close();
    this.rounds?.dispose();
  }

  /** Attempts of one synchronous step until one is committed. */
  private async synchronousStep(source: ShardFn, owned: boolean): Promise<DataParallelStepResult> {
    const r = this.replica;
    const started = now();
    for (;;) {
      const begin = await this.nextBegin();
      try {
        return await synchronousStep(r, begin, source, owned, started);
      } catch (e) {
        if (!(e instanceof Aborted)) throw e;
        r.log(`step ${begin.step} attempt ${begin.attempt} aborted: ${e.message}`);
        this.trainer.optimizer.zeroGrad();
      }
    }
  }

  /** One local step of a round; the round's last one also syncs (its sync re-run until committed). */
  private async roundStep(source: ShardFn, owned: boolean): Promise<DataParallelStepResult> {
    const r = this.replica;
    const rounds = this.rounds!;
    const started = now();
    for (;;) {
      if (!rounds.current) {
        const b = await this.nextBegin();
        try {
          await enterAttempt(r, b);
        } catch (e) {
          if (!(e instanceof Aborted)) throw e;
          r.log(`step ${b.step} attempt ${b.attempt} aborted before its local steps: ${e.message}`);
          continue;
        }
        rounds.start(b);
      }
      const local = rounds.syncing ? null : await rounds.localStep(source, owned, started);
      if (local && !rounds.syncing) return local;
      const synced = await this.syncRound();
      if (!synced) continue; // the session went on without this replica's round: take part in the next
      const ms = now() - started;
      const computeMs = local?.computeMs ?? 0;
      return {
        step: r.steps - 1,
        samples: local?.samples ?? 0,
        microBatches: local?.microBatches ?? 0,
        microBatchSize: local?.microBatchSize ?? 0,
        loss: synced.loss,
        globalBatch: synced.samples,
        rank: r.rank,
        worldSize: r.worldSize,
        synced: true,
        attempts: r.tried,
        skipped: synced.skipped,
        route: synced.route,
        ms,
        computeMs,
        communicationMs: ms - computeMs,
        bytesSent: r.link.bytesSent,
        bytesReceived: r.link.bytesReceived,
      };
    }
  }

  /** The round's sync, re-run among the remaining participants until committed; null if the session went on without this round. */
  private async syncRound(): Promise<Awaited<ReturnType<Rounds['sync']>> | null> {
    const r = this.replica;
    const rounds = this.rounds!;
    let b = rounds.current!.begin;
    for (;;) {
      try {
        return await rounds.sync(b);
      } catch (e) {
        if (!(e instanceof Aborted)) throw e;
        r.log(`step ${b.step} attempt ${b.attempt} aborted: ${e.message}`);
      }
      const round = rounds.current!;
      for (;;) {
        b = await this.nextBegin(round.begin);
        if (b.step !== round.k || b.syncTo.includes(r.id)) {
          r.log(`the session went on without this replica's round (step ${round.k}): it takes part from step ${b.step}`);
          rounds.drop();
          return null;
        }
        try {
          await enterAttempt(r, b);
          break;
        } catch (e) {
          if (!(e instanceof Aborted)) throw e;
          r.log(`step ${b.step} attempt ${b.attempt} aborted: ${e.message}`);
        }
      }
    }
  }

  /** The begin of this replica's next attempt: from the leader, or made here if this replica leads (`rerun`: the attempt whose sync is run again). */
  private async nextBegin(rerun: Begin | null = null): Promise<Begin> {
    const r = this.replica;
    for (;;) {
      const leader = r.view.leader;
      this.announceReady();
      if (leader === r.id) {
        const b = await lead(r, rerun);
        if (b) return b;
        continue;
      }
      const next = await r.link.until((): Begin | 'leader changed' | undefined => {
        if (r.view.leader !== leader) return 'leader changed';
        const b = r.view.latestBegin;
        return b && b.participants.includes(r.id) && b.attempt > r.handled.attempt ? b : undefined;
      });
      if (next !== 'leader changed') return next;
    }
  }

  private announceReady(): void {
    const r = this.replica;
    const ready: Ready = { type: 'ready', step: r.syncs, synced: r.synced, samplesPerSecond: r.lastSamplesPerSecond };
    r.view.ready(r.id, ready);
    r.link.sendTo(r.others(r.view.ids), ready);
  }
}

/** The session's sync settings from the options, checked. */
function syncSettings(opts: DataParallelOptions): SyncSettings {
  const every = opts.sync?.every ?? 1;
  if (!Number.isSafeInteger(every) || every < 1 || every > MAX_EVERY) throw new DistributedError(`DataParallel: sync.every is ${every}; expected an integer from 1 to ${MAX_EVERY}`);
  const wire = opts.wire ?? 'f32';
  if (wire !== 'f32' && wire !== 'f16') throw new DistributedError(`DataParallel: wire is ${JSON.stringify(wire)}; expected 'f32' or 'f16'`);
  const o = opts.sync?.outer;
  if (!o) return { every, outer: null, wire };
  const momentum = o.momentum ?? 0;
  if (!(Number.isFinite(o.lr) && o.lr >= 0)) throw new DistributedError(`DataParallel: sync.outer.lr is ${o.lr}; expected a finite number ≥ 0`);
  if (!(momentum >= 0 && momentum < 1)) throw new DistributedError(`DataParallel: sync.outer.momentum is ${momentum}; expected a number in [0, 1)`);
  if (o.nesterov && momentum === 0) throw new DistributedError('DataParallel: sync.outer.nesterov needs momentum > 0');
  return { every, outer: { lr: o.lr, momentum, nesterov: o.nesterov ?? false }, wire };
}

/** The peer links' connector, or null (said in the log) where there is none. */
async function peerConnector(opts: DataParallelOptions, log: (line: string) => void): Promise<PeerConnector | null> {
  const links = opts.links ?? 'webrtc';
  if (links === 'relay') return null;
  if (links !== 'webrtc') return links;
  try {
    return new WebRTCConnector({ RTCPeerConnection: await getRTCPeerConnection(), ...opts.webrtc });
  } catch (e) {
    log(`no WebRTC here (${(e as Error).message}): the ring messages go through the coordinator`);
    return null;
  }
}
