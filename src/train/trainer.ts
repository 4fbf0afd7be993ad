// Trainer: one optimizer update per batch, whatever the batch size and the device. The batch is
// split into micro-batches that fit the memory budget (see memory-plan.ts); each micro-batch's
// loss is scaled by its share of the batch, so the accumulated gradients are exactly those of the
// full-batch mean loss. An out-of-memory error during a step frees the step's intermediates,
// halves the micro-batch and re-runs the step from its start: the optimizer only ever sees a
// step that completed. A step whose loss or gradients hold inf or NaN updates nothing: it is
// skipped and reported (a warning, StepResult.skipped), or an error with errorIfNonfinite.

import { now } from '../clock';
import { noGrad } from '../autograd/grad-mode';
import { DataLoader } from '../data/loader';
import type { AnyDataset } from '../data/dataset';
import type { Module } from '../nn/module';
import { mul } from '../ops/elementwise';
import { axpyInPlace } from '../ops/pointwise';
import { crossEntropy, mse } from '../ops/loss';
import { argmax } from '../ops/reduce';
import { narrow } from '../ops/shape';
import { contiguousCopy, zeros } from '../creation';
import type { Optimizer } from '../optim/optimizer';
import { globalGenerator } from '../random';
import { runtime } from '../runtime/device';
import { dryRun } from '../memory';
import { DTypeError, kindOf, NonFiniteError, OutOfMemoryError, ShapeError, WebGradError } from '../runtime/errors';
import { tidy } from '../scope';
import { empty, formatShape, Tensor } from '../tensor';
import { autotuner } from '../kernels/tuning/autotune';
import { compilePipelines, recordPipelines, type PrecompileOptions } from '../runtime/pipeline-compiler';
import { applyCheckpointing, checkCheckpointing, defaultBudget, plan, type Checkpointing, type Plan } from './memory-plan';
import type { LossScalingOptions } from './loss-scaler';
import { MixedPrecision, type Precision, type StepCheck } from './mixed-precision';
import { AutoCheckpoints, withRecoveryHint, type AutoCheckpointOptions, type FitCursor, type ResumePoint } from './recovery';

export type LossFn = (output: Tensor, target: Tensor) => Tensor;

export interface TrainerOptions {
  model: Module;
  optimizer: Optimizer;
  /** 'cross-entropy' (int32 class labels), 'mse', or a function returning a mean loss. */
  loss: 'cross-entropy' | 'mse' | LossFn;
  /** Samples per micro-batch, or 'auto' (default): the largest that fits the memory budget. */
  microBatchSize?: number | 'auto';
  /** Bytes a step may use; default: the init() budget, else half of 4 × maxBufferSize (see README). */
  memoryBudgetBytes?: number;
  /**
   * Activation checkpointing of the model's checkpointBlocks() (nn/checkpoint.ts): 'auto' (default) lets
   * the memory plan choose none, every block or every k-th block with the micro-batch size, for
   * the fastest step that fits the budget; 'none', 'blocks' (every block) or { every: k } fix it.
   * Gradients are the same either way (bit for bit at the same micro-batch size).
   */
  checkpointing?: Checkpointing;
  /** Save model, optimizer and progress every N steps, for recover() after a device loss (recovery.ts). */
  checkpoint?: AutoCheckpointOptions;
  /**
   * 'f32' (default), or 'f16-mixed': matmul and conv2d with f16 operands and f32 accumulation
   * (on devices with shader-f16), f32 weights and optimizer state, dynamic loss scaling (mixed-precision.ts).
   */
  precision?: Precision;
  /** Loss scaling for 'f16-mixed' (initial scale 2^16, growth ×2 after 2000 finite steps, backoff ×0.5). */
  lossScaling?: LossScalingOptions;
  /**
   * Time the kernels that met a new shape class before a step (default true), except before this
   * Trainer's first step, which runs on the untimed defaults so that a result comes at once.
   * false: leave it to the caller (`wg.autotune()`, e.g. with progress shown).
   */
  tuneBeforeSteps?: boolean;
  /**
   * A step whose loss or gradients hold inf or NaN never updates the model. By default (false) it
   * is skipped, reported in StepResult and with one console.warn; true throws a NonFiniteError
   * instead (as PyTorch's clip_grad_norm_(error_if_nonfinite=True)). Gradient overflows of
   * 'f16-mixed' loss scaling are routine and only back the scale off.
   */
  errorIfNonfinite?: boolean;
}

export interface StepResult {
  /** Mean loss over the batch. */
  loss: number;
  microBatches: number;
  microBatchSize: number;
  /** Times this step was re-run after running out of memory. */
  recoveries: number;
  /**
   * The loss or the gradients held inf or NaN, so the update was skipped: parameters and optimizer
   * state untouched, gradients dropped (with 'f16-mixed', the loss scale backed off).
   */
  skipped: boolean;
  /** Why the update was skipped, in words (null when it was not). */
  skipReason: string | null;
  /** Updates skipped so far for that reason. */
  skippedSteps: number;
}

export interface StepInfo extends StepResult {
  epoch: number;
  /** Batch index within the epoch, and batches per epoch. */
  batch: number;
  batches: number;
  samplesPerSecond: number;
}

export interface EpochInfo {
  epoch: number;
  /** Mean training loss over the epoch. */
  loss: number;
  seconds: number;
  /** Held-out loss and accuracy, when fit() was given evalData. */
  eval?: EvalResult;
}

export interface EvalResult {
  loss: number;
  /** Share of samples whose arg-max output is the label (cross-entropy only; NaN otherwise). */
  accuracy: number;
}

export interface FitOptions {
  /** Train until this many epochs are done in total (counting initialEpoch ones, as in Keras). */
  epochs: number;
  /** Epochs already done (when resuming): numbering, shuffling and augmentation continue from here. */
  initialEpoch?: number;
  /** Batches of the first epoch already done (resuming mid-epoch, e.g. where trainer.recover() says). */
  initialBatch?: number;
  batchSize: number;
  shuffle?: boolean;
  augment?: boolean;
  seed?: number;
  evalData?: AnyDataset | DataLoader<AnyDataset>;
  onStep?: (info: StepInfo) => void | Promise<void>;
  onEpoch?: (info: EpochInfo) => void | Promise<void>;
}

export class Trainer {
  readonly model: Module;
  readonly optimizer: Optimizer;
  readonly lossFn: LossFn;
  readonly isClassifier: boolean;
  readonly microBatchSize: number | 'auto';
  readonly checkpointing: Checkpointing;
  readonly budgetBytes: number;
  readonly tuneBeforeSteps: boolean;
  /** Optimizer updates applied so far. */
  steps = 0;
  /** Peak live bytes measured during the last step. */
  lastPeakBytes = 0;
  private plans = new Map<string, Plan>();
  /** Micro-batch sizes forced by out-of-memory recovery, by batch shape, with the reason. */
  private overrides = new Map<string, { microBatchSize: number; why: string }>();
  private correction = 1;
  /** Automatic checkpoints (null unless the options ask for them). */
  readonly checkpoints: AutoCheckpoints | null;
  /** Where fit() is (null outside fit): saved with automatic checkpoints. */
  cursor: FitCursor | null = null;
  /** Precision and loss scaling. */
  readonly mixed: MixedPrecision;
  /** Throw a NonFiniteError instead of skipping a step with inf/NaN (see TrainerOptions). */
  readonly errorIfNonfinite: boolean;
  private warnedNonFinite = false;
  /** The verdict on the last computed gradients. */
  private lastCheck: StepCheck = { skipped: false, skipReason: null, overflow: false };

  constructor(opts: TrainerOptions) {
    this.model = opts.model;
    this.optimizer = opts.optimizer;
    this.isClassifier = opts.loss === 'cross-entropy';
    this.lossFn = opts.loss === 'cross-entropy' ? crossEntropy : opts.loss === 'mse' ? mse : opts.loss;
    this.microBatchSize = opts.microBatchSize ?? 'auto';
    this.checkpointing = checkCheckpointing(opts.checkpointing ?? 'auto');
    this.budgetBytes = opts.memoryBudgetBytes ?? defaultBudget();
    this.tuneBeforeSteps = opts.tuneBeforeSteps ?? true;
    this.checkpoints = opts.checkpoint ? new AutoCheckpoints(opts.checkpoint) : null;
    this.mixed = new MixedPrecision(opts.precision, opts.lossScaling);
    this.errorIfNonfinite = opts.errorIfNonfinite ?? false;
  }

  /** The current loss scale ('f16-mixed'; 1 otherwise). */
  get lossScale(): number {
    return this.mixed.lossFactor;
  }

  /**
   * How a batch of `batchShape` is split into micro-batches, and why. `dtypes`: those of the
   * batch (default float32 inputs; int32 targets for cross-entropy, else float32).
   */
  plan(batchShape: readonly number[], targetShape?: readonly number[], dtypes?: Partial<BatchDTypes>): Plan {
    return this.planFor(batchShape, targetShape, 0, dtypes);
  }

  private planFor(
    batchShape: readonly number[],
    targetShape: readonly number[] | undefined,
    liveBatchBytes: number,
    dtypes: Partial<BatchDTypes> = {},
  ): Plan {
    const yShape = targetShape ?? this.targetShape(batchShape);
    // The dry run feeds the model and the loss tensors of the batch's own dtypes (token ids are int32).
    const xDType = dtypes.x ?? 'float32';
    const yDType = dtypes.y ?? (this.isClassifier ? 'int32' : 'float32');
    const key = planKey(batchShape, yShape, xDType, yDType);
    let p = this.plans.get(key);
    if (!p) {
      p = plan({
        model: this.model,
        optimizer: this.optimizer,
        pass: (x, y) => this.microPass(x, y, 1),
        xShape: batchShape,
        yShape,
        xDType,
        yDType,
        microBatchSize: this.microBatchSize,
        checkpointing: this.checkpointing,
        budgetBytes: this.budgetBytes,
        correction: this.correction,
        liveBatchBytes,
      });
      this.plans.set(key, p);
    }
    const o = this.overrides.get(key);
    if (o && o.microBatchSize < p.microBatchSize) {
      const m = o.microBatchSize;
      const microBatches = Math.ceil(batchShape[0]! / m);
      return {
        ...p,
        microBatchSize: m,
        microBatches,
        estimatedPeakBytes: p.persistentBytes + p.bytesPerSample * m,
        reason: `${m} samples per micro-batch (${microBatches} micro-batches): ${o.why}`,
      };
    }
    return p;
  }

  /** One optimizer update from the batch (x, y): split, accumulate, update. */
  async step(x: Tensor, y: Tensor): Promise<StepResult> {
    this.checkBatch(x, y);
    try {
      await this.checkpoints?.beforeStep(this);
      const result = await this.computeGradients(x, y);
      if (result.skipped) this.skipUpdate(this.lastCheck);
      else this.applyGradients();
      await this.checkpoints?.afterStep(this);
      return result;
    } catch (e) {
      throw withRecoveryHint(e, 'Trainer.step', this.steps + 1, this.checkpoints);
    }
  }

  /**
   * After a DeviceLostError: a new device (wg.init() with the same options), the model and
   * optimizer as of the last automatic checkpoint, and `steps` back at its step. Returns where
   * to continue (for fit: initialEpoch and initialBatch).
   */
  async recover(): Promise<ResumePoint> {
    if (!this.checkpoints) {
      throw new WebGradError('Trainer.recover: this Trainer keeps no automatic checkpoints; create it with checkpoint: { every: N }');
    }
    return this.checkpoints.recover(this);
  }

  /**
   * The first half of a step: forward and backward over (x, y) in micro-batches, leaving in each
   * parameter's .grad the gradient of the mean loss over the batch, times `gradScale` (data
   * parallelism passes a replica's share of the global batch here, and sums the replicas'
   * gradients). Recovers from running out of memory by halving the micro-batch.
   */
  async computeGradients(x: Tensor, y: Tensor, { gradScale = 1 }: { gradScale?: number } = {}): Promise<StepResult> {
    this.checkBatch(x, y);
    if (x.shape[0] !== y.shape[0]) {
      throw new ShapeError(`Trainer.step: x ${formatShape(x.shape)} and y ${formatShape(y.shape)} have different batch sizes`);
    }
    const dtypes = batchDTypes(x, y);
    const p = this.planFor(x.shape, y.shape, storageBytes(x) + storageBytes(y), dtypes);
    // Planning ran the model's ops: kernels meeting a new shape class get timed now, once (not
    // before the first step: it runs on the defaults, so that the first loss is not kept waiting).
    if (this.tuneBeforeSteps && this.steps > 0 && autotuner().hasPending) await autotuner().tune();
    let m = p.microBatchSize;
    applyCheckpointing(this.model.checkpointBlocks(), p.checkpointEvery);
    let recoveries = 0;
    const rng = globalGenerator.getState();
    const buffers = this.snapshotBuffers();
    try {
      for (;;) {
        try {
          const loss = await this.runStep(x, y, m, gradScale);
          const { skipped, skipReason } = this.lastCheck;
          return {
            loss,
            microBatches: Math.ceil(x.shape[0]! / m),
            microBatchSize: m,
            recoveries,
            skipped,
            skipReason,
            skippedSteps: this.mixed.skippedSteps,
          };
        } catch (e) {
          if (!(e instanceof OutOfMemoryError) || m === 1) throw e;
          // Start the step again with half the micro-batch, from the same state.
          this.optimizer.zeroGrad();
          globalGenerator.setState(rng);
          if (buffers) this.model.loadStateDict(buffers, { strict: false });
          m = Math.ceil(m / 2);
          recoveries++;
          this.overrides.set(planKey(x.shape, y.shape, dtypes.x, dtypes.y), { microBatchSize: m, why: `halved after running out of memory (${e.message})` });
        }
      }
    } finally {
      if (buffers) for (const t of Object.values(buffers)) t.dispose();
    }
  }

  /**
   * The second half of a step: one optimizer update from the accumulated gradients. Skips only
   * what loss scaling skips: DataParallel sums the replicas' gradients before calling this, and a
   * replica skipping on its own verdict would part from the others.
   */
  applyGradients(): void {
    if (this.mixed.skipped) {
      this.optimizer.zeroGrad(); // inf/NaN gradients: no update (loss scaling backed off)
      return;
    }
    this.optimizer.step();
    this.steps++;
  }

  /** x and y are tensors (a typed array passed by mistake gets a sentence, not a TypeError deep inside). */
  private checkBatch(x: unknown, y: unknown): void {
    const check = (name: string, v: unknown, make: string) => {
      if (!(v instanceof Tensor)) throw new DTypeError(`Trainer.step: ${name} must be a Tensor, got ${kindOf(v)} (${make} makes one)`);
    };
    check('x', x, 'wg.tensor(x, shape)');
    check('y', y, this.isClassifier ? "wg.tensor(y, shape, { dtype: 'int32' })" : 'wg.tensor(y, shape)');
  }

  /** A step whose loss or gradients are not finite: no update; reported unless loss scaling overflowed. */
  private skipUpdate(check: StepCheck): void {
    this.optimizer.zeroGrad();
    if (check.overflow) return;
    const what =
      `Trainer.step (step ${this.steps + 1}): ${check.skipReason}; the update was skipped ` +
      '(parameters and optimizer state unchanged)';
    if (this.errorIfNonfinite) {
      throw new NonFiniteError(`${what}. A NaN or inf in the batch, or a learning rate that makes training diverge, are the usual causes.`);
    }
    if (!this.warnedNonFinite) {
      this.warnedNonFinite = true;
      console.warn(
        `webgrad: ${what}. Later skips are counted in StepResult.skippedSteps without a warning; ` +
          'new Trainer({ …, errorIfNonfinite: true }) throws a NonFiniteError instead.',
      );
    }
  }

  /** Train for `epochs` over `data`, reporting each step and epoch. */
  async fit(data: AnyDataset | DataLoader<AnyDataset>, opts: FitOptions): Promise<EpochInfo[]> {
    try {
      return await this.fitEpochs(data, opts);
    } catch (e) {
      throw withRecoveryHint(e, 'Trainer.fit', this.steps + 1, this.checkpoints);
    }
  }

  private async fitEpochs(data: AnyDataset | DataLoader<AnyDataset>, opts: FitOptions): Promise<EpochInfo[]> {
    const loader =
      data instanceof DataLoader
        ? data
        : new DataLoader(data, { batchSize: opts.batchSize, shuffle: opts.shuffle ?? true, augment: opts.augment, seed: opts.seed });
    const history: EpochInfo[] = [];
    const first = opts.initialEpoch ?? 0;
    loader.epoch = first;
    for (let epoch = first; epoch < opts.epochs; epoch++) {
      this.model.train();
      const started = now();
      let lossSum = 0;
      let seen = 0;
      let batchIndex = epoch === first ? (opts.initialBatch ?? 0) : 0;
      for (const batch of loader.batches(batchIndex)) {
        let result: StepResult;
        this.cursor = { epoch, batch: batchIndex, batches: loader.length };
        try {
          result = await this.step(batch.x, batch.y);
        } finally {
          this.cursor = null;
          batch.dispose();
        }
        lossSum += result.loss * batch.size;
        seen += batch.size;
        await opts.onStep?.({
          ...result,
          epoch,
          batch: batchIndex++,
          batches: loader.length,
          samplesPerSecond: seen / Math.max(1e-9, (now() - started) / 1000),
        });
      }
      const info: EpochInfo = { epoch, loss: lossSum / Math.max(1, seen), seconds: (now() - started) / 1000 };
      if (opts.evalData) info.eval = await this.evaluate(opts.evalData, { batchSize: opts.batchSize });
      history.push(info);
      await opts.onEpoch?.(info);
    }
    return history;
  }

  /** Mean loss and accuracy over `data`, in eval mode and without gradients. */
  async evaluate(data: AnyDataset | DataLoader<AnyDataset>, { batchSize = 256 }: { batchSize?: number } = {}): Promise<EvalResult> {
    const loader = data instanceof DataLoader ? data : new DataLoader(data, { batchSize });
    const wasTraining = this.model.training;
    this.model.eval();
    let lossSum = 0;
    let correct = 0;
    let seen = 0;
    try {
      for (const batch of loader) {
        try {
          const [loss, predicted] = noGrad(() =>
            tidy(() => {
              const out = this.model.forward(batch.x);
              return [this.lossFn(out, batch.y), this.isClassifier ? argmax(out, 1) : null] as const;
            }),
          );
          lossSum += (await loss.item()) * batch.size;
          loss.dispose();
          if (predicted) {
            const [pred, labels] = await Promise.all([predicted.toArray(), batch.y.toArray()]);
            for (let i = 0; i < batch.size; i++) if (pred[i] === labels[i]) correct++;
            predicted.dispose();
          }
          seen += batch.size;
        } finally {
          batch.dispose();
        }
      }
    } finally {
      this.model.train(wasTraining);
    }
    return { loss: lossSum / Math.max(1, seen), accuracy: this.isClassifier ? correct / Math.max(1, seen) : NaN };
  }

  /**
   * Compile, in the background, the GPU pipelines of a step on batches of `batchShape` (forward,
   * loss and backward at the planned micro-batch size, gradient accumulation, loss scaling), so
   * that the first step does not stop while they compile one by one (wg.precompile, for a
   * Trainer's step). Returns the plan.
   */
  async precompile(
    batchShape: readonly number[],
    { targetShape, dtypes, onProgress }: { targetShape?: readonly number[]; dtypes?: Partial<BatchDTypes> } & PrecompileOptions = {},
  ): Promise<Plan> {
    const yShape = targetShape ?? this.targetShape(batchShape);
    const p = this.plan(batchShape, yShape, dtypes);
    applyCheckpointing(this.model.checkpointBlocks(), p.checkpointEvery);
    // The dry run's gradients stand in for the real ones, which are put back after it.
    const params = this.model.parameters();
    const saved = params.map((q) => q.grad);
    for (const q of params) q.grad = null;
    let wanted;
    try {
      wanted = recordPipelines(() =>
        dryRun(() => {
          tidy(() => {
            const x = empty(batchShape, dtypes?.x ?? 'float32', 'dry-run input');
            const y = empty(yShape, dtypes?.y ?? (this.isClassifier ? 'int32' : 'float32'), 'dry-run labels');
            this.recordStep(x, y, p.microBatchSize, 1, zeros([2]));
          });
          for (const q of params) q.grad?.dispose();
        }),
      );
    } finally {
      params.forEach((q, i) => {
        if (q.grad && q.grad !== saved[i]) q.grad.dispose();
        q.grad = saved[i]!;
      });
    }
    await compilePipelines(wanted, { onProgress });
    return p;
  }

  /** Forward and backward over the batch in micro-batches of m; returns the mean loss. */
  private async runStep(x: Tensor, y: Tensor, m: number, gradScale: number): Promise<number> {
    const rt = runtime();
    this.optimizer.zeroGrad();
    const stats = zeros([2]); // the loss sum, and (loss scaling) how many gradient elements are inf/NaN
    const startBytes = rt.pool.liveBytes;
    rt.pool.resetPeak();
    try {
      this.recordStep(x, y, m, gradScale, stats, () => this.checkEstimate(x, y, rt.pool.peakBytes - startBytes));
      const [loss, bad] = await stats.toArray(); // waits for the GPU: out-of-memory errors surface here
      this.lastCheck = this.mixed.check(loss!, bad!);
      this.lastPeakBytes = rt.pool.peakBytes;
      return loss!;
    } finally {
      stats.dispose();
    }
  }

  /**
   * The GPU work of a step before its update, recorded without waiting for it: micro-batches of m
   * (`afterFirst` runs after the first), the mean loss into stats[0], the gradients unscaled with
   * the count of inf/NaN elements into stats[1]. precompile() runs it dry.
   */
  private recordStep(x: Tensor, y: Tensor, m: number, gradScale: number, stats: Tensor, afterFirst?: () => void): void {
    const batch = x.shape[0]!;
    const lossSum = stats.view([], [], 0);
    const nonFinite = stats.view([], [], 1);
    try {
      for (let start = 0; start < batch; start += m) {
        const len = Math.min(m, batch - start);
        tidy(() => {
          const share = (len / batch) * gradScale * this.mixed.lossFactor;
          const loss = this.microPass(narrow(x, 0, start, len), narrow(y, 0, start, len), share);
          axpyInPlace(lossSum, loss, len / batch);
        });
        if (start === 0) afterFirst?.();
      }
      this.mixed.unscale(this.optimizer.params, nonFinite);
    } finally {
      lossSum.dispose();
      nonFinite.dispose();
    }
  }

  /** Forward, loss, and backward of the loss scaled by `share` (the micro-batch's part of the batch). */
  private microPass(x: Tensor, y: Tensor, share: number): Tensor {
    return this.mixed.run(() => {
      const out = this.model.forward(x);
      const loss = this.lossFn(out, y);
      if (loss.size !== 1) {
        throw new ShapeError(`Trainer: the loss function returned ${formatShape(loss.shape)}; it must return a mean (one element)`);
      }
      mul(loss, share).backward();
      return loss;
    });
  }

  /** After a step's first micro-batch: if it took more than planned, plan future steps with the measured size. */
  private checkEstimate(x: Tensor, y: Tensor, measured: number): void {
    const p = this.plan(x.shape, y.shape, batchDTypes(x, y));
    const planned = p.estimatedPeakBytes - p.persistentBytes;
    if (planned > 0 && measured > planned * 1.1) {
      this.correction *= measured / planned;
      this.plans.clear();
    }
  }

  /** Copies of the model's buffers (BatchNorm statistics), to rewind a step that must re-run. */
  private snapshotBuffers(): Record<string, Tensor> | null {
    const named = this.model.namedBuffers();
    if (!named.length) return null;
    return Object.fromEntries(named.map(([n, t]) => [n, contiguousCopy(t)]));
  }

  /** The target shape for a batch: [B] labels for cross-entropy, else the model's output shape. */
  private targetShape(batchShape: readonly number[]): number[] {
    const b = batchShape[0]!;
    if (this.isClassifier) return [b];
    let out: number[] = [];
    dryRun(() => {
      tidy(() => {
        out = [...noGrad(() => this.model.forward(empty([1, ...batchShape.slice(1)]))).shape];
      });
    });
    return [b, ...out.slice(1)];
  }
}

/** The dtypes of a batch's inputs and targets. */
export interface BatchDTypes {
  x: 'float32' | 'int32';
  y: 'float32' | 'int32';
}

function batchDTypes(x: Tensor, y: Tensor): BatchDTypes {
  for (const [t, what] of [[x, 'inputs'], [y, 'targets']] as const) {
    if (t.dtype !== 'float32' && t.dtype !== 'int32') {
      throw new DTypeError(`Trainer.step: the batch's ${what} ${formatShape(t.shape)} are ${t.dtype}; expected float32 or int32`);
    }
  }
  return { x: x.dtype as BatchDTypes['x'], y: y.dtype as BatchDTypes['y'] };
}

function planKey(xShape: readonly number[], yShape: readonly number[], xDType: string, yDType: string): string {
  return `${xDType}${formatShape(xShape)}|${yDType}${formatShape(yShape)}`;
}

function storageBytes(t: Tensor): number {
  return runtime().pool.classOf(t.storage('Trainer.step').bytes);
}
