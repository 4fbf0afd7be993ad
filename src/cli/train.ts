// `npm run train -- [options]`: train an MNIST model on the GPU (Dawn in Node) or, without a usable
// GPU, on the CPU backend (WebAssembly SIMD), with a progress bar, test accuracy after every epoch,
// and a checkpoint written after every epoch; or, with `--model gpt`, a character-level GPT on a
// text (train-text.ts). The first line says which backend runs and why.
//
// Everything a person can get wrong is checked before the GPU starts (options, --out, the --resume
// file) and reported as one message with the usage, never a stack trace. A trained model is never
// lost to a failed save: the checkpoint goes beside --out, or to the temp directory, with a message
// saying where (see saveModel).

import { parseArgs } from 'node:util';
import * as wg from '../node';
import { mnistCNN, mnistMLP } from '../models';
import { ProgressBar, formatTime } from './progress';
import { trainTogether } from './train-together';
import { trainText } from './train-text';
import { checkOut, readCheckpointFile, saveModel, UsageError, type Saved } from './cli-files';
import { describeBackend } from './describe-backend';

export { checkOut, readCheckpointFile, saveModel, UsageError, type Saved } from './cli-files';
export { describeBackend } from './describe-backend';

export const USAGE = `usage: npm run train -- [--model mlp|cnn] [--epochs N] [--batch B] [--lr X]
                         [--optimizer sgd|adam] [--momentum M] [--augment] [--seed S]
                         [--schedule cosine|constant] [--micro-batch N|auto]
                         [--backend auto|webgpu|wasm]
                         [--out model.safetensors] [--resume FILE]
                         [--join ws://HOST:PORT/SESSION?token=…]  (train with others: see npm run coordinator)
       npm run train -- --model gpt [--data moby-dick|names|FILE.txt] [--layers N] [--heads N] [--dim N]
                         [--context T] [--steps N] [--batch B] [--lr X] [--sample-every N] [--seed S]
                         [--micro-batch N|auto] [--backend auto|webgpu|wasm] [--out gpt.safetensors] [--resume FILE]`;

/** The options of a run: an MNIST model, or a GPT on text. */
export type TrainOptions = MnistOptions | GptOptions;

export interface MnistOptions {
  model: 'mlp' | 'cnn';
  epochs: number;
  batch: number;
  lr: number;
  optimizer: 'sgd' | 'adam';
  momentum: number;
  augment: boolean;
  seed: number;
  microBatch: number | 'auto';
  schedule: 'cosine' | 'constant';
  out: string;
  resume?: string;
  join?: string;
  /** The backend to train on (default: wg.init()'s, 'auto' unless $WEBGRAD_BACKEND says otherwise). */
  backend?: 'auto' | 'webgpu' | 'wasm';
}

export interface GptOptions {
  model: 'gpt';
  /** 'moby-dick', 'names', or a text file's path. */
  data: string;
  layers: number;
  heads: number;
  dim: number;
  /** The context length T. */
  context: number;
  /** Optimizer steps in all (a resumed run continues up to this many). */
  steps: number;
  batch: number;
  lr: number;
  /** Held-out loss, a sample and a checkpoint every this many steps. */
  sampleEvery: number;
  seed: number;
  microBatch: number | 'auto';
  out: string;
  resume?: string;
  /** The backend to train on (default: wg.init()'s, as for MNIST). */
  backend?: 'auto' | 'webgpu' | 'wasm';
}

/**
 * The default GPT run: a character model of about 108,000 parameters that beats the bigram
 * baseline on moby-dick by more than 0.3 nats/char in under 10 minutes on this repository's
 * CPU-only machine (see the README for the measured numbers). Context 32 rather than 64: on
 * moby-dick it learns faster per step (at loss ~2 a character depends little on what came more
 * than 32 before) and each step's attention costs half as much.
 */
export const GPT_DEFAULTS = { data: 'moby-dick', layers: 2, heads: 4, dim: 64, context: 32, steps: 1000, batch: 32, lr: 3e-3, sampleEvery: 200 } as const;

const OPTIONS = {
  model: { type: 'string' },
  epochs: { type: 'string' },
  batch: { type: 'string' },
  lr: { type: 'string' },
  optimizer: { type: 'string' },
  momentum: { type: 'string' },
  augment: { type: 'boolean' },
  seed: { type: 'string' },
  'micro-batch': { type: 'string' },
  schedule: { type: 'string' },
  out: { type: 'string' },
  resume: { type: 'string' },
  join: { type: 'string' },
  backend: { type: 'string' },
  data: { type: 'string' },
  layers: { type: 'string' },
  heads: { type: 'string' },
  dim: { type: 'string' },
  context: { type: 'string' },
  steps: { type: 'string' },
  'sample-every': { type: 'string' },
  help: { type: 'boolean', default: false },
} as const;

/** Options that only one kind of run takes. */
const MNIST_ONLY = ['epochs', 'optimizer', 'momentum', 'augment', 'schedule', 'join'] as const;
const GPT_ONLY = ['data', 'layers', 'heads', 'dim', 'context', 'steps', 'sample-every'] as const;

/** The options of `argv`, every value checked (null for --help). No file or GPU is touched. */
export function parseOptions(argv: readonly string[]): TrainOptions | null {
  let a;
  try {
    a = parseArgs({ args: joinNegativeValues(argv), options: OPTIONS, allowPositionals: false }).values;
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (a.help) return null;
  const model = oneOf('--model', a.model ?? 'mlp', ['mlp', 'cnn', 'gpt'] as const);
  const foreign = (model === 'gpt' ? MNIST_ONLY : GPT_ONLY).find((k) => a[k] !== undefined);
  if (foreign) {
    throw new UsageError(
      model === 'gpt' ? `--${foreign} is for the MNIST models; a GPT trains for --steps` : `--${foreign} is for --model gpt`,
    );
  }
  if (a.out === '') throw new UsageError('--out must name a file');
  const microBatch = a['micro-batch'] === undefined || a['micro-batch'] === 'auto' ? 'auto' : positiveInt('--micro-batch', a['micro-batch']);
  const seed = integer('--seed', a.seed ?? '1');
  const backend = a.backend !== undefined ? oneOf('--backend', a.backend, ['auto', 'webgpu', 'wasm'] as const) : undefined;
  if (model === 'gpt') {
    const d = GPT_DEFAULTS;
    const gpt: GptOptions = {
      model,
      data: a.data ?? d.data,
      layers: positiveInt('--layers', a.layers ?? String(d.layers)),
      heads: positiveInt('--heads', a.heads ?? String(d.heads)),
      dim: positiveInt('--dim', a.dim ?? String(d.dim)),
      context: positiveInt('--context', a.context ?? String(d.context)),
      steps: positiveInt('--steps', a.steps ?? String(d.steps)),
      batch: positiveInt('--batch', a.batch ?? String(d.batch)),
      lr: a.lr !== undefined ? nonNegativeNumber('--lr', a.lr) : d.lr,
      sampleEvery: positiveInt('--sample-every', a['sample-every'] ?? String(d.sampleEvery)),
      seed,
      microBatch,
      out: a.out ?? 'gpt.safetensors',
    };
    if (gpt.data === '') throw new UsageError('--data must be moby-dick, names or a text file');
    if (gpt.dim % gpt.heads !== 0) throw new UsageError(`--dim ${gpt.dim} must be a multiple of --heads ${gpt.heads}`);
    if (a.resume !== undefined) gpt.resume = a.resume;
    if (backend) gpt.backend = backend;
    return gpt;
  }
  const optimizer = oneOf('--optimizer', a.optimizer ?? 'sgd', ['sgd', 'adam'] as const);
  const out: MnistOptions = {
    model,
    epochs: positiveInt('--epochs', a.epochs ?? '5'),
    batch: positiveInt('--batch', a.batch ?? '64'),
    lr: a.lr !== undefined ? nonNegativeNumber('--lr', a.lr) : optimizer === 'adam' ? 1e-3 : 0.1,
    optimizer,
    momentum: nonNegativeNumber('--momentum', a.momentum ?? '0.9'),
    augment: a.augment ?? false,
    seed,
    microBatch,
    schedule: oneOf('--schedule', a.schedule ?? 'cosine', ['cosine', 'constant'] as const),
    out: a.out ?? 'model.safetensors',
  };
  if (a.resume !== undefined) out.resume = a.resume;
  if (a.join !== undefined) out.join = a.join;
  if (backend) out.backend = backend;
  return out;
}

/**
 * `--batch -3` as `--batch=-3`: parseArgs takes a value that starts with a dash for an option and
 * calls the pair ambiguous; a negative number is a value (which the checks then refuse by name).
 */
function joinNegativeValues(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const name = arg.startsWith('--') && !arg.includes('=') ? arg.slice(2) : null;
    const next = argv[i + 1];
    if (name && OPTIONS[name as keyof typeof OPTIONS]?.type === 'string' && next !== undefined && /^-(\d|\.\d|Infinity)/.test(next)) {
      out.push(`${arg}=${next}`);
      i++;
    } else {
      out.push(arg);
    }
  }
  return out;
}

function oneOf<T extends string>(name: string, v: string, allowed: readonly T[]): T {
  const choices = allowed.length > 2 ? `${allowed.slice(0, -1).join(', ')} or ${allowed.at(-1)}` : allowed.join(' or ');
  if (!allowed.includes(v as T)) throw new UsageError(`${name} must be ${choices}, got ${v}`);
  return v as T;
}

/** A number written as one (Number('') and Number(' ') are 0, which nobody means). */
function toNumber(v: string): number {
  return v.trim() === '' ? NaN : Number(v);
}

function positiveInt(name: string, v: string): number {
  const n = toNumber(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`${name} must be a positive integer, got ${v}`);
  return n;
}

function nonNegativeNumber(name: string, v: string): number {
  const n = toNumber(v);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`${name} must be a number ≥ 0, got ${v}`);
  return n;
}

function integer(name: string, v: string): number {
  const n = toNumber(v);
  if (!Number.isSafeInteger(n)) throw new UsageError(`${name} must be an integer, got ${v}`);
  return n;
}

/** Where a --resume file stands: its bytes, and the epochs and steps done. */
export interface Resume {
  bytes: Uint8Array;
  epoch: number;
  /** Optimizer steps done, when the file says (else epochs × steps per epoch). */
  steps?: number;
}

/**
 * Read and check a --resume file before the GPU starts: a readable checkpoint whose progress fits
 * the options. Checkpoints saved by this command record the model and optimizer; others (such as
 * the README's `progress: { epoch: 3 }`) are taken to be what the options say, and loading them
 * checks every tensor.
 */
export function readResume(file: string, opts: Pick<MnistOptions, 'model' | 'optimizer'>): Resume {
  const { bytes, progress } = readCheckpointFile('--resume', file);
  if (progress.model !== undefined && progress.model !== opts.model) {
    throw new UsageError(`--resume: ${file} holds a ${String(progress.model)} model; pass --model ${String(progress.model)}`);
  }
  if (progress.optimizer !== undefined && progress.optimizer !== opts.optimizer) {
    throw new UsageError(`--resume: ${file} was trained with ${String(progress.optimizer)}; pass --optimizer ${String(progress.optimizer)}`);
  }
  const count = (what: string, v: unknown): number => {
    if (!Number.isSafeInteger(v) || (v as number) < 0) {
      throw new UsageError(`--resume ${file}: its progress says ${what} ${JSON.stringify(v)}; expected a count (a non-negative integer)`);
    }
    return v as number;
  };
  const out: Resume = { bytes, epoch: progress.epoch === undefined ? 0 : count('epoch', progress.epoch) };
  if (progress.steps !== undefined) out.steps = count('steps', progress.steps);
  return out;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await train(argv);
  } catch (e) {
    process.exitCode = 1;
    if (e instanceof UsageError) console.error(`error: ${e.message}\n${USAGE}`);
    else if (e instanceof wg.WebGradError) console.error(`error: ${e.message}`);
    else console.error(e); // a bug: the stack trace helps
  }
}

async function train(argv: string[]): Promise<void> {
  const o = parseOptions(argv);
  if (!o) {
    console.log(USAGE);
    return;
  }
  checkOut(o.out);
  if (o.model === 'gpt') return trainText(o);
  const resume = o.resume !== undefined ? readResume(o.resume, o) : null;

  const info = await wg.init(o.backend ? { backend: o.backend } : {});
  console.log(describeBackend(info));

  wg.manualSeed(o.seed);
  const model = o.model === 'mlp' ? mnistMLP() : mnistCNN();
  const params = model.parameters();
  const optimizer = o.optimizer === 'adam' ? new wg.optim.Adam(params, { lr: o.lr }) : new wg.optim.SGD(params, { lr: o.lr, momentum: o.momentum });

  const { train, test } = await wg.data.mnist();
  // The learning rate decays to 0 over the whole run (per step, cosine): the last epochs settle.
  const stepsPerEpoch = Math.ceil(train.size / o.batch);
  const schedule = o.schedule === 'cosine' ? new wg.optim.CosineAnnealingLR(optimizer, { tMax: o.epochs * stepsPerEpoch }) : null;

  let startEpoch = 0;
  let startStep = 0;
  if (resume) {
    try {
      wg.io.loadCheckpoint(resume.bytes, { model, optimizer });
    } catch (e) {
      throw new wg.WebGradError(`--resume ${o.resume} does not fit --model ${o.model} --optimizer ${o.optimizer}: ${(e as Error).message}`);
    }
    startEpoch = resume.epoch;
    startStep = resume.steps ?? startEpoch * stepsPerEpoch;
    schedule?.loadStateDict({ lastEpoch: startStep });
    console.log(`resumed from ${o.resume} at epoch ${startEpoch}`);
  }

  const trainer = new wg.Trainer({ model, optimizer, loss: 'cross-entropy', microBatchSize: o.microBatch });
  trainer.steps = startStep;
  const plan = trainer.plan([o.batch, 1, 28, 28]);
  console.log(
    `model: ${o.model}, ${params.reduce((s, p) => s + p.size, 0).toLocaleString('en')} parameters; ${o.optimizer} lr ${o.lr}` +
      `${schedule ? ' (cosine decay)' : ''}; batch ${o.batch}`,
  );
  console.log(`plan: ${plan.reason}`);
  console.log(`data: ${train.size} training / ${test.size} held-out digits`);

  // Where the last checkpoint went (null: none yet), and whether it missed --out.
  let last: Saved | null = null;
  const saveEpoch = async (epoch: number, testAccuracy: number) => {
    const bytes = await wg.io.saveCheckpoint({ model, optimizer, progress: { model: o.model, optimizer: o.optimizer, epoch, steps: trainer.steps, testAccuracy } });
    last = saveModel(o.out, bytes);
    if (last.failures.length === 0) return;
    const why = last.failures.map((f) => `  ${f}`).join('\n');
    if (last.path) console.error(`error: could not write the checkpoint of epoch ${epoch}:\n${why}\nit is in ${last.path}`);
    else console.error(`error: could not write the checkpoint of epoch ${epoch} anywhere:\n${why}\nthe model stays in memory; the next epoch's save tries again`);
  };
  const report = () => {
    const saved = last as Saved | null;
    if (!saved) console.log(`checkpoint: ${o.out} (not written: no epoch ran)`);
    else if (saved.failures.length === 0) console.log(`checkpoint: ${saved.path}`);
    else {
      process.exitCode = 1;
      console.error(saved.path ? `checkpoint: ${saved.path} (not ${o.out}: see above)` : 'checkpoint: none could be written (see above)');
    }
  };

  if (o.join !== undefined) {
    const agreement = { model: o.model, optimizer: o.optimizer, lr: o.lr, momentum: o.momentum, batch: o.batch, epochs: o.epochs, seed: o.seed, augment: o.augment, schedule: o.schedule };
    await trainTogether({ url: o.join, trainer, train, test, epochs: o.epochs, batchSize: o.batch, augment: o.augment, seed: o.seed, schedule, agreement, saveCheckpoint: saveEpoch });
    if (last) report();
    else console.log(`checkpoint: ${o.out} (written by rank 0 only)`);
    wg.shutdown();
    return;
  }

  let bar: ProgressBar | null = null;
  await trainer.fit(train, {
    epochs: o.epochs,
    initialEpoch: startEpoch,
    batchSize: o.batch,
    augment: o.augment,
    seed: o.seed,
    evalData: test,
    onStep: (s) => {
      schedule?.step();
      if (s.batch === 0) bar = new ProgressBar(s.batches, `epoch ${s.epoch + 1}/${o.epochs}`);
      bar!.update(s.batch + 1, { loss: s.loss.toFixed(4), 'samples/s': s.samplesPerSecond.toFixed(0) });
    },
    onEpoch: async (e) => {
      bar?.done(
        `epoch ${e.epoch + 1}/${o.epochs}: train loss ${e.loss.toFixed(4)}, test loss ${e.eval!.loss.toFixed(4)}, ` +
          `test accuracy ${(e.eval!.accuracy * 100).toFixed(2)}% (${formatTime(e.seconds)})`,
      );
      await saveEpoch(e.epoch + 1, e.eval!.accuracy);
    },
  });
  report();
  wg.shutdown();
}
