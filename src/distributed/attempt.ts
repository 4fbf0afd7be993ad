// What every attempt of a sync does, in either mode (synchronous steps: sync-step.ts; rounds of
// local steps: round.ts), as a participant sees it (the leader included): take its place and
// receive the state if it is sent; tell the others its sample count and how its ring messages go;
// and, once it holds the sums, tell the leader ("done"; the leader commits) and wait for the
// commit, after which, and only after which, the mode applies the update. If the attempt can no
// longer complete (a participant left, the hub gave up on it, or a newer attempt began) these
// throw Aborted and nothing is applied.

import type { Tensor } from '../tensor';
import { ProtocolError } from './errors';
import type { Held } from './mailbox';
import { commit } from './leader';
import type { Begin, Commit, Route } from './messages';
import type { Replica } from './replica';
import { receiveState } from './state-transfer';

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

export interface DataParallelStepResult {
  /** Index of the step just applied (0-based): of the session's steps, local steps included. */
  step: number;
  /**
   * Mean loss: over the global batch in synchronous mode; in rounds of local steps, over this
   * replica's shard, except at the step that ends a round, where it is over every replica's
   * samples of the round.
   */
  loss: number;
  /** The samples the loss is over. */
  globalBatch: number;
  /** This replica's shard size. */
  samples: number;
  rank: number;
  worldSize: number;
  /** Whether the step ended with a sync of the replicas (every step in synchronous mode, every `every`-th otherwise). */
  synced: boolean;
  /** 1, plus the attempts of the sync abandoned because a replica left or timed out. */
  attempts: number;
  /**
   * The update was skipped on every replica: a replica's loss or gradients (or, in a round, a local
   * step's) were not finite (the loss is then NaN). The Trainer reports it as for one device.
   */
  skipped: boolean;
  /** How this replica's ring messages went to the next rank in the sync: over the peer link, through the coordinator, or none (no sync, or alone). */
  route: Route | null;
  /** How this replica's Trainer split its shard (0 micro-batches for an empty shard). */
  microBatches: number;
  microBatchSize: number;
  /** Wall time of the step; of it, computing this replica's gradients (the rest is communication and waiting). */
  ms: number;
  computeMs: number;
  communicationMs: number;
  /** Bytes this replica sent and received during the step (every message: the hub's, the peer links', the ring's). */
  bytesSent: number;
  bytesReceived: number;
}

/**
 * Take part in attempt `b`: count it, take this replica's rank, and receive the session's state
 * if the leader sends it (else check this replica holds the state of the attempt's sync).
 */
export async function enterAttempt(r: Replica, b: Begin): Promise<void> {
  r.tried = r.handled.step === b.step ? r.tried + 1 : 1;
  r.handled = { step: b.step, attempt: b.attempt };
  r.running = b;
  r.log(`runs step ${b.step} attempt ${b.attempt} with ${b.participants.join(',')}`);
  r.mailbox.dropBefore(b.attempt);
  r.rank = b.participants.indexOf(r.id);
  r.worldSize = b.participants.length;
  r.notifyMembership();
  if (b.syncTo.includes(r.id)) await receiveState(r, b);
  else if (!r.synced || b.step !== r.syncs) {
    throw new ProtocolError(`the leader began step ${b.step} without sending this replica the state of step ${b.step} (it holds ${r.synced ? `step ${r.syncs}` : 'none'})`);
  }
  r.checkAttempt(b);
}

/** The route of this replica's ring messages in attempt `b`: its peer link to the next rank if it has one. */
export function ringRoute(r: Replica, b: Begin): Route {
  const W = b.participants.length;
  if (W === 1) return 'relay';
  return r.peers.route(b.participants[(b.participants.indexOf(r.id) + 1) % W]!);
}

/** Tell the other participants this replica's sample count and route; resolves with the sum of every participant's. */
export async function exchangeShards(r: Replica, b: Begin, samples: number, via: Route): Promise<number> {
  r.link.sendTo(r.others(b.participants), { type: 'shard', step: b.step, attempt: b.attempt, samples, via });
  const total = await r.link.until(() => {
    r.checkAttempt(b);
    let sum = samples;
    for (const id of r.others(b.participants)) {
      const m = r.mailbox.shard(b, id);
      if (!m) return undefined;
      sum += m.msg.samples;
    }
    return sum;
  });
  return total;
}

/**
 * This replica holds the complete sums: "done" to the leader (the leader, once every participant
 * is done, commits), then wait for the commit. Resolves with it; rejects with Aborted if the
 * attempt ends first.
 */
export async function awaitCommit(r: Replica, b: Begin, lossSum: number, finite: boolean, globalBatch: number): Promise<Held<Commit>> {
  const leader = b.participants[0]!;
  if (leader === r.id) await commit(r, b, finite ? lossSum : 0, finite, globalBatch);
  else r.link.sendTo([leader], { type: 'done', step: b.step, attempt: b.attempt, lossSum: finite ? lossSum : 0, finite });
  const committed = await r.link.until(() => {
    // A commit that arrived stands even if someone has left since.
    const c = r.mailbox.commit(b);
    if (c) return c;
    r.checkAttempt(b);
    return undefined;
  });
  r.log(`step ${b.step} attempt ${b.attempt} committed`);
  if (committed.from !== leader) throw new ProtocolError(`member ${committed.from} sent a commit; the leader of step ${b.step} is member ${leader}`);
  return committed;
}
