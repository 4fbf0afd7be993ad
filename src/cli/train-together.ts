// `npm run train -- --join ws://HOST:PORT/SESSION?token=…`: this process trains as one replica of
// a data-parallel session. Every replica walks the same global batches (the DataLoader with the
// same seed) and computes the gradients of its slice of each; the session's step number says which
// global batch comes next, so a replica that joins late picks up where the others are. Rank 0
// evaluates and writes the checkpoint at the end of every epoch.

import { hostname } from 'node:os';
import { now } from '../clock';
import * as wg from '../node';
import { formatTime, ProgressBar } from './progress';

export interface TogetherOptions {
  url: string;
  trainer: wg.Trainer;
  train: wg.data.Dataset;
  test: wg.data.Dataset;
  epochs: number;
  /** The global batch size. */
  batchSize: number;
  augment: boolean;
  seed: number;
  schedule: wg.optim.LRScheduler | null;
  /** Settings every replica must share: the session refuses a replica with other ones. */
  agreement: Record<string, string | number | boolean>;
  /** Saves a checkpoint after an epoch (rank 0 only). */
  saveCheckpoint: (epoch: number, testAccuracy: number) => Promise<void>;
}

export async function trainTogether(o: TogetherOptions): Promise<void> {
  const batches = new GlobalBatches(o.train, { batchSize: o.batchSize, shuffle: true, augment: o.augment, seed: o.seed });
  const total = o.epochs * batches.perEpoch;
  const dp = new wg.distributed.DataParallel({
    trainer: o.trainer,
    transport: new wg.distributed.WebSocketTransport(o.url),
    name: `node ${hostname()}`,
    agreement: o.agreement,
  });
  let said = '';
  dp.onMembershipChange = (m) => {
    const waiting = m.peers.filter((p) => p.joining).length;
    const line = `session: ${m.peers.length} ${m.peers.length === 1 ? 'replica' : 'replicas'}${waiting ? ` (${waiting} joining at the next step)` : ''}`;
    if (line !== said) process.stderr.write(`\r${line}\x1b[K\n`);
    said = line;
  };
  await dp.ready();
  console.log(`joined the session at ${new URL(o.url).host}`);
  let bar: ProgressBar | null = null;
  let epochStarted = now();
  try {
    while (dp.steps < total) {
      // The learning rate of the session's step (a replica that joins late is told the step in dp.step).
      o.schedule?.loadStateDict({ lastEpoch: dp.steps });
      const r = await dp.step(({ step, rank, worldSize }) => {
        const b = batches.at(step);
        const { start, count } = wg.distributed.shardRange(b.size, rank, worldSize);
        const pixels = b.shape[1] * b.shape[2] * b.shape[3];
        return {
          x: wg.tensor(b.x.subarray(start * pixels, (start + count) * pixels), [count, ...b.shape.slice(1)]),
          y: wg.tensor(b.y.subarray(start, start + count), [count], { dtype: 'int32' }),
        };
      });
      const epoch = Math.floor(r.step / batches.perEpoch);
      const inEpoch = r.step % batches.perEpoch;
      if (!bar || inEpoch === 0) {
        bar = new ProgressBar(batches.perEpoch, `epoch ${epoch + 1}/${o.epochs}`);
        epochStarted = now();
      }
      bar.update(inEpoch + 1, {
        loss: r.loss.toFixed(4),
        replicas: String(r.worldSize),
        'samples/s': ((r.globalBatch * 1000) / r.ms).toFixed(0),
        'comm ms': r.communicationMs.toFixed(0),
      });
      if (inEpoch === batches.perEpoch - 1) {
        const seconds = (now() - epochStarted) / 1000;
        if (r.rank === 0) {
          const e = await o.trainer.evaluate(o.test);
          bar.done(`epoch ${epoch + 1}/${o.epochs}: test accuracy ${(e.accuracy * 100).toFixed(2)}% (${formatTime(seconds)}, rank 0 of ${r.worldSize})`);
          await o.saveCheckpoint(epoch + 1, e.accuracy);
        } else {
          bar.done(`epoch ${epoch + 1}/${o.epochs} done (${formatTime(seconds)}, rank ${r.rank} of ${r.worldSize}; rank 0 evaluates and saves)`);
        }
      }
    }
  } finally {
    dp.close();
  }
}

/** The global batch of any step: epoch ⌊step / batches per epoch⌋ of a seeded DataLoader, walked in order. */
class GlobalBatches {
  private readonly loader: wg.data.DataLoader;
  private epoch: Iterator<wg.data.CpuBatch> | null = null;
  /** The step whose batch the iterator yields next. */
  private next = -1;
  /** The last batch handed out (a step that is re-run asks for it again). */
  private last: { step: number; batch: wg.data.CpuBatch } | null = null;

  constructor(train: wg.data.Dataset, opts: wg.data.DataLoaderOptions) {
    this.loader = new wg.data.DataLoader(train, opts);
  }

  get perEpoch(): number {
    return this.loader.length;
  }

  at(step: number): wg.data.CpuBatch {
    if (this.last?.step === step) return this.last.batch;
    if (step !== this.next || !this.epoch) {
      // A jump (joining late, or a step re-run): start that step's epoch and walk to it.
      this.loader.epoch = Math.floor(step / this.perEpoch);
      this.epoch = this.loader.cpuBatches();
      for (let i = 0; i < step % this.perEpoch; i++) this.epoch.next();
      this.next = step;
    }
    const batch = this.epoch.next().value as wg.data.CpuBatch;
    this.next = step + 1;
    if ((step + 1) % this.perEpoch === 0) this.epoch = null;
    this.last = { step, batch };
    return batch;
  }
}
