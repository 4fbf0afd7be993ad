// Learning-rate schedules, as torch.optim.lr_scheduler: a schedule is a function of the epoch
// (the number of scheduler.step() calls) and the base lr. Creating one sets the lr of every
// parameter group for epoch 0; each step() moves to the next epoch and sets them again. Call
// scheduler.step() after opt.step(), like PyTorch. A group's base lr is its lr when the first
// schedule was created (kept as the group's initialLr), so schedules created later compute from
// the same base, and groups with different lrs keep their ratio.

import { WebGradError } from '../runtime/errors';
import { checkNumber, type Optimizer } from './optimizer';

export interface LRSchedulerState {
  /** scheduler.step() calls so far. */
  lastEpoch: number;
}

export class LRScheduler {
  /** scheduler.step() calls so far. */
  lastEpoch = 0;
  /** The base lr of the first parameter group. */
  readonly baseLr: number;

  constructor(
    readonly optimizer: Optimizer,
    /** The lr at `epoch` for base lr `baseLr`. */
    private readonly schedule: (epoch: number, baseLr: number) => number,
  ) {
    for (const g of optimizer.paramGroups) g.initialLr ??= g.hyperParams.lr as number;
    this.baseLr = optimizer.paramGroups[0]!.initialLr!;
    this.apply();
  }

  /** The lr this schedule gives at `epoch` (for the first group; `baseLr` for another). */
  lrAt(epoch: number, baseLr = this.baseLr): number {
    return this.schedule(epoch, baseLr);
  }

  step(): void {
    this.lastEpoch++;
    this.apply();
  }

  /** The lr set by the last step() (or by the constructor), of the first group. */
  get lastLr(): number {
    return this.lrAt(this.lastEpoch);
  }

  /** Set every group's lr for lastEpoch. */
  private apply(): void {
    for (const g of this.optimizer.paramGroups) g.hyperParams.lr = this.lrAt(this.lastEpoch, g.initialLr!);
  }

  stateDict(): LRSchedulerState {
    return { lastEpoch: this.lastEpoch };
  }

  /** Resume at a saved epoch (sets opt.lr for it). */
  loadStateDict(sd: LRSchedulerState): void {
    if (!Number.isInteger(sd.lastEpoch) || sd.lastEpoch < 0) {
      throw new WebGradError(`LRScheduler.loadStateDict: lastEpoch must be a non-negative integer, got ${String(sd.lastEpoch)}`);
    }
    this.lastEpoch = sd.lastEpoch;
    this.apply();
  }
}

/** lr = base · factor(epoch) (torch.optim.lr_scheduler.LambdaLR). */
export class LambdaLR extends LRScheduler {
  constructor(optimizer: Optimizer, factor: (epoch: number) => number) {
    super(optimizer, (epoch, base) => base * factor(epoch));
  }
}

export interface StepLROptions {
  /** Epochs between decays. */
  stepSize: number;
  /** Multiplier at each decay (default 0.1). */
  gamma?: number;
}

/** lr = base · gamma^⌊epoch / stepSize⌋ (torch.optim.lr_scheduler.StepLR). */
export class StepLR extends LRScheduler {
  constructor(optimizer: Optimizer, { stepSize, gamma = 0.1 }: StepLROptions) {
    checkPositiveInteger('StepLR', 'stepSize', stepSize);
    checkNumber('StepLR', 'gamma', gamma, 0);
    super(optimizer, (epoch, base) => base * gamma ** Math.floor(epoch / stepSize));
  }
}

export interface CosineAnnealingLROptions {
  /** Epochs from the base lr down to etaMin. */
  tMax: number;
  /** The lowest lr (default 0). */
  etaMin?: number;
}

/**
 * lr = etaMin + (base − etaMin)·(1 + cos(π·epoch / tMax)) / 2 (torch.optim.lr_scheduler.
 * CosineAnnealingLR, closed form; past tMax the cosine continues, as in PyTorch).
 */
export class CosineAnnealingLR extends LRScheduler {
  constructor(optimizer: Optimizer, { tMax, etaMin = 0 }: CosineAnnealingLROptions) {
    checkPositiveInteger('CosineAnnealingLR', 'tMax', tMax);
    checkNumber('CosineAnnealingLR', 'etaMin', etaMin, 0);
    super(optimizer, (epoch, base) => etaMin + ((base - etaMin) * (1 + Math.cos((Math.PI * epoch) / tMax))) / 2);
  }
}

export interface LinearWarmupOptions {
  /** Epochs of warm-up. */
  warmupSteps: number;
  /** The fraction of the base lr at epoch 0 (default 0, as Hugging Face's linear warm-up). */
  startFactor?: number;
  /** The schedule after warm-up, run from its own epoch 0 at epoch warmupSteps (default: constant base lr). */
  then?: LRScheduler;
}

/**
 * Linear warm-up: lr = base · (startFactor + (1 − startFactor)·epoch / warmupSteps) for
 * epoch < warmupSteps, then the `then` schedule shifted by warmupSteps (like PyTorch's
 * SequentialLR of LinearLR and another schedule). Step only the warm-up, not `then`.
 */
export class LinearWarmup extends LRScheduler {
  constructor(optimizer: Optimizer, { warmupSteps, startFactor = 0, then }: LinearWarmupOptions) {
    checkPositiveInteger('LinearWarmup', 'warmupSteps', warmupSteps);
    checkNumber('LinearWarmup', 'startFactor', startFactor, 0);
    if (then && then.optimizer !== optimizer) {
      throw new WebGradError('LinearWarmup: the `then` schedule drives a different optimizer');
    }
    super(optimizer, (epoch, base) => {
      if (epoch < warmupSteps) return base * (startFactor + ((1 - startFactor) * epoch) / warmupSteps);
      return then ? then.lrAt(epoch - warmupSteps, base) : base;
    });
  }
}

function checkPositiveInteger(op: string, what: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) throw new WebGradError(`${op}: ${what} must be a positive integer, got ${String(v)}`);
}
