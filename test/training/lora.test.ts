// wg.nn.lora: low-rank adapters on chosen Linear layers, everything else frozen. The adapted
// layer against a float64 reference and finite differences; the wrapped model computes what it
// did before training (B = 0); the optimizer keeps state for the adapters alone; training moves
// only them; merge() folds them into the weights; checkpoints of the adapters alone load into a
// model wrapped the same way; bad options and targets are refused with the layers named.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectClose, gpu, gpuTensor, gradCheck, relErr, Rng, settleGarbage, wg } from '../helpers';

beforeAll(() => gpu());
afterAll(() => wg.shutdown());

const [D, H, T, B] = [16, 4, 6, 2];

function model(seed = 21): wg.nn.Sequential {
  wg.manualSeed(seed);
  return new wg.nn.Sequential(new wg.nn.TransformerBlock(D, H, { causal: true }), new wg.nn.TransformerBlock(D, H, { causal: true }), new wg.nn.Linear(D, 5));
}

/** x [N, I]·Wᵀ [O, I] in float64. */
function linearRef(x: Float64Array, W: Float64Array, N: number, I: number, O: number): Float64Array {
  const out = new Float64Array(N * O);
  for (let n = 0; n < N; n++) for (let o = 0; o < O; o++) {
    let s = 0;
    for (let i = 0; i < I; i++) s += x[n * I + i]! * W[o * I + i]!;
    out[n * O + o] = s;
  }
  return out;
}

const values = async (t: wg.Tensor) => Float64Array.from(await t.toArray());

describe('the adapted Linear layer', () => {
  it('computes x·Wᵀ + b + (α/r)·(x·Aᵀ)·Bᵀ (float64 reference) with finite-difference gradients for x, A and B', async () => {
    const rng = new Rng();
    const [N, I, O, r, alpha] = [5, 17, 9, 3, 6];
    const s = alpha / r;
    const data = (n: number) => rng.array(n, -1, 1);
    const inputs = [
      { data: data(N * I), shape: [N, I] },
      { data: data(O * I), shape: [O, I] },
      { data: data(O), shape: [O] },
      { data: data(r * I), shape: [r, I] },
      { data: data(O * r), shape: [O, r] },
    ];
    const layer = new wg.nn.Linear(I, O);
    const adapter = new wg.nn.LoRA(I, O, r, alpha);
    const build = ([x, W, b, A, Bm]: wg.Tensor[]) => {
      layer.weight = W!;
      layer.bias = b!;
      layer.lora = adapter;
      adapter.A = A!;
      adapter.B = Bm!;
      return layer.forward(x!);
    };
    const ref = ([x, W, b, A, Bm]: Float64Array[]) => {
      const y = linearRef(x!, W!, N, I, O);
      const lowRank = linearRef(linearRef(x!, A!, N, I, r), Bm!, N, r, O);
      return y.map((v, k) => v + b![k % O]! + s * lowRank[k]!);
    };
    const out = build(inputs.map((i) => gpuTensor(i.data, i.shape)));
    expectClose(await out.toArray(), ref(inputs.map((i) => i.data)), { seed: rng.seed, what: 'LoRA forward' });
    await gradCheck({ inputs, gpuFn: build, refFn: ref, rng, wrt: [0, 3, 4] });
    expect(adapter.scaling).toBe(2);
  });
});

describe('wg.nn.lora', () => {
  it('adapts the attention projections by default, freezes the rest, and starts as the model was', async () => {
    const m = model();
    const x = wg.randn([B, T, D], { seed: 4 });
    const before = await values(wg.noGrad(() => m.forward(x)));
    const total = m.parameters().reduce((n, p) => n + p.size, 0);
    const adapted = wg.nn.lora(m, { rank: 2, alpha: 4 });
    expect(adapted.layers).toEqual(['0.attn.inProj', '0.attn.outProj', '1.attn.inProj', '1.attn.outProj']);
    // r·(in + out) per layer: inProj D → 3D, outProj D → D.
    expect(adapted.trainableCount).toBe(2 * (2 * (D + 3 * D) + 2 * (D + D)));
    expect(adapted.totalCount).toBe(total + adapted.trainableCount);
    const trainable = m.namedParameters().filter(([, p]) => p.requiresGrad).map(([n]) => n);
    expect(trainable).toEqual(adapted.layers.flatMap((l) => [`${l}.lora.A`, `${l}.lora.B`]));
    expect(adapted.parameters()).toEqual(m.parameters().filter((p) => p.requiresGrad));
    // PEFT's initialisation: A ~ U(±1/√in), B = 0.
    const A = await values((m.layers[0] as wg.nn.TransformerBlock).attn.inProj.lora!.A);
    expect(Math.max(...A.map(Math.abs))).toBeLessThanOrEqual(1 / Math.sqrt(D));
    expect(Math.max(...A.map(Math.abs))).toBeGreaterThan(0.5 / Math.sqrt(D));
    expect(Array.from(await values((m.layers[0] as wg.nn.TransformerBlock).attn.inProj.lora!.B)).every((v) => v === 0)).toBe(true);
    const after = await values(wg.noGrad(() => m.forward(x)));
    expect(Array.from(after)).toEqual(Array.from(before));
    x.dispose();
    m.dispose();
  });

  it('trains only the adapters: optimizer state for them alone, base weights bit for bit unchanged, the loss falls', async () => {
    const m = model();
    const adapted = wg.nn.lora(m, { rank: 4, alpha: 8, targets: ['inProj', 'outProj', 'fc', 'proj'] });
    expect(adapted.layers).toHaveLength(8);
    const frozen = m.namedParameters().filter(([, p]) => !p.requiresGrad);
    const frozenBefore = await Promise.all(frozen.map(([, p]) => values(p)));
    const optimizer = new wg.optim.AdamW(m.parameters(), { lr: 1e-2 });
    const x = wg.randn([B, T, D], { seed: 5 });
    const y = wg.tensor(Int32Array.from({ length: B * T }, (_, i) => i % 5), [B, T], { dtype: 'int32' });
    const trainer = new wg.Trainer({ model: m, optimizer, loss: (out, t) => wg.crossEntropy(out.reshape([-1, 5]), t.reshape([-1])) });
    const losses = [];
    for (let s = 0; s < 15; s++) losses.push((await trainer.step(x, y)).loss);
    expect(losses[14]!).toBeLessThan(losses[0]! * 0.8);
    // State only for the adapters' 16 tensors, by their index in the parameter list.
    const params = m.parameters();
    const stateIndices = Object.keys(optimizer.stateDict().state).map(Number);
    expect(stateIndices.map((i) => params[i]!.requiresGrad)).toEqual(Array(16).fill(true));
    expect(stateIndices).toHaveLength(16);
    const adapterBytes = adapted.parameters().reduce((n, p) => n + p.size * 4, 0);
    expect(optimizer.stateBytes()).toBeLessThanOrEqual(2 * adapterBytes * 1.6); // two moments each (size classes round up)
    const frozenAfter = await Promise.all(frozen.map(([, p]) => values(p)));
    frozenAfter.forEach((v, i) => expect(Array.from(v), frozen[i]![0]).toEqual(Array.from(frozenBefore[i]!)));
    optimizer.dispose();
    m.dispose();
    x.dispose();
    y.dispose();
  });

  it('merge() folds the adapters into the weights: the same outputs, no adapters left, the base still frozen', async () => {
    const m = model();
    const adapted = wg.nn.lora(m, { rank: 3, alpha: 5, targets: (name) => name.endsWith('fc') || name === '2' });
    expect(adapted.layers).toEqual(['0.fc', '1.fc', '2']);
    // Give every B values (training would), through a state dict: then the adapters change the output.
    const sd: Record<string, wg.Tensor> = {};
    for (const [name, p] of m.namedParameters()) if (name.endsWith('.lora.B')) sd[name] = wg.randn(p.shape, { seed: p.size }).mul(0.3);
    expect(Object.keys(sd)).toEqual(['0.fc.lora.B', '1.fc.lora.B', '2.lora.B']);
    m.loadStateDict(sd, { strict: false });
    for (const t of Object.values(sd)) t.dispose();
    const x = wg.randn([B, T, D], { seed: 6 });
    const plain = model();
    const base = await values(wg.noGrad(() => plain.forward(x)));
    const before = await values(wg.noGrad(() => m.forward(x)));
    expect(relErr(before, base)).toBeGreaterThan(1e-3); // the adapters do something
    adapted.merge();
    expect(Object.keys(m.stateDict()).some((k) => k.includes('lora'))).toBe(false);
    expect(m.parameters().every((p) => !p.requiresGrad)).toBe(true);
    const after = await values(wg.noGrad(() => m.forward(x)));
    expect(relErr(after, before)).toBeLessThan(1e-5);
    expect(() => adapted.merge()).toThrowError(/merge\(\) was called already/);
    x.dispose();
    m.dispose();
    plain.dispose();
  });

  it('checkpoints of the adapters alone: small, loadable into a model wrapped the same way, refused by others', async () => {
    const m = model();
    wg.nn.lora(m, { rank: 2, alpha: 2 });
    const optimizer = new wg.optim.Adam(m.parameters(), { lr: 1e-2 });
    const x = wg.randn([B, T, D], { seed: 7 });
    const y = wg.randn([B, T, 5], { seed: 8 });
    const trainer = new wg.Trainer({ model: m, optimizer, loss: 'mse' });
    for (let s = 0; s < 3; s++) await trainer.step(x, y);
    const full = await wg.io.saveCheckpoint({ model: m, optimizer });
    const small = await wg.io.saveCheckpoint({ model: m, optimizer, trainableOnly: true, progress: { step: 3 } });
    const header = wg.io.readSafetensorsHeader(small);
    const names = Object.keys(header.tensors);
    expect(names.filter((n) => n.startsWith('model.')).every((n) => n.includes('.lora.'))).toBe(true);
    expect(names.filter((n) => n.startsWith('model.'))).toHaveLength(8);
    expect(small.length).toBeLessThan(full.length / 2);

    // A fresh copy of the base, wrapped the same way, gets the trained adapters and optimizer state.
    const other = model();
    wg.nn.lora(other, { rank: 2, alpha: 2 });
    const otherOpt = new wg.optim.Adam(other.parameters(), { lr: 1e-2 });
    expect(wg.io.loadCheckpoint(small, { model: other, optimizer: otherOpt })).toEqual({ step: 3 });
    const [a, b] = await Promise.all([values(wg.noGrad(() => m.forward(x))), values(wg.noGrad(() => other.forward(x)))]);
    expect(Array.from(b)).toEqual(Array.from(a));
    expect(otherOpt.stateDict().step).toBe(3);

    // The base model without adapters, or with other ones, is refused with the names.
    const bare = model();
    expect(() => wg.io.loadCheckpoint(small, { model: bare })).toThrowError(
      /holds only trainable parameters .* the model has no trainable 0\.attn\.inProj\.lora\.A.*Wrap the model as it was when saved/,
    );
    const wider = model();
    wg.nn.lora(wider, { rank: 2, alpha: 2, targets: ['inProj', 'outProj', 'fc'] });
    expect(() => wg.io.loadCheckpoint(small, { model: wider })).toThrowError(/the file lacks 0\.fc\.lora\.A/);
    bare.freeze();
    await expect(wg.io.saveCheckpoint({ model: bare, trainableOnly: true })).rejects.toThrowError(/no trainable parameter/);
    for (const t of [optimizer, otherOpt]) t.dispose();
    for (const t of [m, other, bare, wider]) t.dispose();
    x.dispose();
    y.dispose();
  });

  it('refuses bad options and targets that match nothing, naming the layers there are', () => {
    const m = model();
    expect(() => wg.nn.lora(m, { rank: 0, alpha: 1 })).toThrowError(/rank must be a positive integer, got 0/);
    expect(() => wg.nn.lora(m, { rank: 2, alpha: -1 })).toThrowError(/alpha must be a positive number/);
    expect(() => wg.nn.lora(m, { rank: 2, alpha: 1, dropout: 1 })).toThrowError(/dropout must be in \[0, 1\)/);
    expect(() => wg.nn.lora(m, { rank: 2, alpha: 1, targets: ['c_attn'] })).toThrowError(
      /no Linear layer matches targets \["c_attn"\]; the model's Linear layers are 0\.attn\.inProj, 0\.attn\.outProj, 0\.fc, 0\.proj, 1\.attn\.inProj/,
    );
    expect(() => wg.nn.lora(m, { rank: 6, alpha: 1, targets: ['2'] })).toThrowError(/rank 6 is larger than 2 \(16 → 5\) itself/);
    expect(m.parameters().every((p) => p.requiresGrad)).toBe(true); // nothing changed by a refusal
    wg.nn.lora(m, { rank: 2, alpha: 1 });
    expect(() => wg.nn.lora(m, { rank: 2, alpha: 1 })).toThrowError(/0\.attn\.inProj has an adapter already/);
    m.dispose();
  });

  it('LoRA dropout only while training; nothing leaks over steps', async () => {
    const m = model();
    wg.nn.lora(m, { rank: 2, alpha: 2, dropout: 0.5 });
    const x = wg.randn([B, T, D], { seed: 9 });
    m.eval();
    const a = await values(wg.noGrad(() => m.forward(x)));
    const b = await values(wg.noGrad(() => m.forward(x)));
    expect(Array.from(a)).toEqual(Array.from(b));
    m.train();
    const optimizer = new wg.optim.SGD(m.parameters(), { lr: 0.1 });
    const y = wg.randn([B, T, 5], { seed: 10 });
    const trainer = new wg.Trainer({ model: m, optimizer, loss: 'mse' });
    await trainer.step(x, y);
    await settleGarbage();
    const live = wg.memory().liveBytes;
    for (let s = 0; s < 3; s++) await trainer.step(x, y);
    await settleGarbage();
    expect(wg.memory().liveBytes).toBe(live);
    optimizer.dispose();
    m.dispose();
    x.dispose();
    y.dispose();
  });
});
