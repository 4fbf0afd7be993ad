import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { gpu, relErr, Rng, wg } from '../helpers';
import { runtime } from '../../src/runtime/device';

beforeAll(() => gpu());
afterAll(() => wg.shutdown());

type Factory = () => wg.nn.Module;
const mlp: Factory = () => new wg.nn.Sequential(new wg.nn.Flatten(), new wg.nn.Linear(36, 16), new wg.nn.ReLU(), new wg.nn.Linear(16, 5));
const cnn: Factory = () =>
  new wg.nn.Sequential(
    new wg.nn.Conv2d(1, 4, 3, { padding: 1 }),
    new wg.nn.ReLU(),
    new wg.nn.MaxPool2d(2),
    new wg.nn.Flatten(),
    new wg.nn.Linear(4 * 3 * 3, 5),
  );

function batch(rng: Rng, n: number): { x: wg.Tensor; y: wg.Tensor } {
  const x = wg.tensor(Float32Array.from(rng.array(n * 36)), [n, 1, 6, 6]);
  const y = wg.tensor(Int32Array.from({ length: n }, () => rng.int(5)), [n], { dtype: 'int32' });
  return { x, y };
}

/** A trainer over a model made with a fixed seed (so two trainers start identical). */
function trainer(factory: Factory, microBatchSize: number | 'auto', memoryBudgetBytes?: number): wg.Trainer {
  wg.manualSeed(1234);
  const model = factory();
  const optimizer = new wg.optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
  return new wg.Trainer({ model, optimizer, loss: 'cross-entropy', microBatchSize, memoryBudgetBytes });
}

async function flat(ts: wg.Tensor[]): Promise<Float64Array> {
  const parts = await Promise.all(ts.map((t) => t.toArray()));
  return Float64Array.from(parts.flatMap((p) => Array.from(p)));
}

describe('micro-batches give the full-batch update', () => {
  for (const [name, factory] of [['MLP', mlp], ['CNN', cnn]] as const) {
    it(`${name}: batch 100 in micro-batches of 30 gives the gradients and parameters of one batch of 100`, async () => {
      const rng = new Rng();
      const { x, y } = batch(rng, 100);
      const full = trainer(factory, 100);
      const micro = trainer(factory, 30);
      const a = await full.step(x, y);
      const b = await micro.step(x, y);
      expect(a.microBatches).toBe(1);
      expect(b.microBatches).toBe(4); // 30 + 30 + 30 + 10
      expect(Math.abs(a.loss - b.loss)).toBeLessThan(1e-5 * Math.abs(a.loss));
      const pa = full.model.parameters();
      const pb = micro.model.parameters();
      expect(relErr(await flat(pb.map((p) => p.grad!)), await flat(pa.map((p) => p.grad!)))).toBeLessThan(1e-5);
      expect(relErr(await flat(pb), await flat(pa))).toBeLessThan(1e-5);
      // A second step too (momentum state in play).
      await full.step(x, y);
      await micro.step(x, y);
      expect(relErr(await flat(pb), await flat(pa))).toBeLessThan(1e-5);
    });
  }
});

describe('the memory planner', () => {
  it('with a budget that fits about an eighth of the batch, plans ≥ 8 micro-batches and stays under budget', async () => {
    const rng = new Rng();
    const { x, y } = batch(rng, 256);
    const roomy = trainer(cnn, 'auto', 1 << 30).plan(x.shape, y.shape);
    expect(roomy.microBatches).toBe(1);
    const budget = roomy.persistentBytes + (roomy.estimatedPeakBytes - roomy.persistentBytes) / 8;
    const t = trainer(cnn, 'auto', budget);
    const plan = t.plan(x.shape, y.shape);
    expect(plan.microBatches).toBeGreaterThanOrEqual(8);
    expect(plan.estimatedPeakBytes).toBeLessThanOrEqual(budget);
    expect(plan.reason).toMatch(/micro-batch/);
    const r = await t.step(x, y);
    expect(r.microBatches).toBe(plan.microBatches);
    expect(t.lastPeakBytes).toBeLessThanOrEqual(budget);
  });

  it('a budget too small for one sample is a LimitError that says so', () => {
    const t = trainer(mlp, 'auto', 1024);
    expect(() => t.plan([10, 1, 6, 6])).toThrowError(wg.LimitError);
    expect(() => t.plan([10, 1, 6, 6])).toThrowError(/even one sample needs .* more than the memory budget of 1\.0 KiB/);
  });
});

describe('out-of-memory recovery', () => {
  it('an allocation failure in the middle of a step is recovered: same parameters as an undisturbed step', async () => {
    const rng = new Rng();
    const { x, y } = batch(rng, 64);
    // Undisturbed, with the micro-batch the recovery will fall back to (32).
    const clean = trainer(mlp, 32);
    await clean.step(x, y);
    const disturbed = trainer(mlp, 64);
    runtime().pool.failAfter = 12; // fails inside the forward/backward pass
    const r = await disturbed.step(x, y);
    expect(runtime().pool.failAfter).toBeNull(); // the failure did happen
    expect(r.recoveries).toBe(1);
    expect(r.microBatchSize).toBe(32);
    const a = await flat(clean.model.parameters());
    const b = await flat(disturbed.model.parameters());
    expect(Array.from(b)).toEqual(Array.from(a));
    expect(disturbed.plan(x.shape, y.shape).reason).toMatch(/halved after running out of memory/);
    expect(disturbed.steps).toBe(1);
  });
});

describe('Trainer.step checks what it is given', () => {
  it('arrays instead of tensors are a DTypeError naming which argument and how to make a tensor', async () => {
    const t = trainer(mlp, 'auto');
    const x = wg.zeros([4, 1, 6, 6]);
    const y = wg.tensor(new Int32Array(4));
    await expect(t.step(x, new Int32Array(4) as unknown as wg.Tensor)).rejects.toThrowError(
      /^Trainer\.step: y must be a Tensor, got an Int32Array \(wg\.tensor\(y, shape, \{ dtype: 'int32' \}\) makes one\)$/,
    );
    await expect(t.step(new Float32Array(144) as unknown as wg.Tensor, y)).rejects.toThrowError(/^Trainer\.step: x must be a Tensor, got a Float32Array/);
    await expect(t.step(x, y)).resolves.toMatchObject({ skipped: false });
    expect(t.steps).toBe(1);
  });
});

describe('a step whose loss or gradients are not finite', () => {
  /** The parameters and the optimizer's momentum, read back. */
  async function state(t: wg.Trainer): Promise<number[]> {
    const momentum = Object.values(t.optimizer.stateDict().state).flatMap((s) => Object.values(s.buffers));
    return Array.from(await flat([...t.model.parameters(), ...momentum]));
  }

  function nanBatch(rng: Rng, n: number): { x: wg.Tensor; y: wg.Tensor } {
    const data = Float32Array.from(rng.array(n * 36));
    data[7] = NaN; // one pixel of one sample
    return { x: wg.tensor(data, [n, 1, 6, 6]), y: wg.tensor(Int32Array.from({ length: n }, () => rng.int(5)), [n], { dtype: 'int32' }) };
  }

  it('is skipped and reported: parameters, optimizer state and step count untouched, gradients dropped, one warning', async () => {
    const rng = new Rng();
    const t = trainer(mlp, 'auto');
    const ok = batch(rng, 16);
    await t.step(ok.x, ok.y); // creates the momentum buffers
    const before = await state(t);
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      const bad = nanBatch(rng, 16);
      const r = await t.step(bad.x, bad.y);
      expect(r.skipped).toBe(true);
      expect(r.skipReason).toMatch(/the loss is NaN/);
      expect(r.skippedSteps).toBe(1);
      expect(Number.isNaN(r.loss)).toBe(true);
      expect(t.steps).toBe(1);
      expect(t.optimizer.stepCount).toBe(1);
      expect(t.model.parameters().every((p) => p.grad === null)).toBe(true);
      expect(await state(t)).toEqual(before);
      const again = await t.step(bad.x, bad.y);
      expect(again.skippedSteps).toBe(2);
      expect(warn).toHaveBeenCalledTimes(1);
      expect(String(warn.mock.calls[0]![0])).toMatch(/step 2\b.*the loss is NaN.*skipped.*errorIfNonfinite/s);
    } finally {
      warn.mockRestore();
    }
    const next = await t.step(ok.x, ok.y);
    expect(next.skipped).toBe(false);
    expect(next.skipReason).toBeNull();
    expect(t.steps).toBe(2);
    expect(await state(t)).not.toEqual(before);
  });

  it('non-finite gradients under a finite loss are skipped too', async () => {
    const rng = new Rng();
    wg.manualSeed(1234);
    const model = mlp();
    const optimizer = new wg.optim.SGD(model.parameters(), { lr: 0.1 });
    // sqrt(out · 0) is 0 (a finite loss), but its gradient at 0 is inf · 0 = NaN.
    const t = new wg.Trainer({ model, optimizer, loss: (out) => wg.mean(wg.sqrt(wg.mul(out, 0))) });
    const before = await state(t);
    const { x } = batch(rng, 8);
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      const r = await t.step(x, wg.zeros([8, 5]));
      expect(r.loss).toBe(0);
      expect(r.skipped).toBe(true);
      expect(r.skipReason).toMatch(/gradient elements are inf or NaN/);
      expect(warn).toHaveBeenCalledTimes(1);
    } finally {
      warn.mockRestore();
    }
    expect(t.steps).toBe(0);
    expect(await state(t)).toEqual(before);
  });

  it('errorIfNonfinite throws a NonFiniteError instead, with nothing changed', async () => {
    const rng = new Rng();
    wg.manualSeed(1234);
    const model = mlp();
    const optimizer = new wg.optim.Adam(model.parameters(), { lr: 0.01 });
    const t = new wg.Trainer({ model, optimizer, loss: 'cross-entropy', errorIfNonfinite: true });
    const ok = batch(rng, 16);
    await t.step(ok.x, ok.y);
    const before = await state(t);
    const bad = nanBatch(rng, 16);
    const err = await t.step(bad.x, bad.y).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(wg.NonFiniteError);
    expect(err).toBeInstanceOf(wg.WebGradError);
    expect((err as Error).message).toMatch(/^Trainer\.step \(step 2\): the loss is NaN; the update was skipped/);
    expect(t.steps).toBe(1);
    expect(t.model.parameters().every((p) => p.grad === null)).toBe(true);
    expect(await state(t)).toEqual(before);
  });

  it('fit() reports the skipped step and goes on training', async () => {
    const rng = new Rng();
    let poison = false; // the second step's input turns NaN
    class Poison extends wg.nn.Module {
      forward(x: wg.Tensor): wg.Tensor {
        return poison ? wg.mul(x, NaN) : x;
      }
    }
    wg.manualSeed(1234);
    const model = new wg.nn.Sequential(new Poison(), mlp());
    const optimizer = new wg.optim.SGD(model.parameters(), { lr: 0.1 });
    const t = new wg.Trainer({ model, optimizer, loss: 'cross-entropy' });
    const data = wg.data.makeDataset({
      images: Uint8Array.from({ length: 48 * 36 }, () => rng.int(256)),
      labels: Uint8Array.from({ length: 48 }, () => rng.int(5)),
      imageShape: [1, 6, 6],
      numClasses: 5,
    });
    const steps: wg.StepInfo[] = [];
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      await t.fit(data, {
        epochs: 1,
        batchSize: 16,
        onStep: (s) => {
          steps.push(s);
          poison = s.batch === 0;
        },
      });
    } finally {
      warn.mockRestore();
    }
    expect(steps.map((s) => s.skipped)).toEqual([false, true, false]);
    expect(t.steps).toBe(2);
    expect((await flat(t.model.parameters())).every(Number.isFinite)).toBe(true);
  });
});
