// Tensors larger than one storage binding, under a small binding cap (a simulated small GPU):
// the same work run capped and uncapped (each with its own device) gives the same results.
import { afterAll, describe, expect, it } from 'vitest';
import { relErr, Rng, wg } from '../helpers';
import { runtime } from '../../src/runtime/device';

const CAP = 64 * 1024; // bytes per storage binding: a 300×200 weight (240 KB) is far over it

afterAll(() => wg.shutdown());

interface Outcome {
  y: Float32Array;
  dx: Float32Array;
  dw: Float32Array;
  db: Float32Array;
  w1: Float32Array;
  big: Float32Array;
  dispatches: number;
}

/** A Linear layer with a weight larger than the cap, forward, backward and two SGD steps. */
async function run(budget: wg.Budget | undefined, seed: number): Promise<Outcome> {
  wg.shutdown();
  await wg.init({ budget });
  const d0 = runtime().executor.dispatchCount;
  wg.manualSeed(seed);
  const layer = new wg.nn.Linear(300, 200);
  const opt = new wg.optim.SGD(layer.parameters(), { lr: 0.1, momentum: 0.9 });
  const rng = new Rng(seed);
  const x = wg.tensor(Float32Array.from(rng.array(7 * 300)), [7, 300], { requiresGrad: true });
  const target = wg.tensor(Float32Array.from(rng.array(7 * 200)), [7, 200]);
  let y: Float32Array = new Float32Array();
  for (let step = 0; step < 2; step++) {
    opt.zeroGrad();
    x.grad?.dispose();
    x.grad = null;
    const out = layer.forward(x);
    if (step === 0) y = (await out.toArray()) as Float32Array;
    wg.mse(out, target).backward();
    opt.step();
  }
  const big = wg.add(wg.full([100_000], 1.5), wg.rand([100_000], { seed }));
  return {
    y,
    dx: (await x.grad!.toArray()) as Float32Array,
    dw: (await layer.weight.grad!.toArray()) as Float32Array,
    db: (await layer.bias!.grad!.toArray()) as Float32Array,
    w1: (await layer.weight.toArray()) as Float32Array,
    big: (await big.toArray()) as Float32Array,
    dispatches: runtime().executor.dispatchCount - d0,
  };
}

describe('tensors larger than one storage binding', () => {
  it('a Linear whose weight is over the binding cap trains in row blocks, with the results of an uncapped run', async () => {
    const seed = (Math.random() * 1e9) | 0;
    const capped = await run({ maxBindingBytes: CAP }, seed);
    const free = await run(undefined, seed);
    expect(capped.dispatches).toBeGreaterThan(free.dispatches); // the work really was split
    // Forward splits only the output columns (same sums, same order): identical. Backward
    // splits K for dx, so sums associate differently: equal within float32 rounding.
    expect(Array.from(capped.y)).toEqual(Array.from(free.y));
    expect(Array.from(capped.big)).toEqual(Array.from(free.big));
    for (const k of ['dx', 'dw', 'db', 'w1'] as const) {
      expect(relErr(capped[k], free[k]), `${k} (seed ${seed})`).toBeLessThan(1e-6);
    }
  });

  it('where no segmentation is possible, a LimitError names the op, the tensor, its size and the limit', async () => {
    wg.shutdown();
    await wg.init({ budget: { maxBindingBytes: CAP } });
    const w = wg.rand([300, 200]);
    // A transposed view's rows each span the whole weight: nothing smaller binds.
    // Copies are cut into blocks however the view is laid out ...
    const t = wg.contiguous(w.transpose());
    const [a, b] = await Promise.all([w.toArray(), t.toArray()]);
    expect(b[7 * 300 + 5]).toBe(a[5 * 200 + 7]);
    // ... but one softmax row cannot be split.
    expect(() => wg.softmax(w.reshape([60000]))).toThrowError(wg.LimitError);
    expect(() => wg.softmax(w.reshape([60000]))).toThrowError(
      /softmax(\/\w+)?: tensor \[300, 200\] float32 \(234\.4 KiB\) is larger than one storage binding may be \(maxStorageBufferBindingSize 64\.0 KiB\)/,
    );
  });
});
