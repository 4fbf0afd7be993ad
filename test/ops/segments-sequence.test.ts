// The sequence-model ops on tensors larger than one storage binding (a simulated small GPU): the
// same work run capped and uncapped (each with its own device) gives the same results.
import { afterAll, describe, expect, it } from 'vitest';
import { relErr, Rng, wg } from '../helpers';
import { runtime } from '../../src/runtime/device';

const CAP = 64 * 1024; // bytes per storage binding

afterAll(() => wg.shutdown());

async function run(budget: wg.Budget | undefined, seed: number) {
  wg.shutdown();
  await wg.init({ budget });
  const d0 = runtime().executor.dispatchCount;
  const rng = new Rng(seed);
  const out: Record<string, Float32Array | Int32Array> = {};
  const read = async (name: string, t: wg.Tensor) => (out[name] = await t.toArray());
  const leaf = (shape: number[]) => wg.tensor(Float32Array.from(rng.array(shape.reduce((a, b) => a * b, 1))), shape, { requiresGrad: true });
  const ints = (shape: number[], n: number) => wg.tensor(Int32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.int(n)), shape);
  const grad = (shape: number[]) => wg.tensor(Float32Array.from(rng.array(shape.reduce((a, b) => a * b, 1))), shape);

  // embedding: a weight [2000, 17] (133 KiB) over the cap, ids with repeats; its gradient too.
  const weight = leaf([2000, 17]);
  const ids = wg.tensor(Int32Array.from({ length: 150 }, () => (rng.uniform() < 0.3 ? 1999 : rng.int(2000))), [3, 50]);
  const e = wg.embedding(ids, weight);
  await read('embedding', e);
  e.backward(grad(e.shape as number[]));
  await read('embedding.dw', weight.grad!);

  // indexSelect along axis 0 of [5000, 4] (78 KiB); gather along axis 1 of [3, 6000] (70 KiB).
  const a = leaf([5000, 4]);
  const s = wg.indexSelect(a, 0, ints([30], 5000));
  await read('indexSelect', s);
  s.backward(grad([30, 4]));
  await read('indexSelect.da', a.grad!);
  const b = leaf([3, 6000]);
  const g = wg.gather(b, 1, ints([3, 40], 6000));
  await read('gather', g);
  g.backward(grad([3, 40]));
  await read('gather.db', b.grad!);

  // cat and stack into outputs over the cap; tril of a strided view over the cap (row blocks
  // must know where they start); where with broadcasting.
  const x = leaf([100, 100]);
  const y = leaf([100, 100]);
  await read('cat', wg.cat([x, y], 1));
  await read('stack', wg.stack([x, y], 1));
  const big = leaf([100, 200]);
  await read('tril', wg.tril(big.narrow(1, 20, 150), -3));
  await read('where', wg.where(wg.gt(big, 0), big, wg.zeros([200])));

  // crossEntropy with ignored rows and label smoothing, [300, 97] (114 KiB) in blocks of rows.
  const logits = leaf([300, 97]);
  const labels = Int32Array.from({ length: 300 }, () => (rng.uniform() < 0.2 ? -100 : rng.int(97)));
  const ce = wg.crossEntropy(logits, wg.tensor(labels), { labelSmoothing: 0.1 });
  await read('crossEntropy', ce);
  ce.backward();
  await read('crossEntropy.dx', logits.grad!);

  // Batched matmul of attention's shapes over the cap: q [2, 3, 65, 40] (61 KiB a head group,
  // 122 KiB in all) against kᵀ, in pieces of the batch; and a batch against one broadcast matrix.
  const q = leaf([2, 3, 65, 40]);
  const k = leaf([2, 3, 33, 40]);
  const scores = wg.matmul(q, k.transpose([0, 1, 3, 2]));
  await read('matmul', scores);
  const m = leaf([1, 40, 9]);
  const proj = wg.matmul(q, m);
  await read('matmul.broadcast', proj);
  wg.add(wg.mul(scores, grad([2, 3, 65, 33])).sum(), wg.mul(proj, grad([2, 3, 65, 9])).sum()).backward();
  await read('matmul.dq', q.grad!);
  await read('matmul.dk', k.grad!);
  await read('matmul.dm', m.grad!);
  return { out, dispatches: runtime().executor.dispatchCount - d0 };
}

describe('sequence-model ops over the binding cap', () => {
  it('embedding, indexSelect, gather (forward and backward), cat, stack, tril, where, crossEntropy and batched matmul give the uncapped results', async () => {
    const seed = (Math.random() * 1e9) | 0;
    const capped = await run({ maxBindingBytes: CAP }, seed);
    const free = await run(undefined, seed);
    expect(capped.dispatches).toBeGreaterThan(free.dispatches); // the work really was split
    for (const k of Object.keys(free.out)) {
      // Blocks change no sum's order, except the mean of crossEntropy's row losses and the
      // gradient of a matrix broadcast over a batch (summed over the batch in pieces).
      if (k === 'crossEntropy' || k === 'matmul.dm') expect(relErr(capped.out[k]!, free.out[k]!), `${k} (seed ${seed})`).toBeLessThan(1e-6);
      else expect(Array.from(capped.out[k]!), `${k} (seed ${seed})`).toEqual(Array.from(free.out[k]!));
    }
  });
});
