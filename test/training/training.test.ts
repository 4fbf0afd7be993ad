import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gpu, Rng, settleGarbage, wg } from '../helpers';

beforeAll(() => gpu());
afterAll(() => wg.shutdown());

function fixedBatch(rng: Rng) {
  const x = wg.tensor(Float32Array.from(rng.array(32 * 20)), [32, 20]);
  const y = wg.tensor(Int32Array.from({ length: 32 }, () => rng.int(4)), [32], { dtype: 'int32' });
  return { x, y };
}

describe('training end to end', () => {
  it('a small MLP on a fixed batch drives its loss below half within 60 steps', async () => {
    const rng = new Rng();
    const { x, y } = fixedBatch(rng);
    wg.manualSeed(rng.seed);
    const model = new wg.nn.Sequential(new wg.nn.Linear(20, 32), new wg.nn.ReLU(), new wg.nn.Linear(32, 4));
    const optimizer = new wg.optim.SGD(model.parameters(), { lr: 0.2, momentum: 0.9 });
    const trainer = new wg.Trainer({ model, optimizer, loss: 'cross-entropy' });
    const first = (await trainer.step(x, y)).loss;
    let last = first;
    for (let i = 0; i < 59 && last > first / 2; i++) last = (await trainer.step(x, y)).loss;
    expect(last, `loss went from ${first} to ${last} (seed ${rng.seed})`).toBeLessThan(first / 2);
    // Free everything, so that nothing of this test is left for the garbage collector to free
    // (and change live bytes) during the next one.
    for (const t of [x, y]) t.dispose();
    optimizer.dispose();
    model.dispose();
  });

  it('50 training steps leave live GPU memory flat after the first step', async () => {
    const rng = new Rng();
    const { x, y } = fixedBatch(rng);
    const model = new wg.nn.Sequential(new wg.nn.Linear(20, 16), new wg.nn.GELU(), new wg.nn.Dropout(0.1), new wg.nn.Linear(16, 4));
    const optimizer = new wg.optim.AdamW(model.parameters(), { lr: 0.01 });
    const trainer = new wg.Trainer({ model, optimizer, loss: 'cross-entropy' });
    await trainer.step(x, y);
    await settleGarbage();
    const after1 = wg.memory();
    for (let i = 1; i < 50; i++) await trainer.step(x, y);
    await settleGarbage();
    const after50 = wg.memory();
    expect(after50.liveBytes).toBe(after1.liveBytes);
    expect(after50.liveTensors).toBe(after1.liveTensors);
    // The loop without the Trainer: forward, backward and step inside tidy().
    await settleGarbage();
    const before = wg.memory();
    for (let i = 0; i < 10; i++) {
      optimizer.zeroGrad();
      wg.tidy(() => wg.crossEntropy(model.forward(x), y).backward());
      optimizer.step();
    }
    await wg.sync();
    await settleGarbage();
    // zeroGrad freed last step's gradients; the loop made new ones of the same size.
    expect(wg.memory().liveBytes).toBe(before.liveBytes);
  });
});
