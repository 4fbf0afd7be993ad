// wg.models.gpt2 with nothing downloaded: tiny randomly-initialised checkpoints written in exactly
// Hugging Face's GPT-2 layout (names, shapes, Conv1D [in, out] weights, tied lm_head, metadata
// { format: 'pt' }) load, their logits equal a float64 forward written from transformers'
// modeling_gpt2.py on the file's own tensors, and toSafetensors writes the same bytes back. The
// variants real files have (GPT2LMHeadModel's "transformer." prefix, mask buffers, an lm_head
// that repeats wte, an untied one, F16) load too; other files are refused with what they lack.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toHalf } from '../../src/ops/half';
import { expectClose, gpu, Rng, settleGarbage, wg } from '../helpers';
import { geluTanh } from '../reference/elementwise';
import { layerNorm } from '../reference/norm';

beforeAll(() => gpu());
afterAll(() => wg.shutdown());

// Awkward sizes: vocabulary 11, context 9, 2 blocks, width 12 in 3 heads of 4.
const V = 11;
const C = 9;
const L = 2;
const D = 12;
const HEADS = 3;

type HF = Record<string, { shape: number[]; data: Float64Array }>;

/** A random GPT-2 in the HF layout (float32-representable values; LayerNorms near 1 and 0). */
function randomGPT2(rng: Rng, { layers = L, dim = D } = {}): HF {
  const w: HF = {};
  const put = (name: string, shape: number[], around = 0, scale = 0.3) => {
    const n = shape.reduce((a, b) => a * b, 1);
    w[name] = { shape, data: Float64Array.from({ length: n }, () => Math.fround(around + scale * rng.normal())) };
  };
  put('wte.weight', [V, dim]);
  put('wpe.weight', [C, dim]);
  for (let n = 0; n < layers; n++) {
    put(`h.${n}.ln_1.weight`, [dim], 1, 0.1);
    put(`h.${n}.ln_1.bias`, [dim], 0, 0.1);
    put(`h.${n}.attn.c_attn.weight`, [dim, 3 * dim]);
    put(`h.${n}.attn.c_attn.bias`, [3 * dim], 0, 0.1);
    put(`h.${n}.attn.c_proj.weight`, [dim, dim]);
    put(`h.${n}.attn.c_proj.bias`, [dim], 0, 0.1);
    put(`h.${n}.ln_2.weight`, [dim], 1, 0.1);
    put(`h.${n}.ln_2.bias`, [dim], 0, 0.1);
    put(`h.${n}.mlp.c_fc.weight`, [dim, 4 * dim]);
    put(`h.${n}.mlp.c_fc.bias`, [4 * dim], 0, 0.1);
    put(`h.${n}.mlp.c_proj.weight`, [4 * dim, dim]);
    put(`h.${n}.mlp.c_proj.bias`, [dim], 0, 0.1);
  }
  put('ln_f.weight', [dim], 1, 0.1);
  put('ln_f.bias', [dim], 0, 0.1);
  return w;
}

/** The file, written by the safetensors writer (byte for byte the reference implementation's). */
async function fileOf(w: HF, rename: (k: string) => string = (k) => k, extra: Record<string, wg.Tensor> = {}): Promise<Uint8Array> {
  const tensors: Record<string, wg.Tensor> = { ...extra };
  for (const [k, { shape, data }] of Object.entries(w)) tensors[rename(k)] = wg.tensor(Float32Array.from(data), shape);
  const bytes = await wg.io.saveSafetensors(tensors, { format: 'pt' });
  for (const t of Object.values(tensors)) t.dispose();
  return bytes;
}

/** y [n, out] = x [n, in] · W [in, out] + b: GPT-2's Conv1D. */
function conv1d(x: Float64Array, n: number, inF: number, w: Float64Array, b: Float64Array, outF: number): Float64Array {
  const y = new Float64Array(n * outF);
  for (let r = 0; r < n; r++) for (let o = 0; o < outF; o++) {
    let s = b[o]!;
    for (let i = 0; i < inF; i++) s += x[r * inF + i]! * w[i * outF + o]!;
    y[r * outF + o] = s;
  }
  return y;
}

/** GPT2LMHeadModel's logits [T, V] for one sequence, in float64 from the HF tensors (modeling_gpt2.py). */
function hfForward(w: HF, ids: ArrayLike<number>, heads: number, lmHead?: Float64Array): Float64Array {
  const t = ids.length;
  const d = w['wte.weight']!.shape[1]!;
  const dh = d / heads;
  const g = (k: string) => w[k]!.data;
  let h = new Float64Array(t * d);
  for (let i = 0; i < t; i++) for (let c = 0; c < d; c++) h[i * d + c] = g('wte.weight')[ids[i]! * d + c]! + g('wpe.weight')[i * d + c]!;
  for (let n = 0; w[`h.${n}.ln_1.weight`]; n++) {
    const p = `h.${n}.`;
    const qkv = conv1d(layerNorm(h, d, g(`${p}ln_1.weight`), g(`${p}ln_1.bias`)), t, d, g(`${p}attn.c_attn.weight`), g(`${p}attn.c_attn.bias`), 3 * d);
    // query, key, value = qkv.split(d); each split into heads of dh; softmax(q·kᵀ/√dh) under the causal mask.
    const merged = new Float64Array(t * d);
    for (let hd = 0; hd < heads; hd++) for (let i = 0; i < t; i++) {
      const s = Array.from({ length: i + 1 }, (_, j) => {
        let dot = 0;
        for (let c = 0; c < dh; c++) dot += qkv[i * 3 * d + hd * dh + c]! * qkv[j * 3 * d + d + hd * dh + c]!;
        return dot / Math.sqrt(dh);
      });
      const m = Math.max(...s);
      const e = s.map((x) => Math.exp(x - m));
      const z = e.reduce((a, b) => a + b, 0);
      for (let c = 0; c < dh; c++) merged[i * d + hd * dh + c] = e.reduce((acc, ej, j) => acc + (ej / z) * qkv[j * 3 * d + 2 * d + hd * dh + c]!, 0);
    }
    const a = conv1d(merged, t, d, g(`${p}attn.c_proj.weight`), g(`${p}attn.c_proj.bias`), d);
    h = h.map((x, k) => x + a[k]!);
    const f = conv1d(layerNorm(h, d, g(`${p}ln_2.weight`), g(`${p}ln_2.bias`)), t, d, g(`${p}mlp.c_fc.weight`), g(`${p}mlp.c_fc.bias`), 4 * d).map(geluTanh);
    const m = conv1d(f, t, 4 * d, g(`${p}mlp.c_proj.weight`), g(`${p}mlp.c_proj.bias`), d);
    h = h.map((x, k) => x + m[k]!);
  }
  const hf = layerNorm(h, d, g('ln_f.weight'), g('ln_f.bias'));
  const head = lmHead ?? g('wte.weight'); // nn.Linear [V, D]: logits = h · headᵀ
  const out = new Float64Array(t * V);
  for (let i = 0; i < t; i++) for (let v = 0; v < V; v++) {
    let s = 0;
    for (let c = 0; c < d; c++) s += hf[i * d + c]! * head[v * d + c]!;
    out[i * V + v] = s;
  }
  return out;
}

/** The model's logits for `batch` sequences of ids, checked against the float64 forward of each. */
async function expectLogits(model: wg.models.GPT, w: HF, rng: Rng, heads: number, lmHead?: Float64Array): Promise<void> {
  const [b, t] = [2, C];
  const ids = Int32Array.from({ length: b * t }, () => rng.int(V));
  const logits = wg.noGrad(() => model.forward(wg.tensor(ids, [b, t], { dtype: 'int32' })));
  expect(logits.shape).toEqual([b, t, V]);
  const got = await logits.toArray();
  for (let s = 0; s < b; s++) {
    expectClose(got.subarray(s * t * V, (s + 1) * t * V), hfForward(w, ids.subarray(s * t, (s + 1) * t), heads, lmHead), {
      rtol: 1e-4,
      atol: 1e-4,
      seed: rng.seed,
      what: `logits of sequence ${s}`,
    });
  }
  logits.dispose();
}

describe('wg.models.gpt2', () => {
  it('loads a Hugging Face GPT-2 checkpoint: logits equal a float64 forward of the same tensors; toSafetensors writes the same bytes', async () => {
    const rng = new Rng();
    const w = randomGPT2(rng);
    const bytes = await fileOf(w);
    const model = wg.models.gpt2.fromSafetensors(bytes, { config: { n_head: HEADS, n_layer: L, n_embd: D, n_positions: C, vocab_size: V, activation_function: 'gelu_new' } });
    expect(model.config).toMatchObject({ vocabSize: V, contextLength: C, layers: L, heads: HEADS, dim: D, tieWeights: true, activation: 'gelu_tanh', layerNormEps: 1e-5 });
    await expectLogits(model, w, rng, HEADS);
    const again = await wg.models.gpt2.toSafetensors(model);
    expect(again.length).toBe(bytes.length);
    expect(Buffer.from(again).equals(Buffer.from(bytes))).toBe(true);
    model.dispose();
  });

  it("reads GPT2LMHeadModel's files: the transformer. prefix, mask buffers, a tied lm_head, F16 tensors; an untied lm_head stays untied", async () => {
    const rng = new Rng();
    const w = randomGPT2(rng);
    const mask = () => wg.tensor(Float32Array.from({ length: C * C }, (_, k) => (k % C <= Math.floor(k / C) ? 1 : 0)), [1, 1, C, C]);
    const extra: Record<string, wg.Tensor> = { 'lm_head.weight': wg.tensor(Float32Array.from(w['wte.weight']!.data), [V, D]) };
    for (let n = 0; n < L; n++) {
      extra[`transformer.h.${n}.attn.bias`] = mask();
      extra[`transformer.h.${n}.attn.masked_bias`] = wg.tensor(Float32Array.from([-1e4]), []);
    }
    const full = await fileOf(w, (k) => `transformer.${k}`, extra);
    const tied = wg.models.gpt2.fromSafetensors(full, { config: { n_head: HEADS } });
    expect(tied.lmHead).toBe(null);
    await expectLogits(tied, w, rng, HEADS);
    // Written back as GPT2Model's save_pretrained does: no prefix, no buffers, no repeated lm_head.
    expect(Object.keys(wg.io.readSafetensorsHeader(await wg.models.gpt2.toSafetensors(tied)).tensors)).toEqual(Object.keys(w).sort());
    tied.dispose();

    const head = Float64Array.from({ length: V * D }, () => Math.fround(0.3 * rng.normal()));
    const untiedFile = await fileOf(w, (k) => k, { 'lm_head.weight': wg.tensor(Float32Array.from(head), [V, D]) });
    const untied = wg.models.gpt2.fromSafetensors(untiedFile, { config: { n_head: HEADS } });
    expect(untied.config.tieWeights).toBe(false);
    await expectLogits(untied, w, rng, HEADS, head);
    expect(Buffer.from(await wg.models.gpt2.toSafetensors(untied)).equals(Buffer.from(untiedFile))).toBe(true);
    untied.dispose();

    // F16 tensors (a half-precision export) are read as float32, exactly: the same logits as the F32 file of their values.
    const halves: HF = {};
    const halfTensors: Record<string, wg.Tensor> = {};
    for (const [k, v] of Object.entries(w)) {
      halfTensors[k] = wg.tidy(() => toHalf(wg.tensor(Float32Array.from(v.data), v.shape)));
      halves[k] = { shape: v.shape, data: Float64Array.from(await halfTensors[k]!.toArray()) };
    }
    const halfFile = await wg.io.saveSafetensors(halfTensors, { format: 'pt' });
    Object.values(halfTensors).forEach((t) => t.dispose());
    expect(wg.io.readSafetensorsHeader(halfFile).tensors['wte.weight']!.dtype).toBe('F16');
    const fromHalf = wg.models.gpt2.fromSafetensors(halfFile, { config: { n_head: HEADS } });
    await expectLogits(fromHalf, halves, rng, HEADS);
    fromHalf.dispose();
  });

  it('infers the heads as width / 64 without a config, and otherwise asks for config.n_head', async () => {
    const rng = new Rng();
    const wide = randomGPT2(rng, { layers: 1, dim: 64 });
    const file = await fileOf(wide);
    await settleGarbage();
    const live = wg.memory().liveBytes;
    const model = wg.models.gpt2.fromSafetensors(file);
    expect(model.config).toMatchObject({ dim: 64, heads: 1, layers: 1, activation: 'gelu_tanh' });
    const { dropout, ...shapes } = model.config; // inspect(): the configuration from the header alone
    expect(dropout).toBe(0);
    expect(wg.models.gpt2.inspect(file)).toEqual(shapes);
    await wg.models.gpt2.toSafetensors(model);
    model.dispose();
    await settleGarbage();
    expect(wg.memory().liveBytes).toBe(live); // loading and saving leave nothing behind
    const narrow = await fileOf(randomGPT2(rng));
    expect(() => wg.models.gpt2.fromSafetensors(narrow)).toThrowError(/n_embd 12 is not a multiple of 64.*pass \{ config: \{ n_head \} \}/);
    expect(() => wg.models.gpt2.fromSafetensors(narrow, { config: { n_head: 5 } })).toThrowError(/n_head 5 must be a positive divisor of n_embd 12/);
    expect(() => wg.models.gpt2.fromSafetensors(narrow, { config: { n_head: 3, n_layer: 12 } })).toThrowError(/config.n_layer is 12, but the checkpoint's tensors have 2/);
    expect(() => wg.models.gpt2.fromSafetensors(narrow, { config: { n_head: 3, activation_function: 'relu' } })).toThrowError(/activation_function "relu" is not supported/);
    const exact = wg.models.gpt2.fromSafetensors(narrow, { config: { n_head: 3, activation_function: 'gelu' } });
    expect(exact.config.activation).toBe('gelu');
    await expect(wg.models.gpt2.toSafetensors(exact)).rejects.toThrowError(/GELU is exact/);
    exact.dispose();
  });

  it('refuses a checkpoint that is not GPT-2, naming what it lacks, and one with a tensor of the wrong shape', async () => {
    const rng = new Rng();
    const made: wg.Tensor[] = [];
    const t = (shape: number[]) => (made.push(wg.randn(shape)), made[made.length - 1]!);
    const llama = await wg.io.saveSafetensors({ 'model.embed_tokens.weight': t([V, D]), 'model.layers.0.self_attn.q_proj.weight': t([D, D]), 'lm_head.weight': t([V, D]) });
    expect(() => wg.models.gpt2.fromSafetensors(llama)).toThrowError(
      /not a GPT-2 checkpoint \(Hugging Face names\): it lacks wte\.weight, wpe\.weight, h\.0\.ln_1\.weight.*; it holds .*model\.embed_tokens\.weight/,
    );
    const w = randomGPT2(rng);
    const noBias = { ...w };
    delete noBias['h.1.mlp.c_fc.bias'];
    expect(() => wg.models.gpt2.fromSafetensors(new Uint8Array(0))).toThrowError(/safetensors/);
    await expect(async () => wg.models.gpt2.fromSafetensors(await fileOf(noBias), { config: { n_head: HEADS } })).rejects.toThrowError(/it lacks h\.1\.mlp\.c_fc\.bias;/);
    const wrong = { ...w, 'h.0.attn.c_attn.weight': { shape: [3 * D, D], data: w['h.0.attn.c_attn.weight']!.data } };
    await expect(async () => wg.models.gpt2.fromSafetensors(await fileOf(wrong), { config: { n_head: HEADS } })).rejects.toThrowError(
      /h\.0\.attn\.c_attn\.weight is \[36, 12\]; a GPT-2 with n_embd 12, vocab_size 11, n_positions 9 has \[12, 36\]/,
    );
    const extra = await fileOf(w, (k) => k, { 'h.0.attn.rotary.inv_freq': t([2]) });
    expect(() => wg.models.gpt2.fromSafetensors(extra, { config: { n_head: HEADS } })).toThrowError(/tensors a GPT-2 of 2 blocks does not have: h\.0\.attn\.rotary\.inv_freq/);
    for (const x of made) x.dispose();
  });

  it('fine-tunes with LoRA on the attention projections (c_attn, c_proj): the loss falls, merge() keeps the logits, the file keeps its names', async () => {
    const rng = new Rng();
    const w = randomGPT2(rng);
    const model = wg.models.gpt2.fromSafetensors(await fileOf(w), { config: { n_head: HEADS } });
    const adapted = wg.nn.lora(model, { rank: 2, alpha: 4 });
    expect(adapted.layers).toEqual(['blocks.0.attn.inProj', 'blocks.0.attn.outProj', 'blocks.1.attn.inProj', 'blocks.1.attn.outProj']);
    await expect(wg.models.gpt2.toSafetensors(model)).rejects.toThrowError(/LoRA adapters .* merge\(\) them/);
    const optimizer = new wg.optim.AdamW(adapted.parameters(), { lr: 3e-2, weightDecay: 0 });
    const trainer = new wg.Trainer({ model, optimizer, loss: 'cross-entropy' });
    const ids = Int32Array.from({ length: 4 * C }, (_, k) => (k * 3) % V);
    const x = wg.tensor(ids, [4, C], { dtype: 'int32' });
    const y = wg.tensor(Int32Array.from(ids, (v) => (v + 1) % V), [4, C], { dtype: 'int32' });
    const losses: number[] = [];
    for (let s = 0; s < 8; s++) losses.push((await trainer.step(x, y)).loss);
    expect(losses[7]!).toBeLessThan(losses[0]! * 0.9);
    const before = await wg.noGrad(() => model.forward(x)).toArray();
    adapted.merge();
    expectClose(await wg.noGrad(() => model.forward(x)).toArray(), before, { rtol: 1e-4, atol: 1e-4, what: 'merged logits' });
    const file = await wg.models.gpt2.toSafetensors(model);
    expect(Object.keys(wg.io.readSafetensorsHeader(file).tensors)).toEqual(Object.keys(w).sort());
    optimizer.dispose();
    model.dispose();
    x.dispose();
    y.dispose();
  });
});
