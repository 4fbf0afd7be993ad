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

/** Each op on inputs larger than the cap: values and gradients, with the dispatch count. */
async function opsOverTheCap(budget: wg.Budget | undefined, seed: number) {
  wg.shutdown();
  await wg.init({ budget });
  const d0 = runtime().executor.dispatchCount;
  const rng = new Rng(seed);
  const out: Record<string, Float32Array> = {};
  const read = async (name: string, t: wg.Tensor) => (out[name] = (await t.toArray()) as Float32Array);
  const leaf = (shape: number[]) => wg.tensor(Float32Array.from(rng.array(shape.reduce((a, b) => a * b, 1))), shape, { requiresGrad: true });

  // conv2d: x [24, 3, 17, 17] (83 KB) and its output [24, 4, 17, 17] (111 KB) are over the cap.
  const x = leaf([24, 3, 17, 17]);
  const w = leaf([4, 3, 3, 3]);
  const b = leaf([4]);
  const y = wg.conv2d(x, w, b, { padding: 1 });
  await read('conv2d', y);
  // maxPool2d of the conv output (batch-sized tensors over the cap), backward through both.
  const pooled = wg.maxPool2d(y, 2, { stride: 2 });
  await read('maxPool2d', pooled);
  wg.mul(pooled, pooled).sum().backward();
  await read('conv2d.dx', x.grad!);
  await read('conv2d.dw', w.grad!);
  await read('conv2d.db', b.grad!);

  // softmax over rows, sum over rows, crossEntropy: [300, 97] (116 KB) in blocks of rows.
  const s = leaf([300, 97]);
  const sm = wg.softmax(s, 1);
  await read('softmax', sm);
  const rowSums = wg.sum(s, 1);
  await read('sum', rowSums);
  const labels = Int32Array.from({ length: 300 }, () => rng.int(97));
  const ce = wg.crossEntropy(s, labels);
  await read('crossEntropy', ce);
  wg.add(wg.mul(sm, wg.tensor(Float32Array.from(rng.array(300 * 97)), [300, 97])).sum(), ce).backward();
  await read('softmax+crossEntropy.dx', s.grad!);
  return { out, dispatches: runtime().executor.dispatchCount - d0 };
}

describe('ops whose work splits along the batch or the rows', () => {
  it('conv2d (forward, both backward passes), maxPool2d, softmax, sum over rows and crossEntropy give the uncapped results over the binding cap', async () => {
    const seed = (Math.random() * 1e9) | 0;
    const capped = await opsOverTheCap({ maxBindingBytes: CAP }, seed);
    const free = await opsOverTheCap(undefined, seed);
    expect(capped.dispatches).toBeGreaterThan(free.dispatches); // the work really was split
    for (const k of Object.keys(free.out)) {
      // Blocks of images or rows compute each output as one run would, except the weight and bias
      // gradients, summed over blocks of the batch in another association.
      expect(relErr(capped.out[k]!, free.out[k]!), `${k} (seed ${seed})`).toBeLessThan(k === 'conv2d.dw' || k === 'conv2d.db' ? 1e-6 : 1e-7);
    }
  });
});
