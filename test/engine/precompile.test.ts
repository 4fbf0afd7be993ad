// Compiling pipelines ahead of their first dispatch: wg.precompile(fn) and Trainer.precompile
// find the kernels in a dry run and compile them in the background (createComputePipelineAsync),
// so that the real run compiles nothing more (a Trainer's step: only the optimizer's update).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gpu, wg } from '../helpers';
import { runtime } from '../../src/runtime/device';

beforeAll(() => gpu());
afterAll(() => wg.shutdown());

/** Names of the kernels whose pipelines get compiled at their dispatch while `fn` runs. */
async function compiledDuring<T>(fn: () => Promise<T>): Promise<string[]> {
  const ex = runtime().executor;
  const names: string[] = [];
  ex.pipelineRecorder = (kernel, constants) => {
    if (!ex.pipelines!.has(kernel, constants)) names.push(kernel.name);
  };
  try {
    await fn();
  } finally {
    ex.pipelineRecorder = null;
  }
  return names;
}

describe('precompiling pipelines', () => {
  it('wg.precompile(fn) compiles what fn dispatches, reporting each; the real run then compiles nothing', async () => {
    const a = wg.randn([5, 7], { seed: 1 });
    const b = wg.randn([7, 3], { seed: 2 });
    // Ops seen nowhere else in this file, so their pipelines are new here.
    const fn = () => wg.softmax(wg.matmul(a, b).mul(3).sub(1), 1);
    const before = wg.memory().liveBytes;
    const seen: wg.PrecompileProgress[] = [];
    const count = await wg.precompile(fn, { onProgress: (p) => seen.push(p) });
    expect(count).toBeGreaterThanOrEqual(3);
    expect(seen.map((p) => p.compiled)).toEqual(Array.from({ length: count + 1 }, (_, i) => i));
    expect(seen.every((p) => p.total === count)).toBe(true);
    expect(seen[0]!.kernel).toBeNull();
    expect(seen.slice(1).map((p) => p.kernel)).toEqual(expect.arrayContaining([expect.stringMatching(/^matmul/), expect.stringMatching(/softmax/)]));
    expect(wg.memory().liveBytes).toBe(before); // the dry run allocated nothing

    let out: wg.Tensor | null = null;
    expect(await compiledDuring(async () => (out = fn()))).toEqual([]);
    const rows = (await out!.toArray()) as Float32Array;
    for (let r = 0; r < 5; r++) expect(rows.slice(r * 3, r * 3 + 3).reduce((s, v) => s + v, 0)).toBeCloseTo(1, 5);
    expect(await wg.precompile(fn)).toBe(0); // all there now
    for (const t of [a, b, out!]) t.dispose();
  });

  it('Trainer.precompile compiles a step (micro-batches, accumulation) and leaves the gradients as they were', async () => {
    wg.manualSeed(4);
    const model = new wg.nn.Sequential(new wg.nn.Linear(13, 9), new wg.nn.ReLU(), new wg.nn.Linear(9, 4));
    const optimizer = new wg.optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
    const trainer = new wg.Trainer({ model, optimizer, loss: 'cross-entropy', microBatchSize: 3 });
    const x = wg.randn([7, 13], { seed: 5 }); // micro-batches of 3, 3 and 1
    const y = wg.tensor([0, 1, 2, 3, 0, 1, 2], [7], { dtype: 'int32' });

    const seen: wg.PrecompileProgress[] = [];
    const plan = await trainer.precompile(x.shape, { onProgress: (p) => seen.push(p) });
    expect(plan.microBatches).toBe(3);
    expect(seen.at(-1)!.compiled).toBe(seen.at(-1)!.total);
    // The real step compiles only the optimizer's update.
    const compiled = await compiledDuring(() => trainer.step(x, y));
    expect(compiled.every((k) => k === 'SGD.step'), compiled.join(', ')).toBe(true);

    // Between computing gradients and applying them (as data parallelism does), precompiling
    // leaves the gradients alone and allocates nothing.
    await trainer.computeGradients(x, y);
    const grads = model.parameters().map((p) => p.grad!);
    const values = await Promise.all(grads.map((g) => g.toArray()));
    const before = wg.memory().liveBytes;
    await trainer.precompile([5, 13]);
    expect(wg.memory().liveBytes).toBe(before);
    expect(model.parameters().map((p) => p.grad)).toEqual(grads);
    for (const [i, g] of grads.entries()) expect(Array.from(await g.toArray())).toEqual(Array.from(values[i]!));
    trainer.applyGradients();

    optimizer.dispose();
    for (const t of [x, y, ...model.parameters()]) t.dispose();
  });
});
