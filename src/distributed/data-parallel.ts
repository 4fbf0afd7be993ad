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
//
// Where each part lives: this file, the public class and the loop of attempts of a step;
// replica.ts, the protocol state the parts share; replica-link.ts, the connection to the hub;
// session-view.ts, what the replica knows of the session; mailbox.ts, messages waiting to be used;
// leader.ts, steps 2 and 4's commit; attempt.ts, steps 3 to 5; state-transfer.ts, the state sent
// to joiners.

import type { Trainer } from '../train/trainer';
import type { Tensor } from '../tensor';
import { now, runAttempt, type DataParallelStepResult, type ShardFn } from './attempt';
import { DistributedError } from './errors';
import { lead } from './leader';
import type { Begin, Ready } from './messages';
import { Aborted, Replica } from './replica';
import type { Membership, PeerInfo } from './session-view';
import type { Transport } from './transport';

export type { DataParallelStepResult, ShardFn, ShardPlace } from './attempt';
export type { Membership, PeerInfo } from './session-view';

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

export class DataParallel {
  readonly trainer: Trainer;
  /** Called when replicas join or leave, and at the start of every step (with fresh speeds). */
  onMembershipChange: ((m: Membership) => void) | null = null;

  private readonly replica: Replica;
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
    const name = opts.name ?? 'replica';
    const log = opts.log;
    this.replica = new Replica(
      this.trainer,
      opts.transport,
      opts.minReplicas ?? 1,
      (m) => this.onMembershipChange?.(m),
      log ? (line) => log(`${name} #${this.replica.id}: ${line}`) : () => undefined,
    );
    this.joined = this.replica.link.join(name, opts.agreement ?? {});
    this.joined.catch(() => undefined); // step() reports it
  }

  /** Global steps applied by the session so far (this replica's count once it holds the state; the trainer's steps at first). */
  get steps(): number {
    return this.replica.steps;
  }

  /** This replica's rank in the latest step (-1 before its first). */
  get rank(): number {
    return this.replica.rank;
  }

  /** Replicas in the latest step (0 before the first). */
  get worldSize(): number {
    return this.replica.worldSize;
  }

  /** The members of the session as this replica knows them, in join order. */
  get peers(): PeerInfo[] {
    return this.replica.view.peers(this.replica.id);
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
  }

  /** Attempts of one step until one is committed. */
  private async runStep(source: ShardFn, owned: boolean): Promise<DataParallelStepResult> {
    const r = this.replica;
    const started = now();
    r.link.bytesSent = 0;
    r.link.bytesReceived = 0;
    for (;;) {
      const begin = await this.nextBegin();
      let result: DataParallelStepResult;
      try {
        result = await runAttempt(r, begin, source, owned, started);
      } catch (e) {
        if (!(e instanceof Aborted)) throw e;
        r.log(`step ${begin.step} attempt ${begin.attempt} aborted: ${e.message}`);
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
    const r = this.replica;
    for (;;) {
      const leader = r.view.leader;
      this.announceReady();
      if (leader === r.id) {
        const b = await lead(r);
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
    const ready: Ready = { type: 'ready', step: r.steps, synced: r.synced, samplesPerSecond: r.lastSamplesPerSecond };
    r.view.ready(r.id, ready);
    r.link.sendTo(r.others(r.view.ids), ready);
  }
}
