// What the text commands (train --model gpt, finetune) share about their step loop: batches that
// run on across epochs, and one step on a batch.

import * as wg from '../node';

/**
 * The loader's batches without end: when an epoch ends the next begins (the loader reshuffles it).
 * `from`: the batch of the loader's current epoch to start at (a resumed run).
 */
export function* endlessBatches(loader: wg.data.DataLoader<wg.data.AnyDataset>, from = 0): Generator<wg.data.Batch, never> {
  for (let epoch = loader.batches(from); ; epoch = loader.batches()) yield* epoch;
}

/** One optimizer step on `batch` (freed after it, whatever happens), then the schedule's step. */
export async function stepOn(trainer: wg.Trainer, batch: wg.data.Batch, schedule: { step(): void }): Promise<wg.StepResult> {
  let result: wg.StepResult;
  try {
    result = await trainer.step(batch.x, batch.y);
  } finally {
    batch.dispose();
  }
  schedule.step();
  return result;
}
