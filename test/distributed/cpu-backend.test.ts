// Data parallelism on the CPU backend (init({ backend: 'wasm' })), with a character-level GPT:
// its sequence targets take the Trainer's cross-entropy path that divides each replica's summed
// loss by the whole batch's counted targets, which the MLP classifiers of the other tests share
// only in part. Two in-process replicas must hold bit-identical parameters and equal one device on
// the global batch (1e-5) in synchronous mode, with the sums added on the CPU and by the backend's
// kernels (reduce: 'gpu'), and equal DiLoCo computed on one device in rounds of local steps (with
// f16 deltas, to their rounding).
// (test/distributed/local.test.ts runs on this backend too, in vitest's wasm project: the MLP.)

import { describe, expect, it } from 'vitest';
import { paramsOf, portTo, sameBits } from './session';
import { gpu, relErr, Rng, wg } from '../helpers';

const D = wg.distributed;
const V = 11;
const T = 8;
const BATCH = 7; // shards of 4 and 3 sequences (the rounds weigh their deltas by them)
const OUTER = { lr: 0.7, momentum: 0.9, nesterov: true };

function gptTrainer(): wg.Trainer {
  wg.manualSeed(1);
  const model = wg.models.gpt({ vocabSize: V, contextLength: T, layers: 1, heads: 2, dim: 16 });
  // SGD: equality to 1e-5 over several steps (Adam's division by √v magnifies float32 rounding).
  return new wg.Trainer({ model, optimizer: new wg.optim.SGD(model.parameters(), { lr: 0.5, momentum: 0.9 }), loss: 'cross-entropy' });
}

/** Sequences [start, start + count) of step's global batch: ids x and next ids y, int32 [count, T]. */
function sequences(step: number, start: number, count: number): { x: wg.Tensor; y: wg.Tensor } {
  const rng = new Rng(100 + step);
  const ids = Int32Array.from({ length: BATCH * (T + 1) }, () => rng.int(V));
  const x = new Int32Array(count * T);
  const y = new Int32Array(count * T);
  for (let s = 0; s < count; s++) {
    const row = ids.subarray((start + s) * (T + 1), (start + s + 1) * (T + 1));
    x.set(row.subarray(0, T), s * T);
    y.set(row.subarray(1), s * T);
  }
  return { x: wg.tensor(x, [count, T], { dtype: 'int32' }), y: wg.tensor(y, [count, T], { dtype: 'int32' }) };
}

const shard: wg.distributed.ShardFn = ({ step, rank, worldSize }) => {
  const { start, count } = D.shardRange(BATCH, rank, worldSize);
  return sequences(step, start, count);
};

/** Two replicas take `steps` steps together; their parameters after. */
async function together(steps: number, opts: Partial<wg.distributed.DataParallelOptions>): Promise<Float32Array[][]> {
  const hub = new D.Hub();
  const replicas = [0, 1].map(() => {
    const trainer = gptTrainer();
    return { trainer, dp: new D.DataParallel({ trainer, transport: portTo(hub), minReplicas: 2, links: 'relay', ...opts }) };
  });
  try {
    for (let i = 0; i < steps; i++) await Promise.all(replicas.map((r) => r.dp.step(shard)));
    expect(replicas.map((r) => r.dp.steps)).toEqual([steps, steps]);
    return await Promise.all(replicas.map((r) => paramsOf(r.trainer)));
  } finally {
    for (const r of replicas) {
      r.dp.close();
      r.trainer.optimizer.dispose();
      r.trainer.model.dispose();
    }
    hub.close();
  }
}

/** Steps [from, from + n) of `trainer` on sequences [start, start + count) of each global batch. */
async function trainOn(trainer: wg.Trainer, from: number, n: number, start: number, count: number): Promise<void> {
  for (let s = from; s < from + n; s++) {
    const { x, y } = sequences(s, start, count);
    await trainer.step(x, y);
    x.dispose();
    y.dispose();
  }
}

/** DiLoCo on one device: each round, both ranks take `every` steps of their shards from θ; the outer step takes the mean delta. */
async function referenceRounds(rounds: number, every: number): Promise<Float32Array[]> {
  const theta = gptTrainer();
  const outer = new wg.optim.SGD(theta.model.parameters(), OUTER);
  const ranks = [gptTrainer(), gptTrainer()];
  for (let k = 0; k < rounds; k++) {
    const start = await paramsOf(theta);
    const mean = start.map((p) => new Float64Array(p.length));
    for (const [r, t] of ranks.entries()) {
      const state = Object.fromEntries(t.model.namedParameters().map(([name, p], j) => [name, wg.tensor(start[j]!, p.shape)]));
      t.model.loadStateDict(state);
      for (const x of Object.values(state)) x.dispose();
      const { start: first, count } = D.shardRange(BATCH, r, 2);
      await trainOn(t, k * every, every, first, count);
      (await paramsOf(t)).forEach((p, j) => p.forEach((v, e) => (mean[j]![e]! += ((start[j]![e]! - v) * count) / BATCH)));
    }
    theta.model.parameters().forEach((p, j) => (p.grad = wg.tensor(Float32Array.from(mean[j]!), p.shape)));
    outer.step();
    outer.zeroGrad();
  }
  const out = await paramsOf(theta);
  for (const t of [theta, ...ranks]) {
    t.optimizer.dispose();
    t.model.dispose();
  }
  outer.dispose();
  return out;
}

function expectNear(got: Float32Array[], reference: Float32Array[], what: string): void {
  reference.forEach((p, i) => expect(relErr(got[i]!, p), `${what}: parameter ${i}`).toBeLessThan(1e-5));
}

describe('data parallelism on the CPU backend (a character-level GPT)', () => {
  for (const reduce of ['cpu', 'gpu'] as const) it(`two replicas, sums added ${reduce === 'cpu' ? 'in JavaScript' : "by the backend's kernels"}: bit-identical, equal to one device on the global batch`, async () => {
    expect((await gpu({ backend: 'wasm' })).backend).toBe('wasm');
    const [a, b] = await together(3, { reduce });
    expect(sameBits(a!, b!), 'the replicas differ').toBe(true);
    const one = gptTrainer();
    const before = await paramsOf(one);
    await trainOn(one, 0, 3, 0, BATCH);
    expectNear(a!, await paramsOf(one), 'vs one device');
    // The steps moved the parameters well beyond the tolerance (the check could fail).
    expect(relErr(a![0]!, before[0]!)).toBeGreaterThan(1e-2);
    one.optimizer.dispose();
    one.model.dispose();
  });

  it('rounds of 2 local steps with an outer Nesterov step: bit-identical, equal to DiLoCo on one device (f16 deltas: to their rounding)', async () => {
    await gpu({ backend: 'wasm' });
    const reference = await referenceRounds(2, 2);
    const [a, b] = await together(4, { sync: { every: 2, outer: OUTER } });
    expect(sameBits(a!, b!), 'the replicas differ').toBe(true);
    expectNear(a!, reference, 'vs DiLoCo on one device');
    const [h1, h2] = await together(4, { sync: { every: 2, outer: OUTER }, wire: 'f16' });
    expect(sameBits(h1!, h2!), 'the replicas differ (f16)').toBe(true);
    // Rounded to float16 (2^-11 relative) on the wire, the residual carried to the next sync.
    reference.forEach((p, i) => expect(relErr(h1![i]!, p), `f16 deltas: parameter ${i}`).toBeLessThan(2e-3));
  });
});
