// Surviving a lost GPU device. A Trainer made with `checkpoint: { every: N }` saves the model, the
// optimizer and its progress (step, where fit() was, the RNG, the loss scale) to a CPU-side store
// before its first step and after every N-th; when the device goes away, the step fails with a
// DeviceLostError that says so, and trainer.recover() starts a new device with the same init()
// options, gives the model's tensors memory on it (Module.rehome: the same Tensor objects, so the
// optimizer keeps its parameters) and loads the checkpoint. Training then continues from the
// checkpointed step exactly as it would have gone on from there.

import { checkpointStore, type CheckpointStore } from '../io/checkpoint-store';
import { loadCheckpoint, readCheckpointProgress, saveCheckpoint } from '../io/checkpoint';
import { checkCount, formatValue } from '../optim/optimizer';
import { globalGenerator } from '../random';
import { currentRuntime, init, type InitOptions } from '../runtime/device';
import { DeviceLostError, WebGradError } from '../runtime/errors';
import { checkLossScalerState, type LossScalerState } from './loss-scaler';
import type { Trainer } from './trainer';

export interface AutoCheckpointOptions {
  /** Save after every this many optimizer steps (and before the first step). */
  every: number;
  /**
   * Where: a CheckpointStore, or a name for the platform's store (a file path in Node, a key in
   * IndexedDB in browsers). Default: a file in the temp directory (Node), IndexedDB key "trainer"
   * (browsers; name your own when two pages train at once).
   */
  store?: CheckpointStore | string;
}

/** Where a recovered run stands: the next step continues from here. */
export interface ResumePoint {
  /** Optimizer steps done (trainer.steps). */
  step: number;
  /** In fit(): the epoch and the batch in it that come next (pass them to fit as initialEpoch and initialBatch). */
  epoch?: number;
  batch?: number;
}

/** Where fit() is: the epoch and batch being trained, and batches per epoch. */
export interface FitCursor {
  epoch: number;
  batch: number;
  batches: number;
}

interface SavedProgress extends ResumePoint {
  /** The global generator's state (dropout, initialisation), to draw the same numbers again. */
  rng: number[];
  /** 'f16-mixed': the loss scaler's state. */
  lossScaler?: LossScalerState;
}

export class AutoCheckpoints {
  readonly every: number;
  readonly store: CheckpointStore;
  /** The step of the last checkpoint saved (null: none yet). */
  lastStep: number | null = null;
  /** init() options of the device the trainer started on, for a new one after a loss. */
  private readonly initOptions: InitOptions;

  constructor(opts: AutoCheckpointOptions) {
    if (!Number.isInteger(opts.every) || opts.every < 1) {
      throw new WebGradError(`Trainer: checkpoint.every must be a positive integer (steps), got ${String(opts.every)}`);
    }
    this.every = opts.every;
    this.store = checkpointStore(opts.store);
    this.initOptions = currentRuntime()?.options ?? {};
  }

  /** Before a step: the starting point, if nothing is saved yet. */
  async beforeStep(t: Trainer): Promise<void> {
    if (this.lastStep === null) await this.save(t, t.cursor ? { epoch: t.cursor.epoch, batch: t.cursor.batch } : {});
  }

  /** After a step's update: every `every` steps. */
  async afterStep(t: Trainer): Promise<void> {
    if (t.steps % this.every !== 0 || this.lastStep === t.steps) return;
    const c = t.cursor;
    const next = !c ? {} : c.batch + 1 < c.batches ? { epoch: c.epoch, batch: c.batch + 1 } : { epoch: c.epoch + 1, batch: 0 };
    await this.save(t, next);
  }

  private async save(t: Trainer, position: { epoch?: number; batch?: number }): Promise<void> {
    const progress: SavedProgress = { step: t.steps, ...position, rng: Array.from(globalGenerator.getState()) };
    const scaler = t.mixed.scaler?.stateDict();
    if (scaler) progress.lossScaler = scaler;
    const bytes = await saveCheckpoint({ model: t.model, optimizer: t.optimizer, progress: { ...progress } });
    try {
      await this.store.save(bytes);
    } catch (e) {
      throw new WebGradError(`Trainer: the automatic checkpoint of step ${t.steps} could not be saved to ${this.store.where}: ${(e as Error).message}`);
    }
    this.lastStep = t.steps;
  }

  /** The advice a DeviceLostError of this trainer ends with. */
  hint(): string {
    return this.lastStep === null
      ? 'No automatic checkpoint was saved yet: rebuild the model after wg.init().'
      : `The last automatic checkpoint is of step ${this.lastStep} (${this.store.where}): trainer.recover() continues from it.`;
  }

  /** Start a new device if the old one is lost, and load the last checkpoint into the trainer. */
  async recover(t: Trainer): Promise<ResumePoint> {
    const bytes = await this.store.load();
    if (!bytes) throw new WebGradError(`Trainer.recover: there is no checkpoint in ${this.store.where} yet`);
    const rt = currentRuntime();
    if (!rt || rt.lost) {
      if (rt?.options.device) {
        throw new DeviceLostError(
          'Trainer.recover: the lost device was one you passed to wg.init({ device }); request a new GPUDevice, ' +
            'call wg.init({ device }) with it, then trainer.recover()',
        );
      }
      await init(rt?.options ?? this.initOptions);
    }
    const progress = checkProgress(readCheckpointProgress(bytes), this.store.where);
    t.model.rehome();
    loadCheckpoint(bytes, { model: t.model, optimizer: t.optimizer });
    globalGenerator.setState(Uint32Array.from(progress.rng));
    if (progress.lossScaler) t.mixed.scaler?.loadStateDict(progress.lossScaler);
    t.steps = progress.step;
    this.lastStep = progress.step;
    const at: ResumePoint = { step: progress.step };
    if (typeof progress.epoch === 'number') at.epoch = progress.epoch;
    if (typeof progress.batch === 'number') at.batch = progress.batch;
    return at;
  }
}

/** A Trainer's saved progress, every field checked (the file may have been edited or corrupted). */
function checkProgress(p: Record<string, unknown>, where: string): SavedProgress {
  const op = `Trainer.recover (${where})`;
  if (p.step === undefined || p.rng === undefined) throw new WebGradError(`${op}: a checkpoint without a Trainer's progress (step, rng)`);
  const out: SavedProgress = { step: checkCount(op, 'step', p.step), rng: [] };
  if (p.epoch !== undefined) out.epoch = checkCount(op, 'epoch', p.epoch);
  if (p.batch !== undefined) out.batch = checkCount(op, 'batch', p.batch);
  const rng = p.rng;
  if (!Array.isArray(rng) || rng.length !== 4 || !rng.every((v) => Number.isInteger(v) && v >= 0 && v < 2 ** 32) || rng.every((v) => v === 0)) {
    throw new WebGradError(`${op}: rng must be the generator's state, four 32-bit unsigned integers not all 0; got ${formatValue(rng)}`);
  }
  out.rng = rng as number[];
  if (p.lossScaler !== undefined) out.lossScaler = checkLossScalerState(op, p.lossScaler);
  return out;
}

/** `e`, and a DeviceLostError restated with the trainer's op, its step and what recover() would do. */
export function withRecoveryHint(e: unknown, op: string, step: number, checkpoints: AutoCheckpoints | null): unknown {
  if (!(e instanceof DeviceLostError) || e.message.startsWith('Trainer.')) return e;
  const hint = checkpoints
    ? checkpoints.hint()
    : 'This Trainer keeps no automatic checkpoints (new wg.Trainer({ …, checkpoint: { every: N } }) would).';
  return new DeviceLostError(`${op} (step ${step}): ${e.message} ${hint}`);
}
