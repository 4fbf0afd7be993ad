// Mixed precision on a device without shader-f16 (SwiftShader): the fallback warns once and
// computes in f32, the loss scaler works (skipped steps, backoff, growth), the fallback trains
// bit-identically to 'f32', and the f16 cast (core WGSL, so it runs here) rounds like IEEE
// binary16. The f16 kernels themselves are checked on a GPU by scripts/gpu-check.ts; their
// pipelines and bindings on Dawn's null backend by mixed-precision-f16.test.ts.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { toHalf } from '../../src/ops/half';
import { runtime } from '../../src/runtime/device';
import { LossScaler } from '../../src/train/loss-scaler';
import { gpu, gpuTensor, Rng, wasmBackend, wg } from '../helpers';

beforeAll(() => gpu());
afterAll(() => wg.shutdown());

/** IEEE binary16 rounding to nearest even of a float64 value (the reference for the cast). */
function toHalfRef(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const a = Math.abs(x);
  if (a >= 65520) return Math.sign(x) * Infinity;
  if (a === 0) return x;
  const e = Math.max(Math.floor(Math.log2(a)), -14); // subnormals share exponent -14
  const ulp = 2 ** (e - 10);
  let q = a / ulp;
  const f = Math.floor(q);
  q = q - f > 0.5 || (q - f === 0.5 && f % 2 === 1) ? f + 1 : f;
  return Math.sign(x) * q * ulp;
}

function mlp(seed: number): wg.nn.Module {
  wg.manualSeed(seed);
  return new wg.nn.Sequential(new wg.nn.Linear(12, 16), new wg.nn.ReLU(), new wg.nn.Linear(16, 5));
}

function data(rng: Rng, n: number): { x: wg.Tensor; y: wg.Tensor } {
  return {
    x: gpuTensor(rng.array(n * 12), [n, 12]),
    y: wg.tensor(Int32Array.from({ length: n }, () => rng.int(5)), [n], { dtype: 'int32' }),
  };
}

async function values(ts: readonly wg.Tensor[]): Promise<Float32Array[]> {
  return Promise.all(ts.map(async (t) => Float32Array.from(await t.toArray())));
}

describe("precision 'f16-mixed' without shader-f16", () => {
  it('warns once, then computes in f32: no f16 kernel or cast runs', async () => {
    expect(runtime().hasFeature('shader-f16')).toBe(false);
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      const model = mlp(1);
      const t1 = new wg.Trainer({ model, optimizer: new wg.optim.SGD(model.parameters(), { lr: 0.1 }), loss: 'cross-entropy', precision: 'f16-mixed' });
      const t2 = new wg.Trainer({ model, optimizer: new wg.optim.SGD(model.parameters(), { lr: 0.1 }), loss: 'cross-entropy', precision: 'f16-mixed' });
      expect(warn).toHaveBeenCalledTimes(1);
      expect(String(warn.mock.calls[0]![0])).toMatch(wasmBackend ? /CPU backend keeps float32.*computing in f32/ : /shader-f16.*f32/);
      const { x, y } = data(new Rng(), 6);
      const ran: string[] = [];
      const ex = runtime().executor;
      ex.observer = { onDispatch: (k) => void ran.push(k.name) };
      try {
        await t1.step(x, y);
        await t2.step(x, y);
      } finally {
        ex.observer = null;
      }
      expect(ran.some((n) => n.startsWith('matmul.'))).toBe(true);
      expect(ran.filter((n) => /f16/.test(n))).toEqual([]);
      expect(warn).toHaveBeenCalledTimes(1);
    } finally {
      warn.mockRestore();
    }
  });

  it('trains bit-identically to precision f32 (loss scaling by powers of two is exact)', async () => {
    const rng = new Rng();
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const make = (precision: 'f32' | 'f16-mixed') => {
      const model = mlp(7);
      const optimizer = new wg.optim.SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
      return new wg.Trainer({ model, optimizer, loss: 'cross-entropy', microBatchSize: 3, precision });
    };
    const plain = make('f32');
    const mixed = make('f16-mixed');
    warn.mockRestore();
    expect(plain.lossScale).toBe(1);
    expect(mixed.lossScale).toBe(2 ** 16);
    for (let step = 0; step < 3; step++) {
      const { x, y } = data(rng, 8); // 8 samples in micro-batches of 3: shares 3/8, 3/8, 2/8
      const a = await plain.step(x, y);
      const b = await mixed.step(x, y);
      expect(b.loss, `seed ${rng.seed}`).toBe(a.loss);
      expect(b.skipped).toBe(false);
      expect(b.microBatches).toBe(3);
    }
    const pa = await values(plain.model.parameters());
    const pb = await values(mixed.model.parameters());
    pa.forEach((p, i) => expect(Array.from(pb[i]!), `parameter ${i}, seed ${rng.seed}`).toEqual(Array.from(p)));
  });
});

describe('dynamic loss scaling', () => {
  /**
   * A trainer whose gradients can be made to overflow under the loss scale, as f16 gradients do:
   * the loss ×1e38 stays finite, but times the scale (2^16) its gradient passes f32's 3.4e38.
   */
  function injectable(growthInterval = 2000) {
    const state = { inject: false };
    const model = mlp(3);
    const optimizer = new wg.optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const trainer = new wg.Trainer({
      model,
      optimizer,
      loss: (out, y) => {
        const l = wg.mse(out, y);
        return state.inject ? wg.mul(l, 1e38) : l;
      },
      precision: 'f16-mixed',
      lossScaling: { growthInterval },
    });
    warn.mockRestore();
    return { trainer, state, optimizer };
  }

  /** Inputs and float targets for the mse loss of injectable(). */
  function regression(rng: Rng, n: number): { x: wg.Tensor; y: wg.Tensor } {
    return { x: gpuTensor(rng.array(n * 12), [n, 12]), y: gpuTensor(rng.array(n * 5), [n, 5]) };
  }

  it('a step with inf gradients is skipped: parameters and optimizer state bit-identical, scale halved, gradients dropped', async () => {
    const rng = new Rng();
    const { trainer, state, optimizer } = injectable();
    const first = regression(rng, 6);
    expect((await trainer.step(first.x, first.y)).skipped).toBe(false); // creates the momentum buffers
    const params = await values(trainer.model.parameters());
    const momentum = await values(Object.values(optimizer.stateDict().state).map((s) => s.buffers.momentumBuffer!));
    const scale = trainer.lossScale;
    const steps = trainer.steps;

    state.inject = true;
    const { x, y } = regression(rng, 6);
    const warn = vi.spyOn(console, 'warn');
    const r = await trainer.step(x, y);
    expect(warn, 'an overflow of loss scaling is routine: no warning').not.toHaveBeenCalled();
    warn.mockRestore();
    expect(r.skipped).toBe(true);
    expect(r.skipReason).toMatch(/gradient elements are inf or NaN at loss scale 65536 \(the scale backs off to 32768\)/);
    expect(r.skippedSteps).toBe(1);
    expect(trainer.lossScale).toBe(scale / 2);
    expect(trainer.steps).toBe(steps);
    expect(optimizer.stepCount).toBe(steps);
    expect(trainer.model.parameters().every((p) => p.grad === null)).toBe(true);
    const after = await values(trainer.model.parameters());
    after.forEach((p, i) => expect(Array.from(p), `parameter ${i}`).toEqual(Array.from(params[i]!)));
    const momentumAfter = await values(Object.values(optimizer.stateDict().state).map((s) => s.buffers.momentumBuffer!));
    momentumAfter.forEach((m, i) => expect(Array.from(m), `momentum ${i}`).toEqual(Array.from(momentum[i]!)));

    state.inject = false;
    const r2 = await trainer.step(x, y);
    expect(r2.skipped).toBe(false);
    expect(r2.skippedSteps).toBe(1);
    expect(trainer.steps).toBe(steps + 1);
    const moved = await values(trainer.model.parameters());
    expect(moved.some((p, i) => p.some((v, k) => v !== params[i]![k]))).toBe(true);
  });

  it('the scale doubles after growthInterval finite steps in a row; a skip restarts the count', async () => {
    const rng = new Rng();
    const { trainer, state } = injectable(3);
    const step = async () => {
      const { x, y } = regression(rng, 4);
      return trainer.step(x, y);
    };
    await step();
    await step();
    expect(trainer.lossScale).toBe(2 ** 16);
    await step();
    expect(trainer.lossScale).toBe(2 ** 17);
    await step();
    await step();
    state.inject = true;
    await step(); // skipped: 2^16, count restarts
    state.inject = false;
    expect(trainer.lossScale).toBe(2 ** 16);
    await step();
    await step();
    expect(trainer.lossScale).toBe(2 ** 16);
    await step();
    expect(trainer.lossScale).toBe(2 ** 17);
  });

  it('LossScaler: options are checked; growth stops before the scale overflows f32', () => {
    expect(() => new LossScaler({ growthInterval: 0 })).toThrow(/growthInterval/);
    expect(() => new LossScaler({ backoffFactor: 1 })).toThrow(/backoffFactor/);
    expect(() => new LossScaler({ initScale: -1 })).toThrow(/initScale/);
    const s = new LossScaler({ initScale: 2 ** 127, growthInterval: 1 });
    expect(s.update(true)).toBe(false);
    expect(s.scale).toBe(2 ** 127);
    expect(s.update(false)).toBe(true);
    expect(s.scale).toBe(2 ** 126);
    expect(s.skippedSteps).toBe(1);
  });

  it("rejects an unknown precision", () => {
    const model = mlp(1);
    expect(
      () => new wg.Trainer({ model, optimizer: new wg.optim.SGD(model.parameters(), { lr: 1 }), loss: 'mse', precision: 'bf16' as 'f32' }),
    ).toThrow(/precision must be 'f32' or 'f16-mixed'/);
  });
});

// WebGPU's: the CPU backend keeps float32 (toHalf refuses there).
describe.skipIf(wasmBackend)('the f16 cast (core WGSL: runs on every GPU)', () => {
  it('rounds to nearest even, overflows to ±inf, keeps NaN and signed zero, at odd sizes and offsets', async () => {
    const rng = new Rng();
    const special = [0, -0, 1, -1, 65504, 65519.99, 65520, -70000, 1e-8, -6.0e-5, 5.96e-8, 2 ** -14, 1 + 2 ** -11, 1 + 3 * 2 ** -11, NaN, Infinity, -Infinity];
    for (const n of [1, 3, 17, 130, 1031]) {
      const src = Float64Array.from({ length: n }, (_, i) => (i < special.length ? special[i]! : Math.fround(rng.normal() * 10 ** rng.int(5))));
      const t = wg.tensor(Float32Array.from(src), [n]);
      const h = toHalf(t);
      expect(h.dtype).toBe('float16');
      const got = await h.toArray();
      const want = Array.from(Float32Array.from(src), toHalfRef);
      for (let i = 0; i < n; i++) {
        // Subnormal halves may be flushed to zero by the device (WGSL allows it).
        const sub = Math.abs(want[i]!) < 2 ** -14 && Math.abs(want[i]!) > 0;
        if (sub && got[i] === 0) continue;
        expect(Object.is(got[i], want[i]) || got[i] === want[i], `n ${n}, element ${i}: ${src[i]} → ${got[i]}, expected ${want[i]} (seed ${rng.seed})`).toBe(true);
      }
      t.dispose();
      h.dispose();
    }
  });

  it('keeps the layout of views: a transposed matrix and an offset block; a sparse view is gathered first', async () => {
    const rng = new Rng();
    const base = rng.array(7 * 9);
    const m = gpuTensor(base, [7, 9]);
    // The transposed view converts its storage in place order: read it back flat.
    const t = toHalf(wg.transpose(m));
    expect(t.shape).toEqual([9, 7]);
    expect(t.strides).toEqual([1, 9]);
    expect(() => wg.contiguous(t)).toThrow(/float16/);
    const flat = await t.view([63], [1], t.offset).toArray();
    expect(Array.from(flat)).toEqual(Array.from(base, toHalfRef));
    for (const [what, v, ref] of [
      ['rows 2..4', wg.narrow(m, 0, 2, 3), (r: number, c: number) => base[(r + 2) * 9 + c]!],
      ['columns 3..4 (sparse: gathered)', wg.narrow(m, 1, 3, 2), (r: number, c: number) => base[r * 9 + c + 3]!],
    ] as const) {
      const h = toHalf(v);
      expect(h.shape).toEqual(v.shape);
      expect(h.isContiguous).toBe(true);
      const got = await h.toArray();
      const [rows, cols] = v.shape as [number, number];
      for (let r = 0; r < rows; r++) for (let k = 0; k < cols; k++) expect(got[r * cols + k], `${what} (${r}, ${k})`).toBe(toHalfRef(ref(r, k)));
      h.dispose();
    }
  });

  it('names the op when given a non-float32 tensor', () => {
    expect(() => toHalf(wg.tensor(new Int32Array([1]), [1], { dtype: 'int32' }))).toThrow(/toHalf.*int32/);
  });
});
