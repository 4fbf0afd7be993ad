// `npm run train -- [options]`: train an MNIST model on the GPU (Dawn in Node) or, without a usable
// GPU, on the CPU backend (WebAssembly SIMD), with a progress bar, test accuracy after every epoch,
// and a checkpoint written after every epoch. The first line says which backend runs and why.
//
// Everything a person can get wrong is checked before the GPU starts (options, --out, the --resume
// file) and reported as one message with the usage, never a stack trace. A trained model is never
// lost to a failed save: the checkpoint goes beside --out, or to the temp directory, with a message
// saying where (see saveModel).

import { accessSync, constants, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import * as wg from '../node';
import { mnistCNN, mnistMLP } from '../models';
import { ProgressBar, formatTime } from './progress';
import { trainTogether } from './train-together';

export const USAGE = `usage: npm run train -- [--model mlp|cnn] [--epochs N] [--batch B] [--lr X]
                         [--optimizer sgd|adam] [--momentum M] [--augment] [--seed S]
                         [--schedule cosine|constant] [--micro-batch N|auto]
                         [--backend auto|webgpu|wasm]
                         [--out model.safetensors] [--resume FILE]
                         [--join ws://HOST:PORT/SESSION?token=…]  (train with others: see npm run coordinator)`;

/** An option a person got wrong: printed with the usage. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export interface TrainOptions {
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

const OPTIONS = {
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
  backend: { type: 'string' },
  help: { type: 'boolean', default: false },
} as const;

/** The options of `argv`, every value checked (null for --help). No file or GPU is touched. */
export function parseOptions(argv: readonly string[]): TrainOptions | null {
  let a;
  try {
    a = parseArgs({ args: joinNegativeValues(argv), options: OPTIONS, allowPositionals: false }).values;
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (a.help) return null;
  const model = oneOf('--model', a.model, ['mlp', 'cnn'] as const);
  const optimizer = oneOf('--optimizer', a.optimizer, ['sgd', 'adam'] as const);
  const out: TrainOptions = {
    model,
    epochs: positiveInt('--epochs', a.epochs),
    batch: positiveInt('--batch', a.batch),
    lr: a.lr !== undefined ? nonNegativeNumber('--lr', a.lr) : optimizer === 'adam' ? 1e-3 : 0.1,
    optimizer,
    momentum: nonNegativeNumber('--momentum', a.momentum),
    augment: a.augment,
    seed: integer('--seed', a.seed),
    microBatch: a['micro-batch'] === 'auto' ? 'auto' : positiveInt('--micro-batch', a['micro-batch']),
    schedule: oneOf('--schedule', a.schedule, ['cosine', 'constant'] as const),
    out: a.out,
  };
  if (a.out === '') throw new UsageError('--out must name a file');
  if (a.resume !== undefined) out.resume = a.resume;
  if (a.join !== undefined) out.join = a.join;
  if (a.backend !== undefined) out.backend = oneOf('--backend', a.backend, ['auto', 'webgpu', 'wasm'] as const);
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
  if (!allowed.includes(v as T)) throw new UsageError(`${name} must be ${allowed.join(' or ')}, got ${v}`);
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

/** The backend line: which backend runs the kernels, on what, and why. */
export function describeBackend(info: wg.DeviceInfo): string {
  if (info.wasm) {
    const w = info.wasm;
    const threads = `${w.threads} thread${w.threads === 1 ? '' : 's'}${w.threadsReason ? ` (${w.threadsReason})` : ''}`;
    return `backend: CPU (WebAssembly SIMD${w.relaxedSimd ? ', relaxed' : ''}, ${threads}): ${info.backendReason}`;
  }
  const ad = info.adapterInfo;
  return (
    `backend: WebGPU on ${[ad.vendor, ad.architecture, ad.description].filter(Boolean).join(' ')}${ad.isFallbackAdapter ? ' (software fallback)' : ''}; ` +
    `features: ${info.features.join(', ') || 'none'}: ${info.backendReason}`
  );
}

/** --out names a file that can be written: its directory exists and is writable, and it is no directory. */
export function checkOut(out: string): void {
  const dir = dirname(resolve(out));
  if (isDirectory(out)) throw new UsageError(`--out ${out} is a directory; name a file in it, such as --out ${join(out, 'model.safetensors')}`);
  if (!isDirectory(dir)) throw new UsageError(`--out ${out}: the directory ${dir} does not exist (create it first)`);
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    throw new UsageError(`--out ${out}: the directory ${dir} is not writable`);
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
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
export function readResume(file: string, opts: Pick<TrainOptions, 'model' | 'optimizer'>): Resume {
  if (isDirectory(file)) throw new UsageError(`--resume ${file} is a directory; name a checkpoint file`);
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(file));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(`--resume ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (e as Error).message}`);
  }
  let progress: Record<string, unknown>;
  try {
    progress = wg.io.readCheckpointProgress(bytes);
  } catch (e) {
    throw new UsageError(`--resume ${file}: ${(e as Error).message}`);
  }
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

/** Where saveModel wrote a checkpoint, and what failed on the way. */
export interface Saved {
  /** The file written (--out itself, or a rescue file), or null when nothing could be written. */
  path: string | null;
  /** "PATH: reason" for each place that failed, in order. */
  failures: string[];
}

/**
 * Write `bytes` to `out` (through `out.tmp`, renamed, so an interrupted save never leaves a broken
 * checkpoint). If that fails (full disk, the directory gone, `out` now a directory), the partial
 * .tmp is removed and the checkpoint goes beside `out` as NAME.rescued-TIME.EXT, or else into the
 * temp directory: the trained model is not lost.
 */
export function saveModel(out: string, bytes: Uint8Array): Saved {
  const ext = extname(out);
  const rescued = `${basename(out, ext)}.rescued-${new Date().toISOString().replace(/[:.]/g, '-')}${ext}`;
  const failures: string[] = [];
  for (const path of [out, join(dirname(out), rescued), join(tmpdir(), rescued)]) {
    try {
      writeAtomically(path, bytes);
      return { path, failures };
    } catch (e) {
      failures.push(`${path}: ${(e as Error).message}`);
    }
  }
  return { path: null, failures };
}

function writeAtomically(path: string, bytes: Uint8Array): void {
  const tmp = `${path}.tmp`;
  try {
    writeFileSync(tmp, bytes);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
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
