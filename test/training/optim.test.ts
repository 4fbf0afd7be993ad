import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectClose, gpu, gpuTensor, Rng, sizeOf, wg } from '../helpers';
import * as optim from '../../src/optim';
import { keep } from '../../src/scope';
import * as ref from '../reference/optim';

beforeAll(() => gpu());

// Awkward sizes: a scalar-like parameter, one smaller and one larger than a workgroup, a matrix.
const shapes = [[1], [17], [130], [5, 26]];
const tol = (seed: number, what: string) => ({ rtol: 1e-5, atol: 1e-6, seed, what });

/** Parameters with random values, and their float64 copies. */
function makeParams(rng: Rng): { params: wg.Tensor[]; values: Float64Array[] } {
  const values = shapes.map((s) => rng.array(sizeOf(s)));
  return { params: values.map((v, i) => gpuTensor(v, shapes[i]!, true)), values };
}

/** Fresh random gradients for every parameter, set as .grad (kept out of tidy scopes). */
function setGrads(rng: Rng, params: wg.Tensor[]): Float64Array[] {
  return params.map((p) => {
    const g = rng.array(p.size, -2, 2);
    p.grad?.dispose();
    p.grad = keep(gpuTensor(g, p.shape));
    return g;
  });
}

async function expectParams(params: wg.Tensor[], expected: Float64Array[], seed: number, what: string): Promise<void> {
  for (let i = 0; i < params.length; i++) {
    expectClose(await params[i]!.toArray(), expected[i]!, tol(seed, `${what}, parameter ${i} ${params[i]!.shape}`));
  }
}

describe('SGD matches the float64 reference over three steps', () => {
  const configs: ref.SGDRef[] = [
    { lr: 0.1 },
    { lr: 0.1, weightDecay: 0.05 },
    { lr: 0.05, momentum: 0.9 },
    { lr: 0.05, momentum: 0.8, dampening: 0.3, weightDecay: 0.01 },
    { lr: 0.05, momentum: 0.9, nesterov: true },
    { lr: 0.02, momentum: 0.7, nesterov: true, weightDecay: 0.1 },
  ];
  for (const cfg of configs) {
    it(JSON.stringify(cfg), async () => {
      const rng = new Rng();
      const { params, values } = makeParams(rng);
      const opt = new optim.SGD(params, cfg);
      const bufs: (Float64Array | null)[] = values.map(() => null);
      for (let step = 0; step < 3; step++) {
        const grads = setGrads(rng, params);
        // Inside tidy: the momentum buffers created by the first step must survive it.
        wg.tidy(() => opt.step());
        values.forEach((v, i) => (bufs[i] = ref.sgdStep(v, grads[i]!, bufs[i]!, cfg)));
      }
      await expectParams(params, values, rng.seed, 'SGD');
      expect(opt.stepCount).toBe(3);
      opt.dispose();
    });
  }
});

describe('Adam and AdamW match the float64 reference over three steps', () => {
  const configs: [string, ref.AdamRef][] = [
    ['Adam', { lr: 0.01 }],
    ['Adam', { lr: 0.02, betas: [0.8, 0.99], weightDecay: 0.1 }],
    ['AdamW', { lr: 0.01, weightDecay: 0.01, decoupled: true }],
    ['AdamW', { lr: 0.1, betas: [0.5, 0.9], eps: 1e-6, weightDecay: 0.2, decoupled: true }],
  ];
  for (const [name, cfg] of configs) {
    it(`${name} ${JSON.stringify(cfg)}`, async () => {
      const rng = new Rng();
      const { params, values } = makeParams(rng);
      const { decoupled: _, ...opts } = cfg;
      const opt = name === 'Adam' ? new optim.Adam(params, opts) : new optim.AdamW(params, opts);
      const states = values.map((v) => ({ step: 0, m: new Float64Array(v.length), v: new Float64Array(v.length) }));
      for (let step = 0; step < 3; step++) {
        const grads = setGrads(rng, params);
        wg.tidy(() => opt.step());
        values.forEach((v, i) => ref.adamStep(v, grads[i]!, states[i]!, cfg));
      }
      await expectParams(params, values, rng.seed, name);
      opt.dispose();
    });
  }

  it('AdamW decays weights by 0.01 by default; Adam not at all', async () => {
    const rng = new Rng();
    const x = rng.array(17);
    const g = rng.array(17);
    for (const [Opt, decoupled, weightDecay] of [[optim.AdamW, true, 0.01], [optim.Adam, false, 0]] as const) {
      const p = gpuTensor(x, [17], true);
      p.grad = gpuTensor(g, [17]);
      new Opt([p], { lr: 0.1 }).step();
      const expected = Float64Array.from(x);
      ref.adamStep(expected, g, { step: 0, m: new Float64Array(17), v: new Float64Array(17) }, { lr: 0.1, weightDecay, decoupled });
      expectClose(await p.toArray(), expected, tol(rng.seed, Opt.name));
    }
  });
});

describe('optimizer behaviour', () => {
  it('updates parameters in place: same Tensor objects, same buffers', () => {
    const rng = new Rng();
    const { params } = makeParams(rng);
    const buffers = params.map((p) => p.buffer());
    for (const opt of [new optim.SGD(params, { lr: 0.1, momentum: 0.9 }), new optim.AdamW(params, { lr: 0.1 })]) {
      setGrads(rng, params);
      opt.step();
      opt.params.forEach((p, i) => {
        expect(p).toBe(params[i]);
        expect(p.buffer()).toBe(buffers[i]);
        expect(p.requiresGrad).toBe(true);
      });
      opt.dispose();
    }
  });

  it('skips parameters without a gradient; Adam counts steps per parameter, like PyTorch', async () => {
    const rng = new Rng();
    const a = rng.array(17);
    const b = rng.array(130);
    const pa = gpuTensor(a, [17], true);
    const pb = gpuTensor(b, [130], true);
    const opt = new optim.Adam([pa, pb], { lr: 0.05 });
    const sa = { step: 0, m: new Float64Array(17), v: new Float64Array(17) };
    const sb = { step: 0, m: new Float64Array(130), v: new Float64Array(130) };
    for (let step = 0; step < 2; step++) {
      const [ga] = setGrads(rng, [pa]);
      opt.step();
      ref.adamStep(a, ga!, sa, { lr: 0.05 });
    }
    expect(Array.from(await pb.toArray())).toEqual(Array.from(Float32Array.from(b)));
    expect(Object.keys(opt.stateDict().state)).toEqual(['0']);
    // Now pb gets its first gradient: its bias correction is that of step 1, not step 3.
    const [ga, gb] = setGrads(rng, [pa, pb]);
    opt.step();
    ref.adamStep(a, ga!, sa, { lr: 0.05 });
    ref.adamStep(b, gb!, sb, { lr: 0.05 });
    await expectParams([pa, pb], [a, b], rng.seed, 'Adam with a late gradient');
    expect(opt.stateDict().state[0]!.step).toBe(3);
    expect(opt.stateDict().state[1]!.step).toBe(1);
    opt.dispose();
  });

  it('zeroGrad frees the gradients and sets them to null', () => {
    const rng = new Rng();
    const { params } = makeParams(rng);
    setGrads(rng, params);
    const grads = params.map((p) => p.grad!);
    const before = wg.memory().liveTensors;
    new optim.SGD(params, { lr: 0.1 }).zeroGrad();
    for (const p of params) expect(p.grad).toBeNull();
    for (const g of grads) expect(g.disposed).toBe(true);
    expect(wg.memory().liveTensors).toBe(before - params.length);
  });

  it('works with gradients from backward(), and a gradient that is a view', async () => {
    const rng = new Rng();
    const x = rng.array(6);
    const p = gpuTensor(x, [2, 3], true);
    wg.mul(p, 3).backward(wg.ones([2, 3]));
    const opt = new optim.SGD([p], { lr: 0.5 });
    opt.step();
    expectClose(await p.toArray(), x.map((v) => v - 1.5), tol(rng.seed, 'from backward'));
    // A transposed gradient is read in its logical order.
    const g = rng.array(6);
    p.grad!.dispose();
    p.grad = gpuTensor([g[0]!, g[3]!, g[1]!, g[4]!, g[2]!, g[5]!], [3, 2]).transpose();
    opt.step();
    expectClose(await p.toArray(), x.map((v, i) => v - 1.5 - 0.5 * g[i]!), tol(rng.seed, 'transposed grad'));
  });

  it('holds no tensors beyond its state; dispose() frees the state', () => {
    const rng = new Rng();
    const { params } = makeParams(rng);
    setGrads(rng, params);
    const before = wg.memory().liveTensors;
    const opt = new optim.Adam(params, { lr: 0.01 });
    opt.step();
    opt.step();
    expect(wg.memory().liveTensors).toBe(before + 2 * params.length);
    opt.dispose();
    expect(wg.memory().liveTensors).toBe(before);
  });

  it('stateDict/loadStateDict resume exactly where the optimizer was', async () => {
    const rng = new Rng();
    const { params } = makeParams(rng);
    const opt = new optim.SGD(params, { lr: 0.1, momentum: 0.9 });
    setGrads(rng, params);
    opt.step();
    opt.lr = 0.05;
    const sd = opt.stateDict();
    expect(sd.step).toBe(1);
    expect(sd.hyperParams).toEqual({ lr: 0.05, momentum: 0.9, dampening: 0, weightDecay: 0, nesterov: false });
    expect(Object.keys(sd.state[0]!.buffers)).toEqual(['momentumBuffer']);
    // A second optimizer over copies of the parameters, restored from the first one's state.
    const copies = await Promise.all(params.map(async (p) => gpuTensor(await p.toArray(), p.shape, true)));
    const resumed = new optim.SGD(copies, { lr: 1 });
    resumed.loadStateDict(sd);
    expect(resumed.lr).toBe(0.05);
    expect(resumed.stepCount).toBe(1);
    // Its state is a copy: freeing the original optimizer does not touch it.
    const grads = setGrads(rng, params);
    copies.forEach((c, i) => (c.grad = gpuTensor(grads[i]!, c.shape)));
    opt.step();
    opt.dispose();
    resumed.step();
    for (let i = 0; i < params.length; i++) {
      expect(Array.from(await copies[i]!.toArray())).toEqual(Array.from(await params[i]!.toArray()));
    }
    // Loading an optimizer's own state dict keeps working (copies are made before freeing).
    resumed.loadStateDict(resumed.stateDict());
    resumed.step();
    resumed.dispose();
  });

  it('loadStateDict checks everything before changing anything', () => {
    const p = wg.zeros([3], { requiresGrad: true });
    const opt = new optim.Adam([p], { lr: 0.1 });
    const bad = { step: 1, hyperParams: { lr: 0.5 }, state: { 0: { step: 1, buffers: { expAvg: wg.zeros([4]) } } } };
    expect(() => opt.loadStateDict(bad)).toThrowError(wg.ShapeError);
    expect(() => opt.loadStateDict(bad)).toThrowError(/Adam.loadStateDict: state "expAvg" \[4\] does not match parameter 0 \[3\]/);
    expect(opt.lr).toBe(0.1);
    expect(() => opt.loadStateDict({ step: 0, hyperParams: { momentum: 0.9 }, state: {} })).toThrowError(/unknown hyper-parameter "momentum"/);
    expect(() => opt.loadStateDict({ step: 0, hyperParams: {}, state: { 2: { step: 1, buffers: {} } } })).toThrowError(/state for parameter 2, but there are 1 parameters/);
    expect(() => opt.loadStateDict({ step: 0, hyperParams: {}, state: { 0: { step: 1, buffers: { momentumBuffer: wg.zeros([3]) } } } })).toThrowError(/unknown state "momentumBuffer"/);
  });

  it('errors name the optimizer and the parameter', () => {
    const p = wg.zeros([3], { requiresGrad: true });
    expect(() => new optim.SGD([], { lr: 0.1 })).toThrowError(/SGD: got an empty parameter list/);
    expect(() => new optim.SGD([p, p], { lr: 0.1 })).toThrowError(/SGD: a parameter appears more than once/);
    expect(() => new optim.SGD([p], { lr: -1 })).toThrowError(/SGD: lr must be a number ≥ 0, got -1/);
    expect(() => new optim.SGD([p], { lr: 0.1, nesterov: true })).toThrowError(/SGD: Nesterov momentum needs momentum > 0 and dampening 0/);
    expect(() => new optim.Adam([p], { lr: 0.1, betas: [0.9, 1] })).toThrowError(/Adam: betas\[1\] must be a number in \[0, 1\), got 1/);
    expect(() => new optim.AdamW([wg.zeros([2], { dtype: 'int32' })], { lr: 0.1 })).toThrowError(wg.DTypeError);
    expect(() => new optim.SGD([wg.zeros([2, 3]).transpose()], { lr: 0.1 })).toThrowError(/SGD: parameter 0 \[3, 2\] is a non-contiguous view/);
    const opt = new optim.SGD([p], { lr: 0.1 });
    p.grad = wg.zeros([4]);
    expect(() => opt.step()).toThrowError(wg.ShapeError);
    expect(() => opt.step()).toThrowError(/SGD.step: the gradient \[4\] of parameter 0 does not match its shape \[3\]/);
  });
});

describe('parameter groups (PyTorch param_groups)', () => {
  it('each group updates with its own hyper-parameters, the rest from the options', async () => {
    const rng = new Rng();
    const { params, values } = makeParams(rng);
    // Group 0: weight decay 0.1 (lr from the options); group 1: its own lr, no decay.
    const groups = [{ params: params.slice(0, 2), weightDecay: 0.1 }, { params: params.slice(2), lr: 0.003, weightDecay: 0 }];
    const opt = new optim.AdamW(groups, { lr: 0.01, betas: [0.8, 0.99] });
    const cfg = (i: number): ref.AdamRef => (i < 2 ? { lr: 0.01, betas: [0.8, 0.99], weightDecay: 0.1, decoupled: true } : { lr: 0.003, betas: [0.8, 0.99], weightDecay: 0, decoupled: true });
    const states = values.map((v) => ({ step: 0, m: new Float64Array(v.length), v: new Float64Array(v.length) }));
    for (let step = 0; step < 3; step++) {
      const grads = setGrads(rng, params);
      opt.step();
      values.forEach((v, i) => ref.adamStep(v, grads[i]!, states[i]!, cfg(i)));
    }
    await expectParams(params, values, rng.seed, 'AdamW with two groups');
    expect(opt.params).toEqual(params);
    expect(opt.paramGroups.map((g) => g.hyperParams)).toEqual([
      { lr: 0.01, betas: [0.8, 0.99], eps: 1e-8, weightDecay: 0.1 },
      { lr: 0.003, betas: [0.8, 0.99], eps: 1e-8, weightDecay: 0 },
    ]);
    // Setting a hyper-parameter on the optimizer sets it in every group.
    opt.lr = 0.5;
    expect(opt.paramGroups.map((g) => g.hyperParams.lr)).toEqual([0.5, 0.5]);
    opt.dispose();
  });

  it('a schedule scales each group from its own base lr (warm-up, then cosine)', () => {
    const p = () => wg.zeros([1], { requiresGrad: true });
    const opt = new optim.SGD([{ params: [p()] }, { params: [p()], lr: 0.5 }], { lr: 1 });
    const warm = new optim.LinearWarmup(opt, { warmupSteps: 2, then: new optim.CosineAnnealingLR(opt, { tMax: 2 }) });
    const seen: number[][] = [];
    for (let e = 0; e < 5; e++, warm.step()) seen.push(opt.paramGroups.map((g) => g.hyperParams.lr as number));
    expectClose(seen.flat(), [0, 0, 0.5, 0.25, 1, 0.5, 0.5, 0.25, 0, 0], { rtol: 1e-12, atol: 1e-12, what: 'lr by group' });
    expect(warm.lastLr).toBeCloseTo(0.5, 12); // epoch 5: the cosine continues past tMax, as in PyTorch
  });

  it('state dicts and checkpoints carry the groups, and load only into the same groups', async () => {
    const rng = new Rng();
    const { params } = makeParams(rng);
    const opt = new optim.AdamW([{ params: params.slice(0, 1), weightDecay: 0.2 }, { params: params.slice(1), weightDecay: 0 }], { lr: 0.01 });
    setGrads(rng, params);
    opt.step();
    const sd = opt.stateDict();
    expect(sd.paramGroups!.map((g) => g.params)).toEqual([[0], [1, 2, 3]]);
    expect(sd.hyperParams).toEqual(sd.paramGroups![0]!.hyperParams);
    const copies = await Promise.all(params.map(async (q) => gpuTensor(await q.toArray(), q.shape, true)));
    const same = new optim.AdamW([{ params: copies.slice(0, 1) }, { params: copies.slice(1) }], { lr: 1, weightDecay: 0 });
    same.loadStateDict(sd);
    expect(same.paramGroups.map((g) => g.hyperParams.weightDecay)).toEqual([0.2, 0]);
    expect(same.lr).toBe(0.01);
    // Checkpoints keep the groups too.
    const model = { stateDict: () => ({}), loadStateDict: () => {} } as unknown as wg.nn.Module;
    const bytes = await wg.io.saveCheckpoint({ model, optimizer: opt });
    const fromFile = new optim.AdamW([{ params: copies.slice(0, 1) }, { params: copies.slice(1) }], { lr: 1, weightDecay: 0 });
    wg.io.loadCheckpoint(bytes, { model, optimizer: fromFile });
    expect(fromFile.paramGroups.map((g) => g.hyperParams.weightDecay)).toEqual([0.2, 0]);
    // Other groups, or one group: refused, naming both.
    const flat = new optim.AdamW(copies, { lr: 1 });
    expect(() => flat.loadStateDict(sd)).toThrowError(
      /AdamW.loadStateDict: the state dict has 2 param groups \(1, 3 parameters\) and this optimizer 1 param group \(4 parameters\); they must be the same groups/,
    );
    expect(() => wg.io.loadCheckpoint(bytes, { model, optimizer: flat })).toThrowError(/they must be the same groups/);
    expect(() => same.loadStateDict({ ...sd, paramGroups: [sd.paramGroups![0]!, { params: [1, 2], hyperParams: {} }] })).toThrowError(/must be the same groups/);
    expect(() => same.loadStateDict({ ...sd, paramGroups: [sd.paramGroups![0]!, { params: [1, 2, 3], hyperParams: { lr: -1 } }] })).toThrowError(
      /AdamW.loadStateDict \(param group 1\): lr must be a number ≥ 0, got -1/,
    );
    expect(same.paramGroups.map((g) => g.hyperParams.weightDecay)).toEqual([0.2, 0]);
    // A state dict without paramGroups is one group (as every file written before groups existed).
    expect(() => same.loadStateDict({ step: 1, hyperParams: { lr: 0.02 }, state: {} })).toThrowError(
      /the state dict has 1 param group \(4 parameters\) and this optimizer 2 param groups \(1, 3 parameters\)/,
    );
    flat.loadStateDict({ step: 1, hyperParams: { lr: 0.02 }, state: {} });
    expect(flat.lr).toBe(0.02);
    expect(flat.stateDict().paramGroups).toBeUndefined();
    for (const o of [opt, same, fromFile, flat]) o.dispose();
  });

  it('bad groups are refused with the group named', () => {
    const a = wg.zeros([2], { requiresGrad: true });
    const b = wg.zeros([3], { requiresGrad: true });
    expect(() => new optim.AdamW([{ params: [a], momentum: 0.9 } as never], { lr: 0.1 })).toThrowError(/AdamW: unknown option "momentum" \(AdamW takes lr, betas, eps, weightDecay\)/);
    expect(() => new optim.AdamW([{ params: [a] }, { params: [b], weightDecay: -1 }], { lr: 0.1 })).toThrowError(/AdamW \(param group 1\): weightDecay must be a number ≥ 0, got -1/);
    expect(() => new optim.SGD([{ params: [a] }, { params: [a] }], { lr: 0.1 })).toThrowError(/SGD: a parameter appears more than once/);
    expect(() => new optim.SGD([{ params: [a] }, 3] as never, { lr: 0.1 })).toThrowError(/SGD: item 1 of the parameter list is neither a Tensor nor a group/);
    expect(() => new optim.SGD([{ params: [a, 'b'] }] as never, { lr: 0.1 })).toThrowError(/SGD: param group 0: item 1 of its params is not a Tensor/);
    expect(() => new optim.SGD([{ params: [] }], { lr: 0.1 })).toThrowError(/SGD: got an empty parameter list/);
    expect(() => new optim.SGD(5 as never, { lr: 0.1 })).toThrowError(/SGD: expected the parameters \(model.parameters\(\)\) or a list of groups/);
    // An empty group next to others is allowed (decayGroups of a model without biases).
    expect(new optim.SGD([{ params: [a] }, { params: [], lr: 1 }], { lr: 0.1 }).paramGroups.length).toBe(2);
  });

  it('decayGroups: Linear and Conv2d weights decay; biases, norms and embeddings do not', () => {
    wg.manualSeed(3);
    const emb = new wg.nn.Embedding(11, 4);
    const model = new wg.nn.Sequential(new wg.nn.Linear(4, 5), new wg.nn.LayerNorm(5), new wg.nn.Linear(5, 3, { bias: false }));
    const holder = new (class extends wg.nn.Module {
      emb = emb;
      conv = new wg.nn.Conv2d(1, 2, 3);
      body = model;
      forward(x: wg.Tensor) {
        return x;
      }
    })();
    const [decay, rest] = optim.decayGroups(holder, 0.1);
    const names = new Map(holder.namedParameters().map(([n, t]) => [t, n]));
    expect(decay.weightDecay).toBe(0.1);
    expect(rest.weightDecay).toBe(0);
    expect(decay.params.map((t) => names.get(t))).toEqual(['conv.weight', 'body.0.weight', 'body.2.weight']);
    expect(rest.params.map((t) => names.get(t))).toEqual(['emb.weight', 'conv.bias', 'body.0.bias', 'body.1.weight', 'body.1.bias']);
    const opt = new optim.AdamW(optim.decayGroups(holder, 0.1), { lr: 1e-3 });
    expect(opt.params.length).toBe(holder.parameters().length);
    expect(() => optim.decayGroups(holder, -1)).toThrowError(/decayGroups: weightDecay must be a number ≥ 0, got -1/);
    holder.dispose();
  });
});

describe('clipGradNorm', () => {
  // 5000 elements span three sum-of-squares workgroups.
  const gradShapes = [[1], [17], [130], [5000]];

  for (const [what, factor] of [['clips when the norm is above maxNorm', 0.5], ['leaves gradients alone below maxNorm', 2]] as const) {
    it(what, async () => {
      const rng = new Rng();
      const params = gradShapes.map((s) => wg.zeros(s, { requiresGrad: true }));
      const grads = setGrads(rng, params);
      const noGrad = wg.ones([7], { requiresGrad: true });
      const { norm: refNorm } = ref.clipGradNorm(grads, 0);
      const maxNorm = refNorm * factor;
      const expected = ref.clipGradNorm(grads, maxNorm);
      const norm = optim.clipGradNorm([...params, noGrad], maxNorm);
      expect(norm.shape).toEqual([]);
      expectClose([await norm.item()], [expected.norm], tol(rng.seed, 'norm'));
      for (let i = 0; i < params.length; i++) {
        expectClose(await params[i]!.grad!.toArray(), expected.scaled[i]!, tol(rng.seed, `grad ${i}`));
      }
      expect(noGrad.grad).toBeNull();
    });
  }

  it('adds up more partial sums than one workgroup holds', async () => {
    const rng = new Rng();
    const params = Array.from({ length: 300 }, () => wg.zeros([3], { requiresGrad: true }));
    const grads = setGrads(rng, params);
    const expected = ref.clipGradNorm(grads, 1);
    const norm = optim.clipGradNorm(params, 1);
    expectClose([await norm.item()], [expected.norm], tol(rng.seed, 'norm of 300 gradients'));
    expectClose(await params[299]!.grad!.toArray(), expected.scaled[299]!, tol(rng.seed, 'last grad'));
  });

  it('returns 0 without gradients; rejects a bad maxNorm', async () => {
    expect(await optim.clipGradNorm([wg.zeros([3], { requiresGrad: true })], 1).item()).toBe(0);
    expect(() => optim.clipGradNorm([], NaN)).toThrowError(/clipGradNorm: maxNorm must be a number ≥ 0, got NaN/);
  });
});

describe('learning-rate schedules', () => {
  const lrs = (s: optim.LRScheduler, n: number): number[] => {
    const out = [s.optimizer.lr];
    for (let i = 1; i < n; i++) {
      s.step();
      out.push(s.optimizer.lr);
    }
    return out;
  };
  const expectLrs = (actual: number[], expected: number[]): void => expectClose(actual, expected, { rtol: 1e-12, atol: 1e-12, what: 'lr' });
  const sgd = (lr: number) => new optim.SGD([wg.zeros([1], { requiresGrad: true })], { lr });

  it('StepLR', () => {
    expectLrs(lrs(new optim.StepLR(sgd(0.1), { stepSize: 2, gamma: 0.5 }), 6), [0.1, 0.1, 0.05, 0.05, 0.025, 0.025]);
    expectLrs(lrs(new optim.StepLR(sgd(1), { stepSize: 3 }), 4), [1, 1, 1, 0.1]);
  });

  it('CosineAnnealingLR (continuing past tMax as PyTorch does)', () => {
    const c = (e: number) => (1 + Math.cos((Math.PI * e) / 4)) / 2;
    expectLrs(lrs(new optim.CosineAnnealingLR(sgd(1), { tMax: 4 }), 6), [1, 0.8535533905932737, 0.5, 0.14644660940672627, 0, c(5)]);
    expectLrs(lrs(new optim.CosineAnnealingLR(sgd(0.1), { tMax: 2, etaMin: 0.01 }), 3), [0.1, 0.055, 0.01]);
  });

  it('LinearWarmup, alone and before a cosine schedule', () => {
    expectLrs(lrs(new optim.LinearWarmup(sgd(1), { warmupSteps: 4 }), 6), [0, 0.25, 0.5, 0.75, 1, 1]);
    expectLrs(lrs(new optim.LinearWarmup(sgd(2), { warmupSteps: 2, startFactor: 0.5 }), 3), [1, 1.5, 2]);
    const opt = sgd(1);
    const warm = new optim.LinearWarmup(opt, { warmupSteps: 4, then: new optim.CosineAnnealingLR(opt, { tMax: 2 }) });
    expectLrs(lrs(warm, 8), [0, 0.25, 0.5, 0.75, 1, 0.5, 0, 0.5]);
  });

  it('the optimizer uses the scheduled lr; state dicts resume the schedule', async () => {
    const rng = new Rng();
    const x = rng.array(17);
    const p = gpuTensor(x, [17], true);
    const opt = new optim.SGD([p], { lr: 0.1 });
    const sched = new optim.StepLR(opt, { stepSize: 1, gamma: 0.5 });
    for (let step = 0; step < 3; step++) {
      const [g] = setGrads(rng, [p]);
      opt.step();
      sched.step();
      const lr = 0.1 * 0.5 ** step;
      for (let i = 0; i < 17; i++) x[i] = x[i]! - lr * g![i]!;
    }
    expectClose(await p.toArray(), x, tol(rng.seed, 'scheduled SGD'));
    expect(sched.lastLr).toBeCloseTo(0.0125, 15);
    // A new schedule on the same optimizer starts from the initial lr, not the decayed one.
    const again = new optim.StepLR(opt, { stepSize: 1, gamma: 0.5 });
    again.loadStateDict(sched.stateDict());
    expect(opt.lr).toBeCloseTo(0.0125, 15);
    expect(() => new optim.StepLR(opt, { stepSize: 0 })).toThrowError(/StepLR: stepSize must be a positive integer, got 0/);
  });
});

afterAll(() => wg.shutdown());
