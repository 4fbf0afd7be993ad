// Trainer: one optimizer update per batch, whatever the batch size and the device. The batch is
// split into micro-batches that fit the memory budget (see memory-plan.ts); each micro-batch's
// loss is scaled by its share of the batch, so the accumulated gradients are exactly those of the
// full-batch mean loss. An out-of-memory error during a step frees the step's intermediates,
// halves the micro-batch and re-runs the step from its start: the optimizer only ever sees a
// step that completed. A step whose loss or gradients hold inf or NaN updates nothing: it is
// skipped and reported (a warning, StepResult.skipped), or an error with errorIfNonfinite.
// Classifiers and language models share 'cross-entropy': the model's output [B, …, K] against
// int32 targets [B, …] (an image's label, or a sequence's next tokens), the mean over every target
// that is not ignoreIndex. Each micro-batch contributes the sum of its losses divided by the
// number of counted targets in the whole batch (counted on the GPU), so that micro-batches give
// exactly the full batch's mean even when ignored targets are spread unevenly.

import { now } from '../clock';
import { whenLeafGradientsDone } from '../autograd/backward';
import { noGrad } from '../autograd/grad-mode';
import { DataLoader } from '../data/loader';
import type { AnyDataset } from '../data/dataset';
import type { Module } from '../nn/module';
import { div, mul } from '../ops/elementwise';
import { axpyInPlace } from '../ops/pointwise';
import { crossEntropy, mse } from '../ops/loss';
import { eq, ne } from '../ops/mask';
import { argmax, sum } from '../ops/reduce';
import { narrow, reshape } from '../ops/shape';
import { stack } from '../ops/join';
import { bitsPerCharacter, isTextDataset } from '../data/text-dataset';
import { clipGradNorm } from '../optim/clip-grad-norm';
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
  /**
   * 'cross-entropy' (int32 targets: output [B, K] against labels [B], or a sequence model's
   * [B, T, V] against next tokens [B, T]; the mean over targets not equal to ignoreIndex), 'mse',
   * or a function returning a mean loss.
   */
  loss: 'cross-entropy' | 'mse' | LossFn;
  /** Targets with this value do not count in 'cross-entropy' (default −100, as PyTorch). */
  ignoreIndex?: number;
  /**
   * Clip the gradients' joint L2 norm to this before each update (PyTorch's clip_grad_norm_,
   * after loss-scaling's unscale and before the optimizer step, on the whole batch's gradients).
   */
  clipGradNorm?: number;
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

export interface ComputeGradientsOptions {
  /** Scale every gradient by this (data parallelism: a replica's share of the global batch). */
  gradScale?: number;
  /**
   * Called with each parameter as soon as its gradient is complete, during the last micro-batch's
   * backward (the last layers' first), so that a caller can start moving it while backward goes on.
   * A step re-run after running out of memory calls it again. Precision 'f32' only.
   */
  onGradientReady?: (param: Tensor) => void;
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
  /** Mean loss per target: per sample for a classifier, per token for a sequence model (nats, for cross-entropy). */
  loss: number;
  /** Share of targets (samples, or tokens) whose arg-max output is the target (cross-entropy only; NaN otherwise). */
  accuracy: number;
  /** Targets counted (samples or tokens, the ignored ones left out). */
  targets: number;
  /** The loss in bits per character of the text (cross-entropy on a text dataset only: see wg.data.bitsPerCharacter). */
  bitsPerCharacter?: number;
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
  /** The mean loss of an output and its targets (cross-entropy flattens sequences and honours ignoreIndex). */
  readonly lossFn: LossFn;
  readonly isClassifier: boolean;
  readonly ignoreIndex: number;
  /** The gradient norm clipped to before each update (null: no clipping). */
  readonly clipNorm: number | null;
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
    this.ignoreIndex = opts.ignoreIndex ?? -100;
    if (!Number.isInteger(this.ignoreIndex) || Math.abs(this.ignoreIndex) >= 2 ** 31) {
      throw new WebGradError(`Trainer: ignoreIndex must be an int32, got ${String(opts.ignoreIndex)}`);
    }
    this.clipNorm = opts.clipGradNorm ?? null;
    if (this.clipNorm !== null && !(this.clipNorm > 0 && Number.isFinite(this.clipNorm))) {
      throw new WebGradError(`Trainer: clipGradNorm must be a positive number (the largest gradient norm), got ${String(opts.clipGradNorm)}`);
    }
    this.lossFn =
      opts.loss === 'cross-entropy'
        ? (out, y) => crossEntropy(...flattenTargets(out, y), { ignoreIndex: this.ignoreIndex })
        : opts.loss === 'mse'
          ? mse
          : opts.loss;
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
    // The dry run feeds the model and the loss tensors of the batch's own dtypes (token ids are int32).
    const xDType = dtypes.x ?? this.model.inputDType;
    const yShape = targetShape ?? this.targetShape(batchShape, xDType);
    const yDType = dtypes.y ?? (this.isClassifier ? 'int32' : 'float32');
    const key = planKey(batchShape, yShape, xDType, yDType);
    let p = this.plans.get(key);
    if (!p) {
      p = plan({
        model: this.model,
        optimizer: this.optimizer,
        pass: (x, y) => tidy(() => void this.microPass(x, y, 1, this.countTargets(y))),
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
  async computeGradients(x: Tensor, y: Tensor, { gradScale = 1, onGradientReady }: ComputeGradientsOptions = {}): Promise<StepResult> {
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
          const loss = await this.runStep(x, y, m, gradScale, onGradientReady);
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
    // Gradients are unscaled by now (and summed over replicas, under DataParallel).
    if (this.clipNorm !== null) tidy(() => void clipGradNorm(this.optimizer.params, this.clipNorm!));
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
    if (check.overflow) this.optimizer.zeroGrad();
    else this.skipGradients(check.skipReason ?? 'the loss or the gradients are not finite');
  }

  /**
   * The second half of a step whose update must not happen because its loss or gradients are not
   * finite (`reason`: where and which; data parallelism skips on every replica when one has them):
   * the gradients are dropped, parameters and optimizer state stay, and it is reported as step()
   * reports it (one warning, or a NonFiniteError with errorIfNonfinite).
   */
  skipGradients(reason: string): void {
    this.optimizer.zeroGrad();
    const what =
      `Trainer.step (step ${this.steps + 1}): ${reason}; the update was skipped ` +
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

  /**
   * Mean loss and accuracy over `data`, in eval mode and without gradients. With cross-entropy
   * they are per target: per sample for a classifier, per token for a sequence model (ignored
   * targets left out), with bits per character on a text dataset.
   */
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
          // One readback per batch: [Σ loss, targets counted, targets right], or the mean loss.
          const totals = noGrad(() => tidy(() => this.evalTotals(this.model.forward(batch.x), batch.y)));
          const [l, n, c] = await totals.toArray();
          totals.dispose();
          if (this.isClassifier) {
            lossSum += l!;
            seen += n!;
            correct += c!;
          } else {
            lossSum += l! * batch.size;
            seen += batch.size;
          }
        } finally {
          batch.dispose();
        }
      }
    } finally {
      this.model.train(wasTraining);
    }
    const loss = lossSum / Math.max(1, seen);
    const out: EvalResult = { loss, accuracy: this.isClassifier ? correct / Math.max(1, seen) : NaN, targets: seen };
    if (this.isClassifier && isTextDataset(loader.dataset)) out.bitsPerCharacter = bitsPerCharacter(loss, loader.dataset);
    return out;
  }

  /** Cross-entropy: [Σ loss, targets counted, targets right] of one evaluation batch; another loss: its mean. */
  private evalTotals(out: Tensor, y: Tensor): Tensor {
    if (!this.isClassifier) return this.lossFn(out, y);
    const [logits, targets] = flattenTargets(out, y);
    const counted = ne(targets, this.ignoreIndex);
    const right = sum(mul(eq(argmax(logits, 1), targets), counted));
    const lossSum = crossEntropy(logits, targets, { ignoreIndex: this.ignoreIndex, reduction: 'sum' });
    return stack([lossSum, sum(counted), right], 0);
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
    const yShape = targetShape ?? this.targetShape(batchShape, dtypes?.x ?? this.model.inputDType);
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
            const x = empty(batchShape, dtypes?.x ?? this.model.inputDType, 'dry-run input');
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
  private async runStep(x: Tensor, y: Tensor, m: number, gradScale: number, onGradientReady?: (param: Tensor) => void): Promise<number> {
    const rt = runtime();
    this.optimizer.zeroGrad();
    const stats = zeros([2]); // the loss sum, and (loss scaling) how many gradient elements are inf/NaN
    const startBytes = rt.pool.liveBytes;
    rt.pool.resetPeak();
    try {
      this.recordStep(x, y, m, gradScale, stats, () => this.checkEstimate(x, y, rt.pool.peakBytes - startBytes), onGradientReady);
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
  private recordStep(x: Tensor, y: Tensor, m: number, gradScale: number, stats: Tensor, afterFirst?: () => void, onGradientReady?: (param: Tensor) => void): void {
    const batch = x.shape[0]!;
    const lossSum = stats.view([], [], 0);
    const nonFinite = stats.view([], [], 1);
    const counted = this.countTargets(y);
    try {
      for (let start = 0; start < batch; start += m) {
        const len = Math.min(m, batch - start);
        tidy(() => {
          const factor = gradScale * this.mixed.lossFactor;
          // The last micro-batch's backward completes each gradient (loss scaling rescales them after it).
          const last = start + len >= batch && onGradientReady && this.mixed.precision === 'f32';
          const pass = () => this.microPass(narrow(x, 0, start, len), narrow(y, 0, start, len), factor, counted);
          const part = last ? whenLeafGradientsDone(onGradientReady, pass) : pass();
          axpyInPlace(lossSum, part, 1);
        });
        if (start === 0) afterFirst?.();
      }
      this.mixed.unscale(this.optimizer.params, nonFinite);
    } finally {
      lossSum.dispose();
      nonFinite.dispose();
      if (typeof counted !== 'number') counted.dispose();
    }
  }

  /**
   * Cross-entropy: how many of the batch's targets count (not ignoreIndex), a one-element tensor
   * on the GPU; otherwise the batch's samples.
   */
  private countTargets(y: Tensor): Tensor | number {
    return this.isClassifier ? tidy(() => sum(ne(y, this.ignoreIndex))) : y.shape[0]!;
  }

  /**
   * Forward, loss, and backward of a micro-batch's part of the batch's mean loss, times `factor`
   * (data parallelism's share, the loss scale). The part is the sum of its targets' losses over
   * the batch's `counted` targets (cross-entropy), or its mean loss times its share of the samples.
   */
  private microPass(x: Tensor, y: Tensor, factor: number, counted: Tensor | number): Tensor {
    return this.mixed.run(() => {
      const out = this.model.forward(x);
      let part: Tensor;
      if (typeof counted !== 'number') {
        part = div(crossEntropy(...flattenTargets(out, y), { ignoreIndex: this.ignoreIndex, reduction: 'sum' }), counted);
      } else {
        const loss = this.lossFn(out, y);
        if (loss.size !== 1) {
          throw new ShapeError(`Trainer: the loss function returned ${formatShape(loss.shape)}; it must return a mean (one element)`);
        }
        part = mul(loss, x.shape[0]! / counted);
      }
      mul(part, factor).backward();
      return part;
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

  /**
   * The target shape for a batch: the model's output shape, without its last dimension (the
   * classes) for cross-entropy: [B] labels, or [B, T] next tokens.
   */
  private targetShape(batchShape: readonly number[], xDType: 'float32' | 'int32'): number[] {
    const b = batchShape[0]!;
    let out: number[] = [];
    dryRun(() => {
      tidy(() => {
        out = [...noGrad(() => this.model.forward(empty([1, ...batchShape.slice(1)], xDType, 'dry-run input'))).shape];
      });
    });
    return [b, ...out.slice(1, this.isClassifier ? -1 : undefined)];
  }
}

/**
 * Cross-entropy's operands: an output [B, …, K] and targets [B, …] as logits [N, K] and labels
 * [N] (views: nothing copied when the output is contiguous).
 */
function flattenTargets(out: Tensor, y: Tensor): [Tensor, Tensor] {
  const k = out.shape[out.ndim - 1]!;
  const lead = out.shape.slice(0, -1);
  if (out.ndim < 2 || y.ndim !== lead.length || y.shape.some((d, i) => d !== lead[i])) {
    throw new ShapeError(
      `Trainer: cross-entropy takes targets shaped like the output without its last dimension (the classes): ` +
        `output ${formatShape(out.shape)} wants targets ${formatShape(lead)}, got ${formatShape(y.shape)}`,
    );
  }
  if (out.ndim === 2) return [out, y];
  const n = lead.reduce((a, b) => a * b, 1);
  return [reshape(out, [n, k]), reshape(y, [n])];
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
