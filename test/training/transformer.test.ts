// nn.MultiheadAttention and nn.TransformerBlock: against float64 references built from their own
// parameters (fused QKV projection, per-head attention, output projection; pre-norm block with a
// GELU MLP); the fused projection's gradient (written in place into one [B, T, 3·D] tensor)
// against finite differences; parameter gradients against the same math through public ops; the
// KV cache: step-by-step causal attention equals the full computation; dropout only in training;
// a small block learns; memory stays flat.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selfAttention } from '../../src/ops/attention';
import { expectClose, gpu, gpuTensor, gradCheck, relErr, Rng, sizeOf, wg } from '../helpers';
import * as ref from '../reference/attention';
import { gelu } from '../reference/elementwise';

beforeAll(() => gpu());
afterAll(() => wg.shutdown());

async function values(t: wg.Tensor): Promise<Float64Array> {
  return Float64Array.from(await t.toArray());
}

/** x [N, I] · Wᵀ + b for W [O, I]. */
function linear(x: Float64Array, W: Float64Array, b: Float64Array | null, N: number, I: number, O: number): Float64Array {
  const out = new Float64Array(N * O);
  for (let n = 0; n < N; n++) for (let o = 0; o < O; o++) {
    let s = b ? b[o]! : 0;
    for (let i = 0; i < I; i++) s += x[n * I + i]! * W[o * I + i]!;
    out[n * O + o] = s;
  }
  return out;
}

/** Float64 self-attention: qkv [B, T, 3, H, Dh] → merged heads [B, T, H·Dh]. */
function attendRef(qkv: Float64Array, B: number, T: number, H: number, Dh: number, causal: boolean): Float64Array {
  const part = (i: number) => {
    const out = new Float64Array(B * H * T * Dh);
    for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) for (let h = 0; h < H; h++) for (let d = 0; d < Dh; d++) {
      out[((b * H + h) * T + t) * Dh + d] = qkv[(((b * T + t) * 3 + i) * H + h) * Dh + d]!;
    }
    return out;
  };
  const o = ref.attention(part(0), part(1), part(2), { B, H, Tq: T, Tk: T, Dh, causal });
  const merged = new Float64Array(B * T * H * Dh);
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) for (let h = 0; h < H; h++) for (let d = 0; d < Dh; d++) {
    merged[((b * T + t) * H + h) * Dh + d] = o[((b * H + h) * T + t) * Dh + d]!;
  }
  return merged;
}

async function mhaRef(m: wg.nn.MultiheadAttention, x: Float64Array, B: number, T: number): Promise<Float64Array> {
  const D = m.dim;
  const [Wi, bi, Wo, bo] = await Promise.all([m.inProj.weight, m.inProj.bias!, m.outProj.weight, m.outProj.bias!].map(values));
  const qkv = linear(x, Wi!, bi!, B * T, D, 3 * D);
  return linear(attendRef(qkv, B, T, m.heads, m.headDim, m.causal), Wo!, bo!, B * T, D, D);
}

function layerNormRef(x: Float64Array, w: Float64Array, b: Float64Array, N: number, D: number): Float64Array {
  const out = new Float64Array(N * D);
  for (let n = 0; n < N; n++) {
    let mu = 0;
    for (let d = 0; d < D; d++) mu += x[n * D + d]! / D;
    let v = 0;
    for (let d = 0; d < D; d++) v += (x[n * D + d]! - mu) ** 2 / D;
    for (let d = 0; d < D; d++) out[n * D + d] = ((x[n * D + d]! - mu) / Math.sqrt(v + 1e-5)) * w[d]! + b[d]!;
  }
  return out;
}

// First in the file: no earlier test's garbage is collected while it measures memory.
describe('training', () => {
  it('learns: a 2-block causal model fits a small sequence task, and memory stays flat', async () => {
    wg.manualSeed(11);
    const [B, T, D] = [4, 8, 16];
    const blocks = [new wg.nn.TransformerBlock(D, 4, { causal: true }), new wg.nn.TransformerBlock(D, 4, { causal: true })];
    const model = new wg.nn.Sequential(...blocks);
    const opt = new wg.optim.Adam(model.parameters(), { lr: 3e-3 });
    // Target: each position's output is the running mean of the inputs so far (needs causal attention).
    const xData = new Rng(5).array(B * T * D);
    const yData = new Float64Array(xData.length);
    for (let b = 0; b < B; b++) for (let d = 0; d < D; d++) {
      let s = 0;
      for (let t = 0; t < T; t++) {
        s += xData[(b * T + t) * D + d]!;
        yData[(b * T + t) * D + d] = s / (t + 1);
      }
    }
    const x = gpuTensor(xData, [B, T, D]);
    const y = gpuTensor(yData, [B, T, D]);
    const step = async () => {
      opt.zeroGrad();
      const loss = wg.tidy(() => {
        const l = wg.mse(model.forward(x), y);
        l.backward();
        return l;
      });
      opt.step();
      const v = await loss.item();
      loss.dispose();
      return v;
    };
    const first = await step();
    await step();
    const live = wg.memory().liveBytes;
    let last = first;
    for (let i = 0; i < 60; i++) last = await step();
    expect(wg.memory().liveBytes).toBe(live);
    expect(last).toBeLessThan(0.3 * first);
    expect(sizeOf(x.shape)).toBe(B * T * D);
  });
});

describe('MultiheadAttention', () => {
  it('is the fused projection, per-head attention and the output projection (float64 reference)', async () => {
    const rng = new Rng();
    for (const causal of [false, true]) {
      const [B, T, D, H] = [2, 5, 12, 3];
      const m = new wg.nn.MultiheadAttention(D, H, { causal });
      const x = rng.array(B * T * D);
      const y = m.forward(gpuTensor(x, [B, T, D]));
      expect(y.shape).toEqual([B, T, D]);
      expectClose(await y.toArray(), await mhaRef(m, x, B, T), { seed: rng.seed, atol: 2e-5, what: `causal ${causal}` });
      expect(m.namedParameters().map(([n]) => n)).toEqual(['inProj.weight', 'inProj.bias', 'outProj.weight', 'outProj.bias']);
    }
  });

  it('the fused projection\'s gradient, written in place into one [B, T, 3·D] tensor, matches finite differences', async () => {
    const rng = new Rng();
    const [B, T, H, Dh] = [2, 7, 3, 5];
    await gradCheck({
      rng,
      inputs: [{ data: rng.array(B * T * 3 * H * Dh), shape: [B, T, 3 * H * Dh] }],
      gpuFn: ([qkv]) => selfAttention(qkv!, H, { causal: true }),
      refFn: ([qkv]) => attendRef(qkv!, B, T, H, Dh, true),
    });
  });

  it('parameter and input gradients equal those of the same math through public ops', async () => {
    const rng = new Rng();
    const [B, T, D, H] = [2, 6, 8, 2];
    const Dh = D / H;
    const m = new wg.nn.MultiheadAttention(D, H, { causal: true });
    const x = gpuTensor(rng.array(B * T * D), [B, T, D], true);
    const g = gpuTensor(rng.array(B * T * D), [B, T, D]);
    const grads = async () => {
      const out = await Promise.all([x, ...m.parameters()].map((t) => values(t.grad!)));
      for (const t of [x, ...m.parameters()]) t.grad = null;
      return out;
    };
    m.forward(x).backward(g);
    const fused = await grads();
    const composite = wg.tidy(() => {
      const qkv = wg.contiguous(wg.transpose(wg.reshape(m.inProj.forward(x), [B, T, 3, H, Dh]), [2, 0, 3, 1, 4]));
      const [q, k, v] = wg.split(qkv, 1, 0).map((t) => wg.reshape(t, [B, H, T, Dh]));
      const o = wg.scaledDotProductAttention(q!, k!, v!, { causal: true });
      return m.outProj.forward(wg.reshape(wg.contiguous(wg.transpose(o, [0, 2, 1, 3])), [B, T, D]));
    });
    composite.backward(g);
    const plain = await grads();
    fused.forEach((f, i) => expect(relErr(f, plain[i]!), `gradient ${i} (seed ${rng.seed})`).toBeLessThan(1e-5));
  });

  it('with a KV cache, step-by-step causal attention equals the full computation (prefill, then one token a step)', async () => {
    const rng = new Rng();
    const [B, T, D, H] = [2, 9, 12, 3];
    const m = new wg.nn.MultiheadAttention(D, H, { causal: true });
    const xData = rng.array(B * T * D);
    const x = gpuTensor(xData, [B, T, D]);
    const full = await values(wg.noGrad(() => m.forward(x)));
    const cache = new wg.nn.KVCache(T);
    const rows = (t0: number, n: number) => full.filter((_, i) => Math.floor(i / D) % T >= t0 && Math.floor(i / D) % T < t0 + n);
    wg.noGrad(() => {
      const prefill = m.forward(wg.narrow(x, 1, 0, 4), { cache });
      expect(cache.length).toBe(4);
      return prefill;
    });
    for (let t = 4; t < T; t++) {
      const step = wg.noGrad(() => m.forward(wg.narrow(x, 1, t, 1), { cache }));
      expect(step.shape).toEqual([B, 1, D]);
      expectClose(await step.toArray(), rows(t, 1), { seed: rng.seed, atol: 2e-5, what: `position ${t}` });
    }
    expect(cache.length).toBe(T);
    // The prefill itself matched too: restart and compare it.
    cache.reset();
    const again = wg.noGrad(() => m.forward(wg.narrow(x, 1, 0, 4), { cache }));
    expectClose(await again.toArray(), rows(0, 4), { seed: rng.seed, atol: 2e-5, what: 'prefill' });
    expect(() => wg.noGrad(() => m.forward(wg.narrow(x, 1, 0, 6), { cache }))).toThrowError(/the KV cache holds 9 positions; 4 are filled and 6 more do not fit/);
    const needsGrad = gpuTensor(xData, [B, T, D], true);
    expect(() => m.forward(needsGrad, { cache })).toThrowError(/a KV cache is for inference/);
    cache.dispose();
  });

  it('drops attention weights only while training', async () => {
    const m = new wg.nn.MultiheadAttention(8, 2, { dropout: 0.5 });
    const x = wg.randn([1, 6, 8], { seed: 1 });
    m.eval();
    const a = await m.forward(x).toArray();
    expect(Array.from(await m.forward(x).toArray())).toEqual(Array.from(a));
    m.train();
    expect(Array.from(await m.forward(x).toArray())).not.toEqual(Array.from(a));
  });

  it('bad shapes are ShapeErrors naming the layer', () => {
    expect(() => new wg.nn.MultiheadAttention(10, 3)).toThrowError(/MultiheadAttention: dim 10 must be a positive multiple of the number of heads 3/);
    expect(() => new wg.nn.MultiheadAttention(12, 3).forward(wg.zeros([2, 5, 8]))).toThrowError(/MultiheadAttention\(12, 3\): input \[2, 5, 8\] is not \[B, T, 12\]/);
  });
});

describe('TransformerBlock', () => {
  it('is x + attn(ln1(x)), then x + mlp(ln2(x)) with a GELU MLP (float64 reference)', async () => {
    const rng = new Rng();
    const [B, T, D, H] = [2, 5, 8, 2];
    const block = new wg.nn.TransformerBlock(D, H, { causal: true, mlpRatio: 2 });
    expect(block.namedParameters().map(([n]) => n)).toEqual([
      'ln1.weight', 'ln1.bias', 'attn.inProj.weight', 'attn.inProj.bias', 'attn.outProj.weight', 'attn.outProj.bias',
      'ln2.weight', 'ln2.bias', 'fc.weight', 'fc.bias', 'proj.weight', 'proj.bias',
    ]);
    // Non-trivial norms' affine parameters.
    block.loadStateDict({
      'ln1.weight': gpuTensor(rng.array(D, 0.5, 1.5), [D]), 'ln1.bias': gpuTensor(rng.array(D), [D]),
      'ln2.weight': gpuTensor(rng.array(D, 0.5, 1.5), [D]), 'ln2.bias': gpuTensor(rng.array(D), [D]),
    }, { strict: false });
    const x = rng.array(B * T * D);
    const y = block.forward(gpuTensor(x, [B, T, D]));
    const [w1, b1, , , , , w2, b2, Wf, bf, Wp, bp] = await Promise.all(block.parameters().map(values));
    const N = B * T;
    const h = Float64Array.from(x);
    const a = await mhaRef(block.attn, layerNormRef(x, w1!, b1!, N, D), B, T);
    a.forEach((v, i) => (h[i] += v));
    const hidden = linear(layerNormRef(h, w2!, b2!, N, D), Wf!, bf!, N, D, 2 * D).map(gelu);
    const out = linear(hidden, Wp!, bp!, N, 2 * D, D).map((v, i) => v + h[i]!);
    expectClose(await y.toArray(), out, { seed: rng.seed, atol: 5e-5 });
  });

  it('with a KV cache, generating token by token gives the full causal outputs', async () => {
    const [B, T, D, H] = [1, 7, 8, 2];
    const block = new wg.nn.TransformerBlock(D, H, { causal: true });
    const x = wg.randn([B, T, D], { seed: 4 });
    const full = await values(wg.noGrad(() => block.forward(x)));
    const cache = new wg.nn.KVCache(T);
    const steps: number[] = [];
    for (let t = 0; t < T; t++) steps.push(...(await wg.noGrad(() => block.forward(wg.narrow(x, 1, t, 1), { cache })).toArray()));
    expectClose(steps, full, { atol: 5e-5 });
    cache.dispose();
  });

});
