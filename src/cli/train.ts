// `npm run train -- [options]`: train an MNIST model on the GPU (Dawn in Node), with a progress
// bar, test accuracy after every epoch, and a checkpoint written after every epoch.

import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import * as wg from '../node';
import { mnistCNN, mnistMLP } from '../models';
import { ProgressBar, formatTime } from './progress';
import { trainTogether } from './train-together';

const USAGE = `usage: npm run train -- [--model mlp|cnn] [--epochs N] [--batch B] [--lr X]
                         [--optimizer sgd|adam] [--momentum M] [--augment] [--seed S]
                         [--schedule cosine|constant] [--micro-batch N|auto]
                         [--out model.safetensors] [--resume FILE]
                         [--join ws://HOST:PORT/SESSION?token=…]  (train with others: see npm run coordinator)`;

export async function main(argv: string[]): Promise<void> {
  const { values: a } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string', default: 'mlp' },
      epochs: { type: 'string', default: '5' },
      batch: { type: 'string', default: '64' },
      lr: { type: 'string' },
      optimizer: { type: 'string', default: 'sgd' },
      momentum: { type: 'string', default: '0.9' },
      augment: { type: 'boolean', default: false },
      seed: { type: 'string', default: '1' },
      'micro-batch': { type: 'string', default: 'auto' },
      schedule: { type: 'string', default: 'cosine' },
      out: { type: 'string', default: 'model.safetensors' },
      resume: { type: 'string' },
      join: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (a.help) {
    console.log(USAGE);
    return;
  }
  const kind = a.model;
  if (kind !== 'mlp' && kind !== 'cnn') throw new Error(`--model must be mlp or cnn\n${USAGE}`);
  if (a.optimizer !== 'sgd' && a.optimizer !== 'adam') throw new Error(`--optimizer must be sgd or adam\n${USAGE}`);
  if (a.schedule !== 'cosine' && a.schedule !== 'constant') throw new Error(`--schedule must be cosine or constant\n${USAGE}`);
  const epochs = positiveInt('--epochs', a.epochs!);
  const batchSize = positiveInt('--batch', a.batch!);
  const lr = a.lr !== undefined ? Number(a.lr) : a.optimizer === 'adam' ? 1e-3 : 0.1;
  const micro = a['micro-batch'] === 'auto' ? 'auto' : positiveInt('--micro-batch', a['micro-batch']!);

  const info = await wg.init();
  const ad = info.adapterInfo;
  console.log(`device: ${ad.vendor} ${ad.architecture} ${ad.description}${ad.isFallbackAdapter ? ' (software fallback)' : ''}; features: ${info.features.join(', ') || 'none'}`);

  wg.manualSeed(Number(a.seed));
  const model = kind === 'mlp' ? mnistMLP() : mnistCNN();
  const params = model.parameters();
  const optimizer = a.optimizer === 'adam' ? new wg.optim.Adam(params, { lr }) : new wg.optim.SGD(params, { lr, momentum: Number(a.momentum) });

  const { train, test } = await wg.data.mnist();
  // The learning rate decays to 0 over the whole run (per step, cosine): the last epochs settle.
  const stepsPerEpoch = Math.ceil(train.size / batchSize);
  const schedule = a.schedule === 'cosine' ? new wg.optim.CosineAnnealingLR(optimizer, { tMax: epochs * stepsPerEpoch }) : null;

  let startEpoch = 0;
  let startStep = 0;
  if (a.resume) {
    const bytes = new Uint8Array(readFileSync(a.resume));
    // Check the model and optimizer kinds first: their state would not fit otherwise.
    const progress = wg.io.readCheckpointProgress(bytes);
    if (progress.model !== kind) throw new Error(`--resume: ${a.resume} holds a ${String(progress.model)} model; pass --model ${String(progress.model)}`);
    if (progress.optimizer !== undefined && progress.optimizer !== a.optimizer) {
      throw new Error(`--resume: ${a.resume} was trained with ${String(progress.optimizer)}; pass --optimizer ${String(progress.optimizer)}`);
    }
    wg.io.loadCheckpoint(bytes, { model, optimizer });
    startEpoch = Number(progress.epoch ?? 0);
    startStep = Number(progress.steps ?? startEpoch * stepsPerEpoch);
    schedule?.loadStateDict({ lastEpoch: startStep });
    console.log(`resumed from ${a.resume} at epoch ${startEpoch}`);
  }

  const trainer = new wg.Trainer({ model, optimizer, loss: 'cross-entropy', microBatchSize: micro });
  trainer.steps = startStep;
  const plan = trainer.plan([batchSize, 1, 28, 28]);
  console.log(
    `model: ${kind}, ${params.reduce((s, p) => s + p.size, 0).toLocaleString('en')} parameters; ${a.optimizer} lr ${lr}` +
      `${schedule ? ' (cosine decay)' : ''}; batch ${batchSize}`,
  );
  console.log(`plan: ${plan.reason}`);
  console.log(`data: ${train.size} training / ${test.size} held-out digits`);

  const saveEpoch = async (epoch: number, testAccuracy: number) => {
    const bytes = await wg.io.saveCheckpoint({ model, optimizer, progress: { model: kind, optimizer: a.optimizer, epoch, steps: trainer.steps, testAccuracy } });
    // Write then rename, so an interrupted save never leaves a broken checkpoint behind.
    writeFileSync(`${a.out}.tmp`, bytes);
    renameSync(`${a.out}.tmp`, a.out!);
  };
  if (a.join !== undefined) {
    const agreement = { model: kind, optimizer: a.optimizer!, lr, momentum: Number(a.momentum), batch: batchSize, epochs, seed: Number(a.seed), augment: a.augment!, schedule: a.schedule! };
    await trainTogether({ url: a.join, trainer, train, test, epochs, batchSize, augment: a.augment!, seed: Number(a.seed), schedule, agreement, saveCheckpoint: saveEpoch });
    console.log(`checkpoint: ${a.out}${existsSync(a.out!) ? '' : ' (written by rank 0 only)'}`);
    wg.shutdown();
    return;
  }

  let bar: ProgressBar | null = null;
  await trainer.fit(train, {
    epochs,
    initialEpoch: startEpoch,
    batchSize,
    augment: a.augment,
    seed: Number(a.seed),
    evalData: test,
    onStep: (s) => {
      schedule?.step();
      if (s.batch === 0) bar = new ProgressBar(s.batches, `epoch ${s.epoch + 1}/${epochs}`);
      bar!.update(s.batch + 1, { loss: s.loss.toFixed(4), 'samples/s': s.samplesPerSecond.toFixed(0) });
    },
    onEpoch: async (e) => {
      bar?.done(
        `epoch ${e.epoch + 1}/${epochs}: train loss ${e.loss.toFixed(4)}, test loss ${e.eval!.loss.toFixed(4)}, ` +
          `test accuracy ${(e.eval!.accuracy * 100).toFixed(2)}% (${formatTime(e.seconds)})`,
      );
      await saveEpoch(e.epoch + 1, e.eval!.accuracy);
    },
  });
  console.log(`checkpoint: ${a.out}${existsSync(a.out!) ? '' : ' (not written: no epoch ran)'}`);
  wg.shutdown();
}

function positiveInt(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got ${v}\n${USAGE}`);
  return n;
}
