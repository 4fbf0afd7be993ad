// The memory planner's second lever: activation checkpointing of a model's blocks, chosen with the
// micro-batch size. A small language model (token embedding, learned positions, transformer
// blocks, a head) under a budget in which even one sequence's activations do not fit trains with
// its blocks checkpointed: the measured peak stays under the budget and within the plan's margin,
// and after 3 steps its parameters are those of the same micro-batches without checkpointing, bit
// for bit, and of one unconstrained batch to rounding.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gpu, relErr, Rng, wg } from '../helpers';

beforeAll(() => gpu());
afterAll(() => wg.shutdown());

const [V, T, D, H, L, B] = [24, 32, 32, 4, 4, 4];

/** ids [B, T] → logits [B, T, V]: a GPT without tied weights. */
class TinyLM extends wg.nn.Module {
  wte = new wg.nn.Embedding(V, D);
  wpe = new wg.nn.Embedding(T, D);
  blocks = Array.from({ length: L }, () => new wg.nn.TransformerBlock(D, H, { causal: true }));
  lnF = new wg.nn.LayerNorm(D);
  head = new wg.nn.Linear(D, V);

  forward(ids: wg.Tensor): wg.Tensor {
    let h = wg.add(this.wte.forward(ids), this.wpe.forward(wg.arange(ids.shape[1]!)));
    for (const b of this.blocks) h = b.forward(h);
    return this.head.forward(this.lnF.forward(h));
  }
}

const loss = (out: wg.Tensor, y: wg.Tensor) => wg.crossEntropy(out.reshape([-1, V]), y.reshape([-1]));

function trainer(opts: Partial<wg.TrainerOptions>): wg.Trainer {
  wg.manualSeed(77);
  const model = new TinyLM();
  // SGD: the update is linear in the gradients, so micro-batching's other summation order stays at rounding level.
  const optimizer = new wg.optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
  return new wg.Trainer({ model, optimizer, loss, ...opts });
}

function batch(): { x: wg.Tensor; y: wg.Tensor } {
  const rng = new Rng(3);
  const ids = Int32Array.from({ length: B * (T + 1) }, () => rng.int(V));
  const x = new Int32Array(B * T);
  const y = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    x.set(ids.subarray(b * (T + 1), b * (T + 1) + T), b * T);
    y.set(ids.subarray(b * (T + 1) + 1, (b + 1) * (T + 1)), b * T);
  }
  return { x: wg.tensor(x, [B, T], { dtype: 'int32' }), y: wg.tensor(y, [B, T], { dtype: 'int32' }) };
}

async function parameters(t: wg.Trainer): Promise<Float32Array> {
  const parts = await Promise.all(t.model.parameters().map((p) => p.toArray()));
  return Float32Array.from(parts.flatMap((p) => Array.from(p)));
}

const dtypes = { x: 'int32', y: 'int32' } as const;

describe('activation checkpointing chosen by the memory plan', () => {
  it('a model whose activations at micro-batch 1 exceed the budget trains with its blocks checkpointed', async () => {
    const { x, y } = batch();
    // The peaks of one sequence with and without checkpointing, from the planner's own dry runs.
    const probe = trainer({ microBatchSize: 1 });
    const [plainAt1, ckptAt1] = [0, 1].map((k) => probe.plan(x.shape, y.shape, dtypes).alternatives.find((a) => a.checkpointEvery === k)!.estimatedPeakBytes);
    expect(ckptAt1).toBeLessThan(plainAt1!);
    probe.model.dispose();
    const budget = Math.round((plainAt1! + ckptAt1!) / 2);

    const t = trainer({ memoryBudgetBytes: budget });
    const p = t.plan(x.shape, y.shape, dtypes);
    expect(p.checkpointEvery).toBeGreaterThan(0);
    expect(p.blocks).toBe(L);
    expect(p.estimatedPeakBytes).toBeLessThanOrEqual(budget);
    expect(p.reason).toMatch(new RegExp(`^micro-batch ${p.microBatchSize} of ${B}, checkpointing every .*block \\(\\d of ${L}\\): .* planned of .*; without it even micro-batch 1 needs`));
    const steps = [];
    for (let s = 0; s < 3; s++) {
      wg.resetPeakMemory();
      steps.push(await t.step(x, y));
      const measured = wg.memory().peakBytes;
      expect(measured, `step ${s + 1}: measured peak under the budget`).toBeLessThanOrEqual(budget);
      expect(measured, `step ${s + 1}: measured peak within the plan's 10% margin`).toBeLessThanOrEqual(p.estimatedPeakBytes * 1.1);
      expect(measured / p.estimatedPeakBytes, `step ${s + 1}: the plan is not wildly pessimistic`).toBeGreaterThan(0.6);
    }
    expect(steps.every((r) => r.microBatchSize === p.microBatchSize && !r.skipped)).toBe(true);
    expect(t.model.checkpointBlocks().filter((b) => b.checkpointed).length).toBe(p.checkpointedBlocks);

    // The same micro-batches without checkpointing: the same parameters, bit for bit.
    const same = trainer({ microBatchSize: p.microBatchSize, checkpointing: 'none' });
    for (let s = 0; s < 3; s++) await same.step(x, y);
    expect(same.plan(x.shape, y.shape, dtypes).checkpointEvery).toBe(0);
    const [a, b] = await Promise.all([parameters(t), parameters(same)]);
    expect(b.findIndex((v, i) => !Object.is(v, a[i]))).toBe(-1);

    // One unconstrained batch: the same parameters up to the order of the gradient sums.
    const free = trainer({ memoryBudgetBytes: 1 << 30 });
    expect(free.plan(x.shape, y.shape, dtypes)).toMatchObject({ microBatches: 1, checkpointEvery: 0 });
    for (let s = 0; s < 3; s++) await free.step(x, y);
    expect(relErr(Float64Array.from(await parameters(free)), Float64Array.from(a))).toBeLessThan(1e-5);
    for (const tr of [t, same, free]) {
      tr.optimizer.dispose();
      tr.model.dispose();
    }
    x.dispose();
    y.dispose();
  });

  it('weighs the choices: none when the batch fits, checkpointing when it buys fewer micro-batches, a forced choice as asked', () => {
    const { x, y } = batch();
    const roomy = trainer({ memoryBudgetBytes: 1 << 30 });
    const p0 = roomy.plan(x.shape, y.shape, dtypes);
    expect(p0).toMatchObject({ microBatchSize: B, checkpointEvery: 0 });
    expect(p0.reason).toMatch(/^the whole batch of \d+ sequences of \d+ tokens fits the budget/);
    expect(p0.alternatives).toHaveLength(1); // nothing beats the whole batch without recomputation

    // A budget that holds the whole batch only with every block checkpointed.
    const whole = trainer({ memoryBudgetBytes: 1 << 30, microBatchSize: B });
    const at = (k: number) => whole.plan(x.shape, y.shape, dtypes).alternatives.find((a) => a.checkpointEvery === k)!;
    const budget = at(1).estimatedPeakBytes + 1024;
    expect(at(0).estimatedPeakBytes).toBeGreaterThan(budget);
    const tight = trainer({ memoryBudgetBytes: budget });
    const p1 = tight.plan(x.shape, y.shape, dtypes);
    const plain = p1.alternatives.find((a) => a.checkpointEvery === 0)!;
    expect(plain.microBatchSize).toBeLessThan(B);
    // The choice is the cheapest that fits, and every alternative weighed is reported.
    const fitting = p1.alternatives.filter((a) => a.fits);
    expect(p1.checkpointEvery).toBe(fitting.reduce((m, a) => (a.cost < m.cost ? a : m)).checkpointEvery);
    expect(p1.alternatives.map((a) => a.checkpointEvery)).toEqual([0, 1, 2]);
    for (const a of p1.alternatives) expect(a.estimatedPeakBytes <= budget).toBe(a.fits);
    // Recomputation costs work: at the same micro-batch, checkpointing is priced higher.
    expect(at(1).cost).toBeGreaterThan(at(0).cost);

    const forced = trainer({ memoryBudgetBytes: 1 << 30, checkpointing: 'blocks' });
    const pf = forced.plan(x.shape, y.shape, dtypes);
    expect(pf).toMatchObject({ checkpointEvery: 1, checkpointedBlocks: L, microBatchSize: B });
    expect(pf.reason).toMatch(/checkpointing every block \(4 of 4\): .*Checkpointing as asked/);
    expect(trainer({ checkpointing: { every: 2 }, memoryBudgetBytes: 1 << 30 }).plan(x.shape, y.shape, dtypes).checkpointedBlocks).toBe(2);
    expect(() => trainer({ checkpointing: 'some' as 'auto' })).toThrowError(/checkpointing must be 'auto', 'none', 'blocks' or \{ every: k \}/);
    const none = trainer({ checkpointing: 'none', memoryBudgetBytes: p1.persistentBytes + 1024 });
    expect(() => none.plan(x.shape, y.shape, dtypes)).toThrowError(/even one sequence of \d+ tokens needs/);
    for (const tr of [roomy, whole, tight, forced, none]) tr.model.dispose();
    x.dispose();
    y.dispose();
  });
});
