// Dynamic loss scaling (as PyTorch's GradScaler): the loss is multiplied by `scale` before the
// backward pass so that small gradients survive f16, and the gradients are divided by it again
// before the update. A step whose gradients hold inf or NaN (the scale was too large for f16 or
// f32) is skipped and the scale multiplied by backoffFactor; after growthInterval finite steps in
// a row it is multiplied by growthFactor, to use as much of the range as stays finite.
// This is the policy only; the GPU side (unscale and count non-finite elements in one pass) is
// gradStat('unscaleCheck') in src/optim/grad-stats.ts, driven by mixed-precision.ts.

import { WebGradError } from '../runtime/errors';
import { checkCount, checkNumber } from '../optim/optimizer';

export interface LossScalingOptions {
  /** The first scale (default 2^16). */
  initScale?: number;
  /** Factor applied after growthInterval finite steps in a row (default 2). */
  growthFactor?: number;
  /** Factor applied after a step with inf/NaN gradients (default 0.5). */
  backoffFactor?: number;
  /** Finite steps in a row before the scale grows (default 2000). */
  growthInterval?: number;
}

export interface LossScalerState {
  scale: number;
  /** Finite steps since the last change of scale. */
  finiteRun: number;
  skippedSteps: number;
}

export class LossScaler {
  scale: number;
  readonly growthFactor: number;
  readonly backoffFactor: number;
  readonly growthInterval: number;
  /** Finite steps since the last change of scale. */
  finiteRun = 0;
  /** Steps skipped so far because their gradients were not finite. */
  skippedSteps = 0;

  constructor(opts: LossScalingOptions = {}) {
    this.scale = checkNumber('LossScaler', 'initScale', opts.initScale ?? 2 ** 16, Number.MIN_VALUE);
    this.growthFactor = checkNumber('LossScaler', 'growthFactor', opts.growthFactor ?? 2, 1);
    this.backoffFactor = checkNumber('LossScaler', 'backoffFactor', opts.backoffFactor ?? 0.5, Number.MIN_VALUE, 1);
    this.growthInterval = checkNumber('LossScaler', 'growthInterval', opts.growthInterval ?? 2000, 1);
    if (!Number.isInteger(this.growthInterval)) {
      throw new WebGradError(`LossScaler: growthInterval must be a whole number of steps, got ${this.growthInterval}`);
    }
  }

  /** Record a step's gradient check; returns true when the step must be skipped. */
  update(finite: boolean): boolean {
    if (!finite) {
      this.scale *= this.backoffFactor;
      this.finiteRun = 0;
      this.skippedSteps++;
      return true;
    }
    if (++this.finiteRun >= this.growthInterval) {
      // Growth stops where f32 itself would overflow the scale.
      if (Number.isFinite(Math.fround(this.scale * this.growthFactor))) this.scale *= this.growthFactor;
      this.finiteRun = 0;
    }
    return false;
  }

  stateDict(): LossScalerState {
    return { scale: this.scale, finiteRun: this.finiteRun, skippedSteps: this.skippedSteps };
  }

  /** Restore what stateDict() returned (every field checked before any is set). */
  loadStateDict(s: LossScalerState): void {
    ({ scale: this.scale, finiteRun: this.finiteRun, skippedSteps: this.skippedSteps } = checkLossScalerState('LossScaler.loadStateDict', s));
  }
}

/** `s` if it is a loss scaler's state (as a checkpoint holds it), else an error naming `op` and the bad field. */
export function checkLossScalerState(op: string, s: unknown): LossScalerState {
  if (typeof s !== 'object' || s === null) throw new WebGradError(`${op}: the loss scaler state must be { scale, finiteRun, skippedSteps }`);
  const { scale, finiteRun, skippedSteps } = s as Record<string, unknown>;
  return {
    scale: checkNumber(op, 'the loss scale', scale, Number.MIN_VALUE),
    finiteRun: checkCount(op, 'finiteRun', finiteRun),
    skippedSteps: checkCount(op, 'skippedSteps', skippedSteps),
  };
}
