// Low-communication training (DiLoCo, Douillard et al. 2023): a round is `every` local optimizer
// steps that each replica takes on its own shards, from the same parameters θ; then one sync, in
// which the replicas all-reduce their parameter deltas Δ = θ − θ_local (each weighted by its share
// of the round's samples) and every replica applies the same outer step to θ with the averaged
// delta as its gradient: SGD with (Nesterov) momentum, whose state every replica keeps alike. With
// `every: H` the replicas exchange H times fewer bytes than synchronous training.
//
// The round's attempt is begun at its start (it fixes the participants, their ranks for the
// shards, and sends joiners the state: θ, the inner optimizer's state, the outer momentum); the
// sync is its end. A participant lost during the sync makes the leader begin the sync again among
// the others, who keep their local work (their deltas are re-weighted among themselves); replicas
// that join wait for the next round. Nothing is applied before the commit, so nothing twice.

import { now } from '../clock';
import { contiguousCopy } from '../creation';
import { noGrad } from '../autograd/grad-mode';
import { copyView } from '../kernels/copy';
import { scale, sub } from '../ops/elementwise';
import { SGD } from '../optim/sgd';
import { keep, tidy } from '../scope';
import type { Tensor } from '../tensor';
import { AllReduce } from './all-reduce';
import { awaitCommit, exchangeShards, ringRoute, type DataParallelStepResult, type ShardFn } from './attempt';
import type { Begin, SyncSettings } from './messages';
import type { Replica } from './replica';

/** The round under way, as this replica runs it. */
interface Current {
  /** The attempt this replica's sync runs in (the round's begin, or the sync's re-run). */
  begin: Begin;
  /** The round's sync index. */
  k: number;
  /** θ at the start of the round. */
  anchor: Tensor[];
  localSteps: number;
  samples: number;
  lossSum: number;
}

export class Rounds {
  /** The outer optimizer: its momentum is part of the session's state. */
  readonly outer: SGD;
  current: Current | null = null;
  private readonly every: number;

  constructor(
    private readonly r: Replica,
    settings: SyncSettings,
  ) {
    const o = settings.outer ?? { lr: 1, momentum: 0, nesterov: false };
    this.every = settings.every;
    this.outer = new SGD(r.params, { lr: o.lr, momentum: o.momentum, nesterov: o.nesterov && o.momentum > 0 });
  }

  /** Whether this replica has taken every local step of its round and owes only the sync. */
  get syncing(): boolean {
    return !!this.current && this.current.localSteps >= this.every;
  }

  /** A round begins (the state, if sent, is loaded): remember θ. */
  start(b: Begin): void {
    this.drop();
    const anchor = noGrad(() => this.r.params.map((p) => keep(contiguousCopy(p, 'round anchor'))));
    this.current = { begin: b, k: b.step, anchor, localSteps: 0, samples: 0, lossSum: 0 };
  }

  /** One local step of the round: this replica's shard of the session's step, an update by the inner optimizer. */
  async localStep(source: ShardFn, owned: boolean, started: number): Promise<DataParallelStepResult> {
    const { r } = this;
    const c = this.current!;
    const step = c.k * this.every + c.localSteps;
    const computeStart = now();
    const shard = await source({ step, rank: r.rank, worldSize: r.worldSize });
    let loss = 0;
    let skipped = false;
    let micro = { microBatches: 0, microBatchSize: 0 };
    const samples = shard.x.shape[0] ?? 0;
    try {
      if (samples > 0) {
        const g = await r.trainer.computeGradients(shard.x, shard.y);
        // A local step with an inf or NaN loss or gradients updates nothing, as on one device.
        skipped = g.skipped;
        if (skipped) r.trainer.skipGradients(g.skipReason ?? 'the loss or the gradients are not finite');
        else r.trainer.applyGradients();
        loss = g.loss;
        micro = { microBatches: g.microBatches, microBatchSize: g.microBatchSize };
      }
    } finally {
      if (owned) {
        shard.x.dispose();
        shard.y.dispose();
      }
    }
    c.localSteps++;
    if (!skipped) {
      c.samples += samples;
      c.lossSum += loss * samples;
    }
    r.steps = step + 1;
    r.trainer.steps = r.steps;
    const computeMs = now() - computeStart;
    r.lastSamplesPerSecond = computeMs > 0 ? (samples * 1000) / computeMs : 0;
    const ms = now() - started;
    return {
      step,
      loss,
      globalBatch: samples,
      samples,
      rank: r.rank,
      worldSize: r.worldSize,
      synced: false,
      attempts: 1,
      skipped,
      route: null,
      ...micro,
      ms,
      computeMs,
      communicationMs: ms - computeMs,
      bytesSent: r.link.bytesSent,
      bytesReceived: r.link.bytesReceived,
    };
  }

  /**
   * The round's sync, in attempt `b` (entered already): all-reduce the weighted deltas, and on the
   * commit apply the outer step. Returns the committed loss and samples of the round, and the route.
   */
  async sync(b: Begin): Promise<{ loss: number; samples: number; skipped: boolean; route: DataParallelStepResult['route'] }> {
    const { r } = this;
    const c = this.current!;
    c.begin = b;
    const W = b.participants.length;
    const via = ringRoute(r, b);
    const total = await exchangeShards(r, b, c.samples, via);
    const all = new AllReduce(r, b, via, r.residual);
    const weight = total > 0 ? c.samples / total : 0;
    // Δ = (θ_start − θ) · weight: the fill takes what the deltas hold when it is called.
    const deltas = noGrad(() => tidy(() => r.params.map((p, i) => scale(sub(c.anchor[i]!, p), weight))));
    try {
      deltas.forEach((d, i) => all.ready(i, d));
      all.allReady();
      await all.done();
      // Local steps skip their non-finite updates, so the deltas are finite; a round whose every
      // local step was skipped (no samples anywhere) has nothing to apply.
      const committed = await awaitCommit(r, b, c.lossSum, total > 0, total);
      // Committed: θ back to the round's start, then one outer step with the averaged delta.
      r.params.forEach((p, i) => {
        copyView(c.anchor[i]!, p, 'outer step');
        p.grad?.dispose();
        p.grad = keep(all.sums.result(i));
      });
      if (!committed.msg.skipped) this.outer.step();
      this.outer.zeroGrad();
      r.residual = all.residual;
      r.syncs = b.step + 1;
      r.steps = r.syncs * this.every;
      r.trainer.steps = r.steps;
      this.drop();
      return { loss: committed.msg.skipped ? NaN : committed.msg.loss, samples: committed.msg.globalBatch, skipped: committed.msg.skipped, route: W > 1 ? via : null };
    } finally {
      for (const d of deltas) d.dispose();
      all.dispose();
    }
  }

  /** Forget the round under way (its local work is lost: the session went on without it). */
  drop(): void {
    for (const t of this.current?.anchor ?? []) t.dispose();
    this.current = null;
  }

  dispose(): void {
    this.drop();
    this.outer.dispose();
  }
}
