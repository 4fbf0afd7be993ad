// One attempt of a step, as a participant sees it (the leader included): receive the state if it
// is sent, take this replica's shard, exchange shard sizes, compute the gradients scaled by
// shard / global batch, sum them around the ring, tell the leader ("done"; the leader commits),
// and on the commit, and only then, apply the update. If the attempt can no longer complete (a
// participant left, or a newer attempt began) it throws Aborted and nothing is applied.

import { tensor } from '../creation';
import type { Tensor } from '../tensor';
import { DistributedError, ProtocolError } from './errors';
import { floats } from './frame';
import { commit } from './leader';
import type { Begin } from './messages';
import type { Replica } from './replica';
import { ringAllReduce, type Phase, type RingLink } from './ring';
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

/** Run attempt `b` of a step that started at `started` (ms); `owned`: dispose the shard's tensors. */
export async function runAttempt(r: Replica, b: Begin, source: ShardFn, owned: boolean, started: number): Promise<DataParallelStepResult> {
  const { trainer, link, mailbox } = r;
  r.tried = r.handled.step === b.step ? r.tried + 1 : 1;
  r.handled = { step: b.step, attempt: b.attempt };
  r.log(`runs step ${b.step} attempt ${b.attempt} with ${b.participants.join(',')}`);
  mailbox.dropBefore(b.attempt);
  const W = b.participants.length;
  const rank = b.participants.indexOf(r.id);
  r.rank = rank;
  r.worldSize = W;
  r.notifyMembership();
  const live = () => r.checkAttempt(b);
  if (b.syncTo.includes(r.id)) await receiveState(r, b);
  else if (!r.synced || b.step !== r.steps) {
    throw new ProtocolError(`the leader began step ${b.step} without sending this replica the state of step ${b.step} (it holds ${r.synced ? `step ${r.steps}` : 'none'})`);
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
    link.sendTo(r.others(b.participants), { type: 'shard', step: b.step, attempt: b.attempt, samples });
    globalBatch = await link.until(() => {
      live();
      let sum = samples;
      for (const id of r.others(b.participants)) {
        const m = mailbox.shard(b, id);
        if (!m) return undefined;
        sum += m.msg.samples;
      }
      return sum;
    });
    if (globalBatch === 0) throw new DistributedError(`step ${b.step}: every replica passed an empty shard`);
    trainer.optimizer.zeroGrad();
    if (samples > 0) {
      const g = await trainer.computeGradients(shard.x, shard.y, { gradScale: samples / globalBatch });
      loss = g.loss;
      micro = { microBatches: g.microBatches, microBatchSize: g.microBatchSize };
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
    sums = await readGradients(r);
    await ringAllReduce(sums, link.plan!, rank, W, ringLink(r, b));
  }
  const leader = b.participants[0]!;
  const lossSum = loss * samples;
  if (leader === r.id) await commit(r, b, lossSum, globalBatch);
  else link.sendTo([leader], { type: 'done', step: b.step, attempt: b.attempt, lossSum });
  const committed = await link.until(() => {
    // A commit that arrived stands even if someone has left since.
    const c = mailbox.commit(b);
    if (c) return c;
    live();
    return undefined;
  });
  r.log(`step ${b.step} attempt ${b.attempt} committed`);
  if (committed.from !== leader) throw new ProtocolError(`member ${committed.from} sent a commit; the leader of step ${b.step} is member ${leader}`);

  // Committed: from here on nothing waits, so the update is applied whole.
  if (sums) writeGradients(r, sums);
  trainer.applyGradients();
  r.steps = b.step + 1;
  trainer.steps = r.steps;
  r.lastSamplesPerSecond = computeMs > 0 ? (samples * 1000) / computeMs : 0;
  const ms = now() - started;
  return {
    step: b.step,
    loss: committed.msg.loss,
    globalBatch: committed.msg.globalBatch,
    samples,
    rank,
    worldSize: W,
    attempts: r.tried,
    ...micro,
    ms,
    computeMs,
    communicationMs: ms - computeMs,
    bytesSent: link.bytesSent,
    bytesReceived: link.bytesReceived,
  };
}

/** The ring's messages of attempt `b`: gradient parts to the next rank, from the previous one. */
function ringLink(r: Replica, b: Begin): RingLink {
  const W = b.participants.length;
  const rank = b.participants.indexOf(r.id);
  const next = b.participants[(rank + 1) % W]!;
  const prev = b.participants[(rank + W - 1) % W]!;
  const plan = r.link.plan!;
  return {
    send: (phase: Phase, bucket: number, offset: number, values: Float32Array) => {
      const count = values.length;
      r.link.sendTo([next], { type: 'grad', step: b.step, attempt: b.attempt, phase, bucket, offset, count, tensors: plan.segments(bucket, offset, count) }, values);
    },
    receive: (phase: Phase, bucket: number, offset: number, count: number) =>
      r.link.until(() => {
        const m = r.mailbox.grad(b, phase, bucket, offset);
        if (!m) {
          r.checkAttempt(b);
          return undefined;
        }
        if (m.from !== prev || m.msg.count !== count) {
          throw new ProtocolError(`member ${m.from} sent ${count === m.msg.count ? '' : 'a wrongly sized '}part [${offset}, +${count}) of bucket ${bucket}; it was due from member ${prev}`);
        }
        return floats(m.payload);
      }),
  };
}

/** Every parameter's gradient, end to end in layout order (zeros where a parameter has none). */
async function readGradients(r: Replica): Promise<Float32Array> {
  const plan = r.link.plan!;
  const flat = new Float32Array(plan.total);
  const arrays = await Promise.all(r.params.map((p) => p.grad?.toArray()));
  arrays.forEach((a, i) => a && flat.set(a, plan.offsets[i]!));
  return flat;
}

function writeGradients(r: Replica, flat: Float32Array): void {
  const plan = r.link.plan!;
  r.params.forEach((p, i) => {
    const start = plan.offsets[i]!;
    p.grad?.dispose();
    p.grad = tensor(flat.subarray(start, start + p.size), p.shape);
  });
}

export function now(): number {
  return globalThis.performance?.now() ?? Date.now();
}
