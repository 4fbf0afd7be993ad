// The Trainer on sequence models: int32 token ids [B, T] in, logits [B, T, V] out, cross-entropy
// against next tokens [B, T] (mean over the tokens that are not ignoreIndex), micro-batches that
// give the full batch's gradients even when ignored tokens are spread unevenly, a plan that names
// the sequence length, per-token evaluation with bits per character, and gradient clipping in
// PyTorch's place (after unscaling, before the update).

import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { expectClose, gpu, relErr, Rng, settleGarbage, wg } from '../helpers';

beforeAll(() => gpu());
afterAll(() => wg.shutdown());

const V = 7;
const D = 5;

/** A bigram-style language model: embedding, then a projection to the vocabulary. */
class TinyLM extends wg.nn.Module {
  override readonly inputDType = 'int32';
  emb = new wg.nn.Embedding(V, D);
  head = new wg.nn.Linear(D, V);
  forward(ids: wg.Tensor): wg.Tensor {
    return this.head.forward(this.emb.forward(ids));
  }
}

function trainer(opts: Partial<wg.TrainerOptions> = {}, seed = 7): wg.Trainer {
  wg.manualSeed(seed);
  const model = new TinyLM();
  const optimizer = new wg.optim.SGD(model.parameters(), { lr: 0.5 });
  return new wg.Trainer({ model, optimizer, loss: 'cross-entropy', ...opts });
}

/** Token ids [b, t]; with `ignored`, about a third of the targets are −100, most of them in the first rows. */
function ids(rng: Rng, b: number, t: number, ignored = false): Int32Array {
  return Int32Array.from({ length: b * t }, (_, i) => (ignored && rng.uniform() < (i < (b * t) / 3 ? 0.8 : 0.1) ? -100 : rng.int(V)));
}

async function flat(ts: wg.Tensor[]): Promise<Float64Array> {
  const parts = await Promise.all(ts.map((t) => t.toArray()));
  return Float64Array.from(parts.flatMap((p) => Array.from(p)));
}

/** The float64 mean cross-entropy over the counted targets of logits [N, V]. */
function meanCrossEntropy(logits: ArrayLike<number>, targets: Int32Array): { loss: number; counted: number; right: number } {
  let sum = 0;
  let counted = 0;
  let right = 0;
  targets.forEach((y, n) => {
    if (y === -100) return;
    const row = Array.from({ length: V }, (_, k) => logits[n * V + k]!);
    const max = Math.max(...row);
    const lse = max + Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0));
    sum += lse - row[y]!;
    counted++;
    if (row.indexOf(max) === y) right++;
  });
  return { loss: sum / counted, counted, right };
}

describe('Trainer on token sequences', () => {
  it('the loss is the mean over counted tokens; micro-batches give the gradients of one batch, ignored tokens spread unevenly', async () => {
    const rng = new Rng();
    const [B, T] = [7, 9];
    const x = wg.tensor(ids(rng, B, T), [B, T], { dtype: 'int32' });
    const yIds = ids(rng, B, T, true);
    const y = wg.tensor(yIds, [B, T], { dtype: 'int32' });
    const full = trainer({ microBatchSize: B });
    const micro = trainer({ microBatchSize: 3 });
    // The expected loss, from the model's own logits before the update.
    const logits = await wg.noGrad(() => full.model.forward(x)).toArray();
    const expected = meanCrossEntropy(logits, yIds);
    const a = await full.computeGradients(x, y);
    const b = await micro.computeGradients(x, y);
    expect(a.microBatches).toBe(1);
    expect(b.microBatches).toBe(3); // 3 + 3 + 1
    expectClose([a.loss, b.loss], [expected.loss, expected.loss], { rtol: 1e-5, seed: rng.seed, what: 'loss' });
    const ga = await flat(full.model.parameters().map((p) => p.grad!));
    const gb = await flat(micro.model.parameters().map((p) => p.grad!));
    expect(relErr(gb, ga)).toBeLessThan(1e-5);
    // The same gradients as the mean cross-entropy of the whole batch, computed directly.
    const direct = trainer();
    wg.tidy(() => wg.crossEntropy(direct.model.forward(x).reshape([B * T, V]), y.reshape([B * T])).backward());
    expect(relErr(ga, await flat(direct.model.parameters().map((p) => p.grad!)))).toBeLessThan(1e-5);
    for (const t of [full, micro, direct]) t.optimizer.zeroGrad();
  });

  it('plans in sequences of T tokens; targets of the wrong shape are refused by name', async () => {
    const t = trainer({ microBatchSize: 'auto' });
    // The model says it takes int32 ids: plan() needs no dtypes, and the targets are [B, T].
    const plan = t.plan([16, 12]);
    expect(plan.reason).toMatch(/the whole batch of 16 sequences of 12 tokens fits the budget: .* per sequence of 12 tokens/);
    const small = trainer({ microBatchSize: 'auto', memoryBudgetBytes: plan.persistentBytes + plan.bytesPerSample * 5 });
    expect(small.plan([16, 12]).reason).toMatch(/the whole batch of 16 sequences of 12 tokens would need .*; \d sequences of 12 tokens per micro-batch is the largest that fits/);
    const x = wg.zeros([2, 3], { dtype: 'int32' });
    await expect(t.step(x, wg.zeros([2], { dtype: 'int32' }))).rejects.toThrowError(
      /Trainer: cross-entropy takes targets shaped like the output without its last dimension \(the classes\): output \[\d+, 3, 7\] wants targets \[\d+, 3\], got \[\d+\]/,
    );
    expect(() => trainer({ clipGradNorm: 0 })).toThrowError(/Trainer: clipGradNorm must be a positive number \(the largest gradient norm\), got 0/);
    expect(() => trainer({ ignoreIndex: 0.5 })).toThrowError(/Trainer: ignoreIndex must be an int32, got 0.5/);
  });

  it('the loss falls on a small text, and memory stays flat', async () => {
    const { train } = wg.data.textFromString('abcdefabcdefabcdefabcdefabcdefabcdef'.repeat(8), { contextLength: 8 });
    wg.manualSeed(3);
    const model = new (class extends TinyLM {})();
    const optimizer = new wg.optim.AdamW(wg.optim.decayGroups(model, 0.01), { lr: 0.05 });
    const t = new wg.Trainer({ model, optimizer, loss: 'cross-entropy', clipGradNorm: 1 });
    const loader = new wg.data.DataLoader(train, { batchSize: 8, shuffle: true, seed: 1 });
    const losses: number[] = [];
    let live = 0;
    for (let epoch = 0; losses.length < 40; epoch++) {
      for (const batch of loader) {
        try {
          losses.push((await t.step(batch.x, batch.y)).loss);
        } finally {
          batch.dispose();
        }
        if (losses.length === 5) {
          await settleGarbage();
          live = wg.memory().liveBytes;
        }
        if (losses.length >= 40) break;
      }
    }
    await settleGarbage();
    expect(wg.memory().liveBytes).toBe(live);
    // Six letters in a cycle: each follows from the one before, so the loss goes from ln 6 towards 0.
    expect(losses[0]).toBeGreaterThan(1.5);
    expect(losses.at(-1)).toBeLessThan(0.3);
  });
});

describe('evaluation per token', () => {
  it('loss and accuracy per counted token, and bits per character on a text dataset', async () => {
    const text = 'ab cab dab cad. bad cab. '.repeat(6); // 6 characters: the model's 7 ids hold them
    const { test } = wg.data.textFromString(text, { contextLength: 10, testFraction: 0.5 });
    const t = trainer();
    const r = await t.evaluate(test, { batchSize: 4 });
    // The reference: every held-out window through the model, scored in float64.
    const [all] = [...new wg.data.DataLoader(test, { batchSize: test.size })];
    const logits = await wg.noGrad(() => t.model.forward(all!.x)).toArray();
    const expected = meanCrossEntropy(logits, (await all!.y.toArray()) as Int32Array);
    all!.dispose();
    expect(r.targets).toBe(test.size * 10);
    expectClose([r.loss, r.accuracy], [expected.loss, expected.right / expected.counted], { rtol: 1e-5, what: 'loss, accuracy' });
    expectClose([r.bitsPerCharacter!], [wg.data.bitsPerCharacter(r.loss, test)], { rtol: 1e-12, what: 'bits per character' });
    expect(r.bitsPerCharacter).toBeCloseTo(r.loss / Math.LN2, 12); // one character per token
  });

  it('ignored targets are left out of the loss, the accuracy and the count', async () => {
    const rng = new Rng();
    const x = ids(rng, 5, 6);
    const y = ids(rng, 5, 6, true);
    y[0] = 1; // at least one target counts
    const t = trainer();
    const xs = wg.tensor(x, [5, 6], { dtype: 'int32' });
    const logits = await wg.noGrad(() => t.model.forward(xs)).toArray();
    const expected = meanCrossEntropy(logits, y);
    // A DataLoader of this one batch (the shipped datasets hold no ignored targets).
    const loader = Object.assign(Object.create(wg.data.DataLoader.prototype), {
      dataset: { size: 5 },
      [Symbol.iterator]: function* () {
        yield { x: xs, y: wg.tensor(y, [5, 6], { dtype: 'int32' }), size: 5, dispose: () => {} };
      },
    });
    const r = await t.evaluate(loader);
    expect(r.targets).toBe(expected.counted);
    expectClose([r.loss, r.accuracy], [expected.loss, expected.right / expected.counted], { rtol: 1e-5, seed: rng.seed });
    expect(r.bitsPerCharacter).toBeUndefined();
  });
});

describe('clipGradNorm as a Trainer option', () => {
  it('clips the whole batch gradient before the update, as clip_grad_norm_ then step', async () => {
    const rng = new Rng();
    const x = wg.tensor(ids(rng, 6, 5), [6, 5], { dtype: 'int32' });
    const y = wg.tensor(ids(rng, 6, 5), [6, 5], { dtype: 'int32' });
    const clipped = trainer({ clipGradNorm: 0.05, microBatchSize: 4 });
    await clipped.step(x, y);
    // By hand: the gradients of the mean loss, clip_grad_norm_, one SGD step.
    const manual = trainer();
    wg.tidy(() => wg.crossEntropy(manual.model.forward(x).reshape([30, V]), y.reshape([30])).backward());
    const norm = wg.optim.clipGradNorm(manual.model.parameters(), 0.05);
    expect(await norm.item()).toBeGreaterThan(0.05); // so the clipping matters
    manual.optimizer.step();
    expect(relErr(await flat(clipped.model.parameters()), await flat(manual.model.parameters()))).toBeLessThan(1e-5);
  });

  it("clips after loss scaling's unscale ('f16-mixed'): the same update as f32", async () => {
    const rng = new Rng();
    const x = wg.tensor(ids(rng, 4, 6), [4, 6], { dtype: 'int32' });
    const y = wg.tensor(ids(rng, 4, 6), [4, 6], { dtype: 'int32' });
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {}); // no shader-f16 on SwiftShader: f32 with loss scaling
    const mixed = trainer({ clipGradNorm: 0.05, precision: 'f16-mixed' });
    warn.mockRestore();
    const plain = trainer({ clipGradNorm: 0.05 });
    expect(mixed.lossScale).toBe(2 ** 16);
    await mixed.step(x, y);
    await plain.step(x, y);
    // Clipping the scaled gradients would leave them 2^16 times too small relative to maxNorm: a different step.
    expect(relErr(await flat(mixed.model.parameters()), await flat(plain.model.parameters()))).toBeLessThan(1e-6);
  });
});
