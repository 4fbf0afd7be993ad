// wg.models.gpt and wg.models.generate: the forward pass against a float64 reference with the
// same weights (and its gradients against finite differences of the reference), GPT-2's seeded
// initialisation, clear errors, cached generation equal to recomputing every window, seeded
// sampling, training on a small text (loss falls, memory flat), and a checkpoint round trip with
// the tokenizer.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectClose, gpu, Rng, settleGarbage, wg } from '../helpers';
import { gptForward, meanCrossEntropy, type GPTRefConfig } from '../reference/gpt';

beforeAll(() => gpu());
afterAll(() => wg.shutdown());

// Awkward sizes: a vocabulary of 13, sequences of 5 in a context of 7, two heads of 4.
const tiny = { vocabSize: 13, contextLength: 7, layers: 2, heads: 2, dim: 8 };

async function weightsOf(model: wg.nn.Module): Promise<Record<string, Float64Array>> {
  const out: Record<string, Float64Array> = {};
  for (const [k, t] of Object.entries(model.stateDict())) out[k] = Float64Array.from(await t.toArray());
  return out;
}

/** Every weight w → scale·w + jitter·U(−½, ½) (through the state dict), so biases and norms are not 0 and 1, and logits not near ties. */
async function moveWeights(model: wg.nn.Module, rng: Rng, scale: number, jitter: number): Promise<void> {
  const moved: Record<string, wg.Tensor> = {};
  for (const [k, t] of Object.entries(model.stateDict())) {
    moved[k] = wg.tensor(Float32Array.from(await t.toArray(), (x) => scale * x + jitter * (rng.uniform() - 0.5)), t.shape);
  }
  model.loadStateDict(moved);
  Object.values(moved).forEach((t) => t.dispose());
}

function ids(rng: Rng, n: number, v = tiny.vocabSize): Int32Array {
  return Int32Array.from({ length: n }, () => rng.int(v));
}

describe('wg.models.gpt forward', () => {
  for (const tieWeights of [true, false]) {
    it(`matches a float64 reference with the same weights (tieWeights ${tieWeights}), and its gradients match finite differences`, async () => {
      const rng = new Rng();
      wg.manualSeed(rng.seed);
      const model = wg.models.gpt({ ...tiny, tieWeights });
      await moveWeights(model, rng, 1, 0.2);
      const w = await weightsOf(model);
      const cfg: GPTRefConfig = tiny;
      const [B, T] = [3, 5];
      const x = ids(rng, B * T);
      const y = ids(rng, B * T);
      const xs = wg.tensor(x, [B, T], { dtype: 'int32' });
      const logits = model.forward(xs);
      expect(logits.shape).toEqual([B, T, tiny.vocabSize]);
      expectClose(await logits.toArray(), gptForward(cfg, w, x, B, T), { rtol: 1e-4, atol: 1e-5, seed: rng.seed, what: 'logits' });
      // Gradients of the mean cross-entropy, at a few elements of every parameter, by central differences of the reference.
      const loss = wg.crossEntropy(logits.reshape([B * T, tiny.vocabSize]), wg.tensor(y, [B * T], { dtype: 'int32' }));
      loss.backward();
      const refLoss = (weights: Record<string, Float64Array>) => meanCrossEntropy(gptForward(cfg, weights, x, B, T), y, tiny.vocabSize);
      expectClose([await loss.item()], [refLoss(w)], { rtol: 1e-5, seed: rng.seed, what: 'loss' });
      for (const [name, p] of model.namedParameters()) {
        const grad = await p.grad!.toArray();
        for (let k = 0; k < 3; k++) {
          const i = rng.int(p.size);
          const h = 1e-4;
          const plus = { ...w, [name]: Float64Array.from(w[name]!) };
          const minus = { ...w, [name]: Float64Array.from(w[name]!) };
          plus[name]![i] += h;
          minus[name]![i] -= h;
          const fd = (refLoss(plus) - refLoss(minus)) / (2 * h);
          expectClose([grad[i]!], [fd], { rtol: 2e-3, atol: 2e-5, seed: rng.seed, what: `d loss / d ${name}[${i}]` });
        }
      }
      model.dispose();
    });
  }

  it("GPT-2's initialisation, seeded; tied weights are one parameter", async () => {
    const config = { vocabSize: 50, contextLength: 16, layers: 3, heads: 4, dim: 32 };
    wg.manualSeed(11);
    const a = wg.models.gpt(config);
    wg.manualSeed(11);
    const b = wg.models.gpt(config);
    const stats = async (t: wg.Tensor) => {
      const v = Array.from(await t.toArray());
      const mean = v.reduce((s, x) => s + x, 0) / v.length;
      return { mean, std: Math.sqrt(v.reduce((s, x) => s + (x - mean) ** 2, 0) / v.length) };
    };
    const std = async (t: wg.Tensor) => (await stats(t)).std;
    expect(await std(a.wte.weight)).toBeCloseTo(0.02, 2);
    expect(await std(a.blocks[0]!.attn.inProj.weight)).toBeCloseTo(0.02, 2);
    expect(await std(a.blocks[1]!.fc.weight)).toBeCloseTo(0.02, 2);
    // Residual projections: 0.02 / √(2 · 3 layers) = 0.00816.
    expect(Math.abs((await std(a.blocks[2]!.attn.outProj.weight)) / (0.02 / Math.sqrt(6)) - 1)).toBeLessThan(0.15);
    expect(Math.abs((await std(a.blocks[0]!.proj.weight)) / (0.02 / Math.sqrt(6)) - 1)).toBeLessThan(0.1);
    expect(Array.from(await a.blocks[1]!.fc.bias!.toArray()).every((x) => x === 0)).toBe(true);
    expect(Array.from(await a.blocks[1]!.ln2.weight!.toArray()).every((x) => x === 1)).toBe(true);
    for (const [k, t] of Object.entries(a.stateDict())) expect(Array.from(await t.toArray()), k).toEqual(Array.from(await b.stateDict()[k]!.toArray()));
    // Tied: no output projection of its own; 12·L·D² + 13·L·D (blocks) + V·D + C·D + 2·D.
    const { vocabSize: v, contextLength: c, layers: l, dim: d } = config;
    expect(a.lmHead).toBeNull();
    expect(a.parameterCount).toBe(12 * l * d * d + 13 * l * d + v * d + c * d + 2 * d);
    expect(wg.models.gpt({ ...config, tieWeights: false }).parameterCount).toBe(a.parameterCount + v * d);
    a.dispose();
    b.dispose();
  });

  it('refuses float ids, sequences longer than the context, ids outside the vocabulary and bad configurations, by name', async () => {
    wg.manualSeed(1);
    const model = wg.models.gpt(tiny);
    expect(() => model.forward(wg.zeros([2, 3]))).toThrowError(wg.DTypeError);
    expect(() => model.forward(wg.zeros([2, 3]))).toThrowError(/GPT\(vocabSize 13, contextLength 7\): token ids \[2, 3\] are float32; they must be int32/);
    expect(() => model.forward(wg.zeros([2, 8], { dtype: 'int32' }))).toThrowError(wg.LimitError);
    expect(() => model.forward(wg.zeros([2, 8], { dtype: 'int32' }))).toThrowError(/a sequence of 8 tokens is longer than the context length 7/);
    expect(() => model.forward(wg.zeros([6], { dtype: 'int32' }))).toThrowError(/token ids must be \[B, T\] with T ≥ 1, got \[6\]/);
    const bad = model.forward(wg.tensor(new Int32Array([1, 13, 2]), [1, 3], { dtype: 'int32' }));
    await expect(bad.toArray()).rejects.toThrowError(/embedding: an id is out of range: ids \[1, 3\] for weight \[13, 8\] \(ids must be in \[0, 12\]\)/);
    expect(() => wg.models.gpt({ ...tiny, heads: 3 })).toThrowError(/wg.models.gpt: dim 8 must be a multiple of heads 3/);
    expect(() => wg.models.gpt({ ...tiny, layers: 0 })).toThrowError(/wg.models.gpt: layers must be a positive integer, got 0/);
    expect(() => wg.models.gpt({ ...tiny, dropout: 1 })).toThrowError(/wg.models.gpt: dropout must be in \[0, 1\), got 1/);
    model.dispose();
  });
});

describe('wg.models.generate', () => {
  /** Greedy decoding without a cache: the whole window (the last contextLength tokens) through the model for every token. */
  async function recomputed(model: wg.models.GPT, prompt: Int32Array, n: number): Promise<Int32Array> {
    const out = Array.from(prompt);
    model.eval();
    for (let i = 0; i < n; i++) {
      const window = out.slice(-model.contextLength);
      const logits = wg.noGrad(() => model.forward(wg.tensor(Int32Array.from(window), [1, window.length], { dtype: 'int32' })));
      const row = (await logits.toArray()).slice((window.length - 1) * model.vocabSize);
      logits.dispose();
      out.push(row.indexOf(Math.max(...row)));
    }
    model.train();
    return Int32Array.from(out);
  }

  it('with the KV cache, greedy generation equals recomputing every window, token for token, past the context too', async () => {
    const rng = new Rng();
    wg.manualSeed(rng.seed);
    const model = wg.models.gpt({ vocabSize: 11, contextLength: 9, layers: 2, heads: 2, dim: 16 });
    await moveWeights(model, rng, 10, 0.5); // logits far from ties, so rounding cannot swap an argmax
    const prompt = ids(rng, 4, 11);
    // 4 + 12 tokens: the window slides from token 10 on (caches rebuilt).
    const cached = await wg.models.generate(model, prompt, { maxNewTokens: 12, temperature: 0 });
    expect(cached.length).toBe(16);
    expect(Array.from(cached.slice(0, 4))).toEqual(Array.from(prompt));
    expect(Array.from(cached), `seed ${rng.seed}`).toEqual(Array.from(await recomputed(model, prompt, 12)));
    expect(model.training).toBe(true); // put back as it was
    // A prompt longer than the context: only its last contextLength tokens are read.
    const long = ids(rng, 13, 11);
    expect(Array.from(await wg.models.generate(model, long, { maxNewTokens: 3, temperature: 0 }))).toEqual(Array.from(await recomputed(model, long, 3)));
    model.dispose();
  });

  it('samples with a seed (same seed, same tokens); topK 1 is greedy; memory stays flat', async () => {
    wg.manualSeed(5);
    const model = wg.models.gpt({ vocabSize: 17, contextLength: 8, layers: 1, heads: 1, dim: 8 });
    const prompt = [3, 1, 4];
    await wg.models.generate(model, prompt, { maxNewTokens: 2, seed: 1 });
    await settleGarbage();
    const before = wg.memory();
    const a = await wg.models.generate(model, prompt, { maxNewTokens: 10, seed: 42 });
    const b = await wg.models.generate(model, prompt, { maxNewTokens: 10, seed: 42 });
    const c = await wg.models.generate(model, prompt, { maxNewTokens: 10, seed: 43, temperature: 2 });
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(c)).not.toEqual(Array.from(a));
    expect(Array.from(await wg.models.generate(model, prompt, { maxNewTokens: 6, topK: 1, seed: 9 }))).toEqual(
      Array.from(await wg.models.generate(model, prompt, { maxNewTokens: 6, temperature: 0 })),
    );
    expect(a.every((id) => id >= 0 && id < 17)).toBe(true);
    await settleGarbage();
    expect(wg.memory().liveBytes).toBe(before.liveBytes);
    expect(wg.memory().liveTensors).toBe(before.liveTensors);
    await expect(wg.models.generate(model, [], { maxNewTokens: 1 })).rejects.toThrowError(/generate: the prompt must be a non-empty list of token ids/);
    await expect(wg.models.generate(model, [1, 17], { maxNewTokens: 1 })).rejects.toThrowError(/generate: prompt token 1 is 17, not an id in \[0, 16\]/);
    await expect(wg.models.generate(model, [1], { maxNewTokens: -1 })).rejects.toThrowError(/maxNewTokens must be a non-negative integer, got -1/);
    await expect(wg.models.generate(model, [1], { maxNewTokens: 1, temperature: -1 })).rejects.toThrowError(/temperature must be a finite number ≥ 0, got -1/);
    await expect(wg.models.generate(model, [1], { maxNewTokens: 1, topK: 0 })).rejects.toThrowError(/topK must be a positive integer, got 0/);
    model.dispose();
  });
});

describe('training a GPT', () => {
  it('learns a small text (loss falls well below the bigram baseline) with AdamW, decay groups, warm-up + cosine and clipping; memory flat', async () => {
    // A text whose next character depends on more than the one before it: a bigram model cannot learn it.
    const text = 'the cat sat. the dog ran. a cat ran. a dog sat. '.repeat(20);
    const { train, test, tokenizer } = wg.data.textFromString(text, { contextLength: 16, testFraction: 0.2 });
    wg.manualSeed(2);
    const model = wg.models.gpt({ vocabSize: tokenizer.vocabSize, contextLength: 16, layers: 2, heads: 2, dim: 32 });
    const optimizer = new wg.optim.AdamW(wg.optim.decayGroups(model, 0.1), { lr: 1e-2 });
    const steps = 80;
    const schedule = new wg.optim.LinearWarmup(optimizer, { warmupSteps: 5, then: new wg.optim.CosineAnnealingLR(optimizer, { tMax: steps - 5, etaMin: 1e-3 }) });
    const trainer = new wg.Trainer({ model, optimizer, loss: 'cross-entropy', clipGradNorm: 1 });
    const before = await trainer.evaluate(test, { batchSize: 16 });
    const loader = new wg.data.DataLoader(train, { batchSize: 16, shuffle: true, seed: 3 });
    let done = 0;
    let live = 0;
    while (done < steps) {
      for (const batch of loader) {
        try {
          await trainer.step(batch.x, batch.y);
        } finally {
          batch.dispose();
        }
        schedule.step();
        if (++done === 5) {
          await settleGarbage();
          live = wg.memory().liveBytes;
        }
        if (done === steps) break;
      }
    }
    await settleGarbage();
    expect(wg.memory().liveBytes).toBe(live);
    const after = await trainer.evaluate(test, { batchSize: 16 });
    const bigram = wg.data.bigramBaseline(train, test);
    expect(before.loss).toBeGreaterThan(2);
    expect(after.loss, `held-out loss ${after.loss}, bigram ${bigram.natsPerToken}`).toBeLessThan(bigram.natsPerToken - 0.3);
    expect(after.accuracy).toBeGreaterThan(0.6);
    expect(after.bitsPerCharacter).toBeCloseTo(after.loss / Math.LN2, 10);
    model.dispose();
    optimizer.dispose();
  }, 120_000);

  it('a checkpoint keeps the model, the optimizer groups and the tokenizer', async () => {
    const { tokenizer } = wg.data.textFromString('hello world, hello webgrad. '.repeat(10), { contextLength: 8 });
    wg.manualSeed(4);
    const model = wg.models.gpt({ vocabSize: tokenizer.vocabSize, contextLength: 8, layers: 1, heads: 2, dim: 8 });
    const optimizer = new wg.optim.AdamW(wg.optim.decayGroups(model, 0.1), { lr: 1e-2 });
    const trainer = new wg.Trainer({ model, optimizer, loss: 'cross-entropy' });
    const x = wg.tensor(tokenizer.encode('hello wo'), [1, 8], { dtype: 'int32' });
    const y = wg.tensor(tokenizer.encode('ello wor'), [1, 8], { dtype: 'int32' });
    await trainer.step(x, y);
    const bytes = await wg.io.saveCheckpoint({ model, optimizer, tokenizer, progress: { steps: 1 } });
    wg.manualSeed(99); // a different initialisation, then the checkpoint over it
    const again = wg.models.gpt({ vocabSize: tokenizer.vocabSize, contextLength: 8, layers: 1, heads: 2, dim: 8 });
    const opt2 = new wg.optim.AdamW(wg.optim.decayGroups(again, 0.5), { lr: 1 });
    wg.io.loadCheckpoint(bytes, { model: again, optimizer: opt2 });
    expect(Array.from(await again.forward(x).toArray())).toEqual(Array.from(await model.forward(x).toArray()));
    expect(opt2.paramGroups.map((g) => g.hyperParams.weightDecay)).toEqual([0.1, 0]);
    const loaded = (await wg.io.readCheckpointTokenizer(bytes))!;
    expect(loaded.vocabSize).toBe(tokenizer.vocabSize);
    expect(loaded.decode(tokenizer.encode('hello webgrad'))).toBe('hello webgrad');
    // The same next step from both.
    await trainer.step(x, y);
    await new wg.Trainer({ model: again, optimizer: opt2, loss: 'cross-entropy' }).step(x, y);
    expect(Array.from(await again.wte.weight.toArray())).toEqual(Array.from(await model.wte.weight.toArray()));
    for (const m of [model, again]) m.dispose();
  });
});
