// Surviving a lost device: automatic checkpoints, the Trainer's DeviceLostError, and recover().
// The device is destroyed under webgrad, as a driver reset would take it away.
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Rng, wg } from '../helpers';
import { runtime } from '../../src/runtime/device';

const dir = join(tmpdir(), `webgrad-device-loss-${process.pid}`);
afterAll(() => {
  wg.shutdown();
  rmSync(dir, { recursive: true, force: true });
});

const FEATURES = 12;
const CLASSES = 4;

/** An MLP with dropout (the RNG matters) and Adam (optimizer state matters), from a fixed seed. */
function build(checkpoint?: wg.TrainerOptions['checkpoint']): wg.Trainer {
  wg.manualSeed(7);
  const model = new wg.nn.Sequential(
    new wg.nn.Linear(FEATURES, 16),
    new wg.nn.ReLU(),
    new wg.nn.Dropout(0.2),
    new wg.nn.Linear(16, CLASSES),
  );
  const optimizer = new wg.optim.Adam(model.parameters(), { lr: 0.01 });
  return new wg.Trainer({ model, optimizer, loss: 'cross-entropy', microBatchSize: 'auto', checkpoint });
}

function batches(n: number): { x: Float32Array; y: Int32Array }[] {
  const rng = new Rng(11);
  return Array.from({ length: n }, () => ({
    x: Float32Array.from(rng.array(6 * FEATURES)),
    y: Int32Array.from({ length: 6 }, () => rng.int(CLASSES)),
  }));
}

async function step(t: wg.Trainer, b: { x: Float32Array; y: Int32Array }): Promise<void> {
  const x = wg.tensor(b.x, [6, FEATURES]);
  const y = wg.tensor(b.y, [6], { dtype: 'int32' });
  try {
    await t.step(x, y);
  } finally {
    x.dispose();
    y.dispose();
  }
}

/** Every parameter's bits, in order (bit-identical comparisons). */
async function bits(t: wg.Trainer): Promise<number[]> {
  const parts = await Promise.all(t.model.parameters().map((p) => p.toArray()));
  return parts.flatMap((p) => Array.from(new Uint32Array(p.buffer)));
}

async function loseDevice(): Promise<void> {
  runtime().device!.destroy();
}

describe('device loss and recovery', () => {
  it('steps: the next step names the loss and the checkpoint; recover() restores step 3 exactly, and training goes on as uninterrupted', async () => {
    await wg.init();
    const file = join(dir, 'steps.safetensors');
    const data = batches(8);
    const t = build({ every: 3, store: file });
    const seen: number[][] = [];
    for (let i = 0; i < 5; i++) {
      await step(t, data[i]!);
      seen.push(await bits(t));
    }
    expect(t.steps).toBe(5);
    expect(t.checkpoints!.lastStep).toBe(3);

    // Lost between uploading a batch and stepping on it.
    const x = wg.tensor(data[5]!.x, [6, FEATURES]);
    const y = wg.tensor(data[5]!.y, [6], { dtype: 'int32' });
    await loseDevice();
    const lost = await t.step(x, y).catch((e: unknown) => e);
    expect(lost).toBeInstanceOf(wg.DeviceLostError);
    const message = (lost as Error).message;
    expect(message).toMatch(/^Trainer\.step \(step 6\): the GPU device was lost: it was destroyed/);
    expect(message).toContain(`The last automatic checkpoint is of step 3 (${file}): trainer.recover() continues from it.`);
    // Every later call says the same, before touching the GPU.
    expect(() => wg.zeros([2])).toThrowError(/device was lost.*trainer\.recover\(\)/);

    const at = await t.recover();
    expect(at).toEqual({ step: 3 });
    expect(t.steps).toBe(3);
    expect(await bits(t)).toEqual(seen[2]); // the parameters saved at step 3, bit for bit
    // Steps 4 and 5 again: exactly as before the loss (the dropout masks and Adam's moments came back too).
    await step(t, data[3]!);
    expect(await bits(t)).toEqual(seen[3]);
    await step(t, data[4]!);
    expect(await bits(t)).toEqual(seen[4]);
    for (let i = 5; i < 8; i++) await step(t, data[i]!);
    expect(t.steps).toBe(8);
    expect(t.checkpoints!.lastStep).toBe(6);

    // An uninterrupted run from the step-6 checkpoint file, on the same (new) device, agrees.
    const { readFileSync } = await import('node:fs');
    const fresh = build();
    const progress = wg.io.loadCheckpoint(new Uint8Array(readFileSync(file)), { model: fresh.model, optimizer: fresh.optimizer });
    expect(progress.step).toBe(6);
    // The trainer's RNG state is part of the checkpoint: restore it as recover() does.
    const { globalGenerator } = await import('../../src/random');
    globalGenerator.setState(Uint32Array.from(progress.rng as number[]));
    await step(fresh, data[6]!);
    await step(fresh, data[7]!);
    const recovered = await bits(t);
    expect(await bits(fresh)).toEqual(recovered);
    fresh.model.dispose();
    fresh.optimizer.dispose();
    t.model.dispose();
    t.optimizer.dispose();
  });

  it('fit: lost mid-epoch, recover() says where fit stood, and fit from there ends where an uninterrupted fit does', async () => {
    await wg.init();
    const rng = new Rng(5);
    const n = 30;
    const dataset = wg.data.makeDataset({
      images: Uint8Array.from({ length: n * 9 }, () => rng.int(256)),
      labels: Uint8Array.from({ length: n }, () => rng.int(CLASSES)),
      imageShape: [1, 3, 3],
      numClasses: CLASSES,
    });
    const make = (checkpoint?: wg.TrainerOptions['checkpoint']): wg.Trainer => {
      wg.manualSeed(3);
      const model = new wg.nn.Sequential(new wg.nn.Flatten(), new wg.nn.Linear(9, 8), new wg.nn.Tanh(), new wg.nn.Dropout(0.1), new wg.nn.Linear(8, CLASSES));
      const optimizer = new wg.optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
      return new wg.Trainer({ model, optimizer, loss: 'cross-entropy', checkpoint });
    };
    const fit = { epochs: 3, batchSize: 7, seed: 9, augment: true }; // 5 batches an epoch, the last of 2

    const reference = make();
    await reference.fit(dataset, fit);
    const expected = await bits(reference);
    reference.model.dispose();
    reference.optimizer.dispose();

    const t = make({ every: 3, store: wg.io.memoryCheckpointStore() });
    const failed = await t
      .fit(dataset, { ...fit, onStep: () => (t.steps === 7 ? loseDevice() : undefined) })
      .catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(wg.DeviceLostError);
    expect((failed as Error).message).toMatch(/^Trainer\.fit \(step 8\): the GPU device was lost.*checkpoint is of step 6 \(memory\)/);
    // Step 6 was the first batch of the second epoch: the next is its batch 1.
    const at = await t.recover();
    expect(at).toEqual({ step: 6, epoch: 1, batch: 1 });
    await t.fit(dataset, { ...fit, initialEpoch: at.epoch, initialBatch: at.batch });
    expect(t.steps).toBe(15);
    expect(await bits(t)).toEqual(expected);
  });

  it("'f16-mixed': the loss scaler's state comes back with the checkpoint", async () => {
    await wg.init();
    wg.manualSeed(7);
    const model = new wg.nn.Sequential(new wg.nn.Linear(FEATURES, 8), new wg.nn.ReLU(), new wg.nn.Linear(8, CLASSES));
    const optimizer = new wg.optim.SGD(model.parameters(), { lr: 0.05 });
    const t = new wg.Trainer({
      model,
      optimizer,
      loss: 'cross-entropy',
      precision: 'f16-mixed', // f32 math on a device without shader-f16; the loss scaler runs either way
      lossScaling: { initScale: 8, growthInterval: 2 },
      checkpoint: { every: 2, store: join(dir, 'scaler.safetensors') },
    });
    const data = batches(3);
    for (const b of data) await step(t, b);
    expect(t.lossScale).toBe(16); // grown once, after steps 1-2; step 3 is one finite step towards the next growth
    runtime().device!.destroy();
    await expect(step(t, data[0]!)).rejects.toThrowError(wg.DeviceLostError);
    await t.recover();
    expect(t.steps).toBe(2);
    expect(t.mixed.scaler!.stateDict()).toEqual({ scale: 16, finiteRun: 0, skippedSteps: 0 });
    await step(t, data[2]!);
    await step(t, data[0]!);
    expect(t.lossScale).toBe(32);
    model.dispose();
    optimizer.dispose();
  });

  it('recover() without automatic checkpoints, or before the first save, says what is missing', async () => {
    await wg.init();
    const plain = build();
    await expect(plain.recover()).rejects.toThrowError(/no automatic checkpoints; create it with checkpoint: \{ every: N \}/);
    const unsaved = build({ every: 2, store: join(dir, 'never.safetensors') });
    await expect(unsaved.recover()).rejects.toThrowError(/there is no checkpoint in .*never\.safetensors yet/);
    expect(() => build({ every: 0 })).toThrowError(/checkpoint\.every must be a positive integer/);
    for (const t of [plain, unsaved]) {
      t.model.dispose();
      t.optimizer.dispose();
    }
  });
});
