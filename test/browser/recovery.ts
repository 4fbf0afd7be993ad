// Runs in the page: a Trainer with automatic checkpoints in IndexedDB loses its device
// (destroyed under it) and recovers on a new one (test/browser-recovery.test.ts checks the report).
import * as wg from '../../src/index';
import { runtime } from '../../src/runtime/device';

const KEY = 'browser-recovery-test';

function batch(i: number): { x: wg.Tensor; y: wg.Tensor } {
  const x = Float32Array.from({ length: 5 * 8 }, (_, k) => Math.sin(1 + i * 7 + k * 0.37));
  const y = Int32Array.from({ length: 5 }, (_, k) => (i + k) % 3);
  return { x: wg.tensor(x, [5, 8]), y: wg.tensor(y, [5], { dtype: 'int32' }) };
}

async function bits(model: wg.nn.Module): Promise<number[]> {
  const parts = await Promise.all(model.parameters().map((p) => p.toArray()));
  return parts.flatMap((p) => Array.from(new Uint32Array(p.buffer)));
}

async function step(trainer: wg.Trainer, i: number): Promise<void> {
  const { x, y } = batch(i);
  try {
    await trainer.step(x, y);
  } finally {
    x.dispose();
    y.dispose();
  }
}

async function runRecovery() {
  await wg.init({ backend: 'webgpu', autotune: false }); // a GPU to lose; no timing runs (slow on SwiftShader); recover() keeps the options
  wg.manualSeed(1);
  const model = new wg.nn.Sequential(new wg.nn.Linear(8, 6), new wg.nn.ReLU(), new wg.nn.Linear(6, 3));
  const optimizer = new wg.optim.Adam(model.parameters(), { lr: 0.01 });
  const trainer = new wg.Trainer({ model, optimizer, loss: 'cross-entropy', checkpoint: { every: 2, store: KEY } });
  const seen: number[][] = [];
  for (let i = 0; i < 3; i++) {
    await step(trainer, i);
    seen.push(await bits(model));
  }
  const stored = await wg.io.indexedDBCheckpointStore(KEY).load();
  const { x, y } = batch(3);
  runtime().device!.destroy();
  const lost = (await trainer.step(x, y).catch((e: unknown) => e)) as Error;
  const at = await trainer.recover();
  const restored = await bits(model);
  await step(trainer, 2);
  const continued = await bits(model);
  return {
    where: trainer.checkpoints!.store.where,
    storedStep: stored ? wg.io.readCheckpointProgress(stored).step : null,
    error: { name: lost.name, message: lost.message },
    at,
    steps: trainer.steps,
    autotuneAfterRecovery: runtime().options.autotune,
    restoredIsStep2: JSON.stringify(restored) === JSON.stringify(seen[1]),
    continuedIsStep3: JSON.stringify(continued) === JSON.stringify(seen[2]),
  };
}

(window as unknown as { runRecovery: typeof runRecovery }).runRecovery = runRecovery;
document.title = 'ready';
