// One attempt of a synchronous step (sync every step, no outer optimizer): the replicas' gradients
// are summed and every replica applies the same update, as one device on the global batch.
// Each participant takes its shard, exchanges shard sizes, computes its gradients scaled by
// shard / global batch, and its buckets enter the ring as soon as backward has produced their
// gradients (the last layers' first); once every bucket holds the sums and the leader has
// committed, the sums become the gradients and the optimizer steps.

import { now } from '../clock';
import { keep } from '../scope';
import { AllReduce } from './all-reduce';
import { awaitCommit, enterAttempt, exchangeShards, ringRoute, type DataParallelStepResult, type ShardFn } from './attempt';
import { DistributedError } from './errors';
import type { Begin } from './messages';
import type { Replica } from './replica';

/** Run attempt `b` of a synchronous step that started at `started` (ms); `owned`: dispose the shard's tensors. */
export async function synchronousStep(r: Replica, b: Begin, source: ShardFn, owned: boolean, started: number): Promise<DataParallelStepResult> {
  const { trainer } = r;
  await enterAttempt(r, b);
  const W = b.participants.length;
  const computeStart = now();
  const shard = await source({ step: b.step, rank: r.rank, worldSize: W });
  const via = ringRoute(r, b);
  let all: AllReduce | null = null;
  try {
    let loss = 0;
    let finite = true;
    let micro = { microBatches: 0, microBatchSize: 0 };
    let computeMs: number;
    let globalBatch: number;
    const samples = shard.x.shape[0] ?? 0;
    try {
      globalBatch = await exchangeShards(r, b, samples, via);
      if (globalBatch === 0) throw new DistributedError(`step ${b.step}: every replica passed an empty shard`);
      trainer.optimizer.zeroGrad();
      if (W > 1) all = new AllReduce(r, b, via, r.residual);
      const index = new Map(r.params.map((p, i) => [p, i]));
      if (samples > 0) {
        const g = await trainer.computeGradients(shard.x, shard.y, {
          gradScale: samples / globalBatch,
          // Each bucket goes on the wire as soon as backward has completed its gradients.
          onGradientReady: all ? (p) => all!.ready(index.get(p)!, p.grad) : undefined,
        });
        loss = g.loss;
        finite = !g.skipped;
        micro = { microBatches: g.microBatches, microBatchSize: g.microBatchSize };
      }
      computeMs = now() - computeStart;
      // Gradients are final (a re-run after running out of memory made new ones: take those where a bucket has not started).
      r.params.forEach((p, i) => all?.ready(i, p.grad));
      all?.allReady();
    } finally {
      if (owned) {
        shard.x.dispose();
        shard.y.dispose();
      }
    }
    await all?.done();
    const committed = await awaitCommit(r, b, loss * samples, finite, globalBatch);

    // Committed: from here on nothing waits, so the update is applied whole (or skipped on every replica).
    const skipped = committed.msg.skipped;
    if (skipped) {
      trainer.skipGradients(finite ? 'another replica\'s loss or gradients are not finite (so are the sums)' : `this replica's loss or gradients are not finite (loss ${loss})`);
    } else {
      if (all) {
        r.params.forEach((p, i) => {
          p.grad?.dispose();
          p.grad = keep(all!.sums.result(i));
        });
        r.residual = all.residual;
      }
      trainer.applyGradients();
    }
    r.syncs = b.step + 1;
    r.steps = r.syncs;
    trainer.steps = r.steps;
    r.lastSamplesPerSecond = computeMs > 0 ? (samples * 1000) / computeMs : 0;
    const ms = now() - started;
    return {
      step: b.step,
      loss: skipped ? NaN : committed.msg.loss,
      globalBatch: committed.msg.globalBatch,
      samples,
      rank: r.rank,
      worldSize: W,
      synced: true,
      attempts: r.tried,
      skipped,
      route: W > 1 ? via : null,
      ...micro,
      ms,
      computeMs,
      communicationMs: ms - computeMs,
      bytesSent: r.link.bytesSent,
      bytesReceived: r.link.bytesReceived,
    };
  } finally {
    all?.dispose();
  }
}
