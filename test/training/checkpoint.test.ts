import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gpu, wg } from '../helpers';

beforeAll(() => gpu());
afterAll(() => wg.shutdown());

function setup(seed: number) {
  wg.manualSeed(seed);
  const model = new wg.nn.Sequential(new wg.nn.Linear(6, 5), new wg.nn.ReLU(), new wg.nn.Linear(5, 3));
  const optimizer = new wg.optim.Adam(model.parameters(), { lr: 0.01 });
  return { model, optimizer };
}

async function trainSteps(model: wg.nn.Module, optimizer: wg.optim.Optimizer, steps: number): Promise<void> {
  const x = wg.tensor(Float32Array.from({ length: 24 }, (_, i) => Math.sin(i)), [4, 6]);
  const y = new Int32Array([0, 1, 2, 1]);
  for (let i = 0; i < steps; i++) {
    optimizer.zeroGrad();
    wg.tidy(() => wg.crossEntropy(model.forward(x), y).backward());
    optimizer.step();
  }
  await wg.sync();
}

async function values(m: wg.nn.Module): Promise<number[]> {
  const out: number[] = [];
  for (const t of Object.values(m.stateDict())) out.push(...(await t.toArray()));
  return out;
}

describe('checkpoints', () => {
  it('model and optimizer state round-trip bit-exactly, and training resumes identically', async () => {
    const a = setup(1);
    await trainSteps(a.model, a.optimizer, 3);
    const bytes = await wg.io.saveCheckpoint({ model: a.model, optimizer: a.optimizer, progress: { epoch: 3, note: 'x' } });
    expect(wg.io.readCheckpointProgress(bytes)).toEqual({ epoch: 3, note: 'x' });
    const b = setup(2); // different initial weights
    expect(await values(b.model)).not.toEqual(await values(a.model));
    const progress = wg.io.loadCheckpoint(bytes, b);
    expect(progress).toEqual({ epoch: 3, note: 'x' });
    expect(await values(b.model)).toEqual(await values(a.model));
    expect(b.optimizer.stepCount).toBe(3);
    // Both continue with the same Adam moments and step counts: identical parameters after.
    await trainSteps(a.model, a.optimizer, 2);
    await trainSteps(b.model, b.optimizer, 2);
    expect(await values(b.model)).toEqual(await values(a.model));
  });

  it('a checkpoint for another model changes nothing and says what does not fit', async () => {
    const a = setup(1);
    const bytes = await wg.io.saveCheckpoint({ model: a.model, optimizer: a.optimizer });
    wg.manualSeed(5);
    const other = new wg.nn.Sequential(new wg.nn.Linear(6, 4), new wg.nn.ReLU(), new wg.nn.Linear(4, 3));
    const before = await values(other);
    expect(() => wg.io.loadCheckpoint(bytes, { model: other })).toThrowError(/loadStateDict: 0\.weight has shape \[5, 6\], the module expects \[4, 6\]/);
    expect(await values(other)).toEqual(before);
  });

  it('a plain safetensors file is not mistaken for a checkpoint', async () => {
    const plain = await wg.io.saveSafetensors({ w: wg.ones([2]) });
    expect(() => wg.io.readCheckpointProgress(plain)).toThrowError(/not a webgrad checkpoint/);
  });
});
