import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectClose, gpu, gpuTensor, gradCheck, Rng, sizeOf, wg } from '../helpers';
import { conv2d as refConv2d, geometry } from '../reference/conv2d';
import * as refNorm from '../reference/norm';

beforeAll(() => gpu());
afterAll(() => wg.shutdown());

/** Float64 copies of a module's parameters, in parameters() order. */
async function paramData(m: wg.nn.Module): Promise<Float64Array[]> {
  return Promise.all(m.parameters().map(async (p) => Float64Array.from(await p.toArray())));
}

describe('layers against float64 references and finite differences', () => {
  it('Linear computes x·Wᵀ + b, and its gradients match finite differences', async () => {
    const rng = new Rng();
    const layer = new wg.nn.Linear(5, 3);
    const [W, b] = await paramData(layer);
    const x = rng.array(4 * 5);
    const y = await layer.forward(gpuTensor(x, [4, 5])).toArray();
    const ref = new Float64Array(12);
    for (let i = 0; i < 4; i++)
      for (let o = 0; o < 3; o++) {
        let s = b![o]!;
        for (let k = 0; k < 5; k++) s += x[i * 5 + k]! * W![o * 5 + k]!;
        ref[i * 3 + o] = s;
      }
    expectClose(y, ref, { seed: rng.seed });
    await gradCheck({
      rng,
      inputs: [{ data: x, shape: [4, 5] }, { data: W!, shape: [3, 5] }, { data: b!, shape: [3] }],
      gpuFn: ([xt, wt, bt]) => wg.add(wg.matmul(xt!, wg.transpose(wt!)), bt!),
      refFn: ([xv, wv, bv]) => {
        const out = new Float64Array(12);
        for (let i = 0; i < 4; i++) for (let o = 0; o < 3; o++) {
          let s = bv![o]!;
          for (let k = 0; k < 5; k++) s += xv![i * 5 + k]! * wv![o * 5 + k]!;
          out[i * 3 + o] = s;
        }
        return out;
      },
    });
  });

  it('Conv2d layer matches the reference convolution with its own weights', async () => {
    const rng = new Rng();
    const layer = new wg.nn.Conv2d(2, 3, 3, { padding: 1, stride: 2 });
    const [W, b] = await paramData(layer);
    const x = rng.array(2 * 2 * 7 * 7);
    const y = layer.forward(gpuTensor(x, [2, 2, 7, 7]));
    const g = geometry([2, 2, 7, 7], [3, 2, 3, 3], { stride: 2, padding: 1 });
    expect(y.shape).toEqual([g.N, g.O, g.OH, g.OW]);
    expectClose(await y.toArray(), refConv2d(x, W!, b!, g), { seed: rng.seed });
  });

  it('LayerNorm normalises the last dimensions and its gradients match finite differences', async () => {
    const rng = new Rng();
    const shape = [3, 7];
    const x = rng.array(sizeOf(shape), -2, 2);
    const w = rng.array(7, 0.5, 1.5);
    const b = rng.array(7);
    const ref = (xv: Float64Array, wv: Float64Array, bv: Float64Array): Float64Array => {
      const out = new Float64Array(21);
      for (let r = 0; r < 3; r++) {
        const row = xv.subarray(r * 7, r * 7 + 7);
        const mu = row.reduce((s, v) => s + v, 0) / 7;
        const v = row.reduce((s, q) => s + (q - mu) ** 2, 0) / 7;
        for (let k = 0; k < 7; k++) out[r * 7 + k] = ((row[k]! - mu) / Math.sqrt(v + 1e-5)) * wv[k]! + bv[k]!;
      }
      return out;
    };
    const ln = new wg.nn.LayerNorm(7);
    expectClose(await ln.forward(gpuTensor(x, shape)).toArray(), ref(x, new Float64Array(7).fill(1), new Float64Array(7)), { seed: rng.seed, atol: 1e-5 });
    await gradCheck({
      rng,
      inputs: [{ data: x, shape }, { data: w, shape: [7] }, { data: b, shape: [7] }],
      gpuFn: ([xt, wt, bt]) => {
        const l = new wg.nn.LayerNorm(7);
        l.weight!.dispose();
        l.bias!.dispose();
        l.weight = wt!;
        l.bias = bt!;
        return l.forward(xt!);
      },
      refFn: ([xv, wv, bv]) => ref(xv!, wv!, bv!),
    });
  });

  it('LayerNorm and RMSNorm start as PyTorch (weight 1, bias 0), take several dims and eps, and may have no affine part', async () => {
    const ln = new wg.nn.LayerNorm([2, 3], { eps: 1e-3 });
    const rms = new wg.nn.RMSNorm(3);
    expect(ln.namedParameters().map(([n, p]) => [n, p.shape])).toEqual([['weight', [2, 3]], ['bias', [2, 3]]]);
    expect(Array.from(await ln.weight!.toArray())).toEqual([1, 1, 1, 1, 1, 1]);
    expect(Array.from(await ln.bias!.toArray())).toEqual([0, 0, 0, 0, 0, 0]);
    expect(rms.namedParameters().map(([n, p]) => [n, p.shape])).toEqual([['weight', [3]]]);
    expect(Array.from(await rms.weight!.toArray())).toEqual([1, 1, 1]);
    expect(new wg.nn.LayerNorm(4, { elementwiseAffine: false }).parameters()).toEqual([]);
    expect(new wg.nn.RMSNorm(4, { elementwiseAffine: false }).parameters()).toEqual([]);
    const rng = new Rng();
    const x = rng.array(4 * 6, -2, 2);
    expectClose(await ln.forward(gpuTensor(x, [4, 2, 3])).toArray(), refNorm.layerNorm(x, 6, null, null, 1e-3), { seed: rng.seed, atol: 1e-5 });
    expectClose(await rms.forward(gpuTensor(x, [8, 3])).toArray(), refNorm.rmsNorm(x, 3, null), { seed: rng.seed, atol: 1e-5 });
    expect(() => rms.forward(wg.zeros([2, 4]))).toThrowError('rmsNorm: input [2, 4] does not end with normalizedShape [3]');
  });

  it('RMSNorm: its weight gradient and input gradient match finite differences', async () => {
    const rng = new Rng();
    const shape = [4, 9];
    await gradCheck({
      rng,
      inputs: [{ data: rng.array(36, -2, 2), shape }, { data: rng.array(9, 0.5, 1.5), shape: [9] }],
      gpuFn: ([xt, wt]) => {
        const l = new wg.nn.RMSNorm(9, { eps: 1e-6 });
        l.weight!.dispose();
        l.weight = wt!;
        return l.forward(xt!);
      },
      refFn: ([xv, wv]) => refNorm.rmsNorm(xv!, 9, wv!, 1e-6),
    });
  });

  it('Embedding looks rows up by int32 ids of any shape, and its gradient adds into the rows picked', async () => {
    const rng = new Rng();
    const emb = new wg.nn.Embedding(7, 5);
    expect(emb.namedParameters().map(([n, p]) => [n, p.shape])).toEqual([['weight', [7, 5]]]);
    const table = await emb.weight.toArray();
    const ids = Int32Array.from({ length: 2 * 3 }, () => rng.int(7));
    ids[1] = ids[0]!; // a repeated id: its row gets both gradients
    const out = emb.forward(wg.tensor(ids, [2, 3]));
    expect(out.shape).toEqual([2, 3, 5]);
    expect(Array.from(await out.toArray())).toEqual(Array.from(ids).flatMap((i) => Array.from(table.subarray(i * 5, i * 5 + 5))));
    const g = rng.array(2 * 3 * 5);
    out.backward(gpuTensor(g, [2, 3, 5]));
    const expected = new Float64Array(7 * 5);
    ids.forEach((id, r) => {
      for (let c = 0; c < 5; c++) expected[id * 5 + c]! += g[r * 5 + c]!;
    });
    expectClose(await emb.weight.grad!.toArray(), expected, { seed: rng.seed, atol: 1e-6 });
    expect(() => new wg.nn.Embedding(0, 5)).toThrowError('Embedding(0, 5): numEmbeddings must be a positive integer');
  });

  it('SiLU is x·sigmoid(x), without parameters', async () => {
    const x = [-6, -1, -0.25, 0, 0.5, 3, 20];
    const silu = new wg.nn.SiLU();
    expect(silu.parameters()).toEqual([]);
    expectClose(await silu.forward(wg.tensor(x)).toArray(), x.map((v) => v / (1 + Math.exp(-v))), { atol: 1e-6 });
  });

  it('BatchNorm2d: batch statistics in training (gradients checked), running statistics in eval', async () => {
    const rng = new Rng();
    const shape = [3, 2, 3, 4];
    const x = rng.array(sizeOf(shape), -2, 2);
    const ref = (xv: Float64Array, wv: Float64Array, bv: Float64Array): Float64Array => {
      const out = new Float64Array(xv.length);
      const [N, C, H, W] = shape as [number, number, number, number];
      for (let c = 0; c < C; c++) {
        const idx: number[] = [];
        for (let n = 0; n < N; n++) for (let i = 0; i < H * W; i++) idx.push(((n * C + c) * H * W) + i);
        const mu = idx.reduce((s, i) => s + xv[i]!, 0) / idx.length;
        const v = idx.reduce((s, i) => s + (xv[i]! - mu) ** 2, 0) / idx.length;
        for (const i of idx) out[i] = ((xv[i]! - mu) / Math.sqrt(v + 1e-5)) * wv[c]! + bv[c]!;
      }
      return out;
    };
    const bn = new wg.nn.BatchNorm2d(2);
    expectClose(await bn.forward(gpuTensor(x, shape)).toArray(), ref(x, Float64Array.of(1, 1), Float64Array.of(0, 0)), { seed: rng.seed, atol: 1e-5 });
    // Running statistics moved 10% of the way to the batch statistics (unbiased variance).
    const rm = await bn.runningMean.toArray();
    const rv = await bn.runningVar.toArray();
    for (let c = 0; c < 2; c++) {
      const vals: number[] = [];
      for (let n = 0; n < 3; n++) for (let i = 0; i < 12; i++) vals.push(x[(n * 2 + c) * 12 + i]!);
      const mu = vals.reduce((s, v) => s + v, 0) / vals.length;
      const uv = vals.reduce((s, v) => s + (v - mu) ** 2, 0) / (vals.length - 1);
      expect(rm[c]).toBeCloseTo(0.1 * mu, 5);
      expect(rv[c]).toBeCloseTo(0.9 + 0.1 * uv, 5);
    }
    bn.eval();
    const y = await bn.forward(gpuTensor(x, shape)).toArray();
    const expected = Float64Array.from(x, (v, i) => {
      const c = Math.floor(i / 12) % 2;
      return (v - rm[c]!) / Math.sqrt(rv[c]! + 1e-5);
    });
    expectClose(y, expected, { seed: rng.seed, atol: 1e-5 });
    await gradCheck({
      rng,
      inputs: [{ data: x, shape }, { data: rng.array(2, 0.5, 1.5), shape: [2] }, { data: rng.array(2), shape: [2] }],
      gpuFn: ([xt, wt, bt]) => {
        const l = new wg.nn.BatchNorm2d(2);
        l.weight!.dispose();
        l.bias!.dispose();
        l.weight = wt!;
        l.bias = bt!;
        return l.forward(xt!);
      },
      refFn: ([xv, wv, bv]) => ref(xv!, wv!, bv!),
    });
  });

  it('Dropout is the identity in eval mode and drops in training', async () => {
    const d = new wg.nn.Dropout(0.5);
    const x = wg.ones([1000]);
    const train = await d.forward(x).toArray();
    expect(train.filter((v) => v === 0).length).toBeGreaterThan(300);
    d.eval();
    expect(d.forward(x)).toBe(x);
  });
});

describe('Module', () => {
  it('finds parameters and buffers by property, names them like PyTorch, and switches train/eval', () => {
    const m = new wg.nn.Sequential(new wg.nn.Conv2d(1, 2, 3), new wg.nn.BatchNorm2d(2), new wg.nn.ReLU(), new wg.nn.Flatten(), new wg.nn.Linear(8, 3));
    expect(m.namedParameters().map(([n]) => n)).toEqual(['0.weight', '0.bias', '1.weight', '1.bias', '4.weight', '4.bias']);
    expect(Object.keys(m.stateDict())).toEqual([
      '0.weight', '0.bias', '1.weight', '1.bias', '4.weight', '4.bias', '1.runningMean', '1.runningVar',
    ]);
    m.eval();
    expect(m.layers.every((l) => !l.training)).toBe(true);
    m.train();
    expect(m.layers.every((l) => l.training)).toBe(true);
  });

  it('initialisation is seeded by wg.manualSeed', async () => {
    wg.manualSeed(42);
    const a = await new wg.nn.Linear(10, 10).weight.toArray();
    wg.manualSeed(42);
    const b = await new wg.nn.Linear(10, 10).weight.toArray();
    const c = await new wg.nn.Linear(10, 10).weight.toArray();
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(a)).not.toEqual(Array.from(c));
    // PyTorch's default bound 1/√fan_in.
    expect(Math.max(...Array.from(a, Math.abs))).toBeLessThanOrEqual(1 / Math.sqrt(10));
  });

  it('Embedding starts N(0, 1), seeded by wg.manualSeed', async () => {
    wg.manualSeed(3);
    const a = Array.from(await new wg.nn.Embedding(200, 50).weight.toArray());
    wg.manualSeed(3);
    const b = Array.from(await new wg.nn.Embedding(200, 50).weight.toArray());
    expect(a).toEqual(b);
    const mean = a.reduce((s, v) => s + v, 0) / a.length;
    const std = Math.sqrt(a.reduce((s, v) => s + (v - mean) ** 2, 0) / a.length);
    // 10 000 samples: the mean is within 4 standard errors (0.04) of 0, the std within 0.03 of 1.
    expect(Math.abs(mean)).toBeLessThan(0.04);
    expect(Math.abs(std - 1)).toBeLessThan(0.03);
  });

  it('loadStateDict copies values and checks every name and shape before changing anything', async () => {
    const a = new wg.nn.Sequential(new wg.nn.Linear(3, 4), new wg.nn.ReLU(), new wg.nn.Linear(4, 2));
    const b = new wg.nn.Sequential(new wg.nn.Linear(3, 4), new wg.nn.ReLU(), new wg.nn.Linear(4, 2));
    const before = await b.layers[0]!.parameters()[0]!.toArray();
    const wrong = { ...a.stateDict(), '2.weight': wg.zeros([3, 4]) };
    expect(() => b.loadStateDict(wrong)).toThrowError(/loadStateDict: 2\.weight has shape \[3, 4\], the module expects \[2, 4\]/);
    expect(Array.from(await b.layers[0]!.parameters()[0]!.toArray())).toEqual(Array.from(before));
    expect(() => b.loadStateDict({ '0.weight': wg.zeros([4, 3]) })).toThrowError(/missing 0\.bias, 2\.weight, 2\.bias/);
    const w = b.layers[0]!.parameters()[0]!;
    b.loadStateDict(a.stateDict());
    expect(b.layers[0]!.parameters()[0]).toBe(w); // same tensor, new values
    for (const [k, t] of Object.entries(a.stateDict())) {
      expect(Array.from(await b.stateDict()[k]!.toArray())).toEqual(Array.from(await t.toArray()));
    }
  });

  it('Linear names the feature mismatch', () => {
    expect(() => new wg.nn.Linear(3, 2).forward(wg.zeros([4, 5]))).toThrowError(/Linear\(3, 2\): input \[4, 5\] has 5 features, expected 3/);
  });
});
