// The Trainer's precision ('f32' or 'f16-mixed') and its check of every step for inf/NaN, in one
// place, so that trainer.ts only calls it.
// 'f16-mixed' keeps f32 master weights, gradients and optimizer state; runs forward and backward
// under autocast (matmul and conv2d with f16 operands and f32 accumulation, src/ops/autocast.ts)
// when the device has shader-f16 — without it, it says so once and computes in f32 — and always
// uses dynamic loss scaling (loss-scaler.ts): the loss is scaled by S before backward (folded into
// each micro-batch's gradient share).
// In every precision, after the micro-batches one pass per gradient counts its inf/NaN elements
// (dividing by S on the way, with loss scaling); the count lands next to the loss sum, so the
// step's single readback brings both, and a step whose loss or gradients are not finite is
// skipped: its gradients dropped, parameters and optimizer state untouched, S backed off. A
// gradient overflow under loss scaling is routine (the scale finds its level that way); any other
// skip means bad data or a diverging run, which the Trainer reports.

import { autocastF16 } from '../ops/autocast';
import { collectGrads, gradStat } from '../optim/grad-stats';
import { runtime } from '../runtime/device';
import { WebGradError } from '../runtime/errors';
import type { Tensor } from '../tensor';
import { LossScaler, type LossScalingOptions } from './loss-scaler';

export type Precision = 'f32' | 'f16-mixed';

/** The verdict on a step's loss and gradients. */
export interface StepCheck {
  /** The loss or a gradient is inf or NaN: no update. */
  skipped: boolean;
  /** Why, in words (null when not skipped). */
  skipReason: string | null;
  /** Only the gradients overflowed, under loss scaling: routine, the scale backed off. */
  overflow: boolean;
}

let warned = false;

export class MixedPrecision {
  /** The loss scaler ('f16-mixed' only). */
  readonly scaler: LossScaler | null;
  /** Whether the loss scaler skips the update of the last computed gradients (they overflowed). */
  skipped = false;
  /** Steps skipped without loss scaling because their loss or gradients were not finite. */
  private nonFiniteSteps = 0;
  private readonly autocast: boolean;

  constructor(
    readonly precision: Precision = 'f32',
    lossScaling: LossScalingOptions = {},
  ) {
    if (precision !== 'f32' && precision !== 'f16-mixed') {
      throw new WebGradError(`Trainer: precision must be 'f32' or 'f16-mixed', got ${JSON.stringify(precision)}`);
    }
    this.scaler = precision === 'f16-mixed' ? new LossScaler(lossScaling) : null;
    this.autocast = precision === 'f16-mixed' && runtime().hasFeature('shader-f16');
    if (precision === 'f16-mixed' && !this.autocast && !warned) {
      warned = true;
      const why = runtime().backend === 'wasm' ? 'the CPU backend keeps float32 (it has no f16 kernels)' : 'it needs the shader-f16 feature, which this adapter does not offer';
      console.warn(`webgrad: precision 'f16-mixed': ${why}; computing in f32 (loss scaling stays on).`);
    }
  }

  /** What each micro-batch's loss is multiplied by before backward (the loss scale, or 1). */
  get lossFactor(): number {
    return this.scaler?.scale ?? 1;
  }

  /** Run a forward and backward pass, under autocast when it computes in f16. */
  run<T>(pass: () => T): T {
    return this.autocast ? autocastF16(pass) : pass();
  }

  /**
   * After the micro-batches: write the number of inf/NaN elements of the gradients of `params`
   * into `nonFinite` (a one-element view, read back with the loss), dividing the gradients by the
   * loss scale on the way when there is one.
   */
  unscale(params: Iterable<Tensor>, nonFinite: Tensor): void {
    gradStat('unscaleCheck', collectGrads('Trainer', params), nonFinite, { factor: this.scaler ? 1 / this.scaler.scale : 1 });
  }

  /**
   * After the readback: whether the step's update must be skipped (its loss or gradients are not
   * finite), why, and whether that is a routine overflow of loss scaling. Updates the scale.
   */
  check(loss: number, nonFinite: number): StepCheck {
    const finiteLoss = Number.isFinite(loss);
    const scale = this.lossFactor;
    this.skipped = this.scaler ? this.scaler.update(finiteLoss && nonFinite === 0) : false;
    if (finiteLoss && nonFinite === 0) return { skipped: false, skipReason: null, overflow: false };
    if (!this.scaler) this.nonFiniteSteps++;
    const what = !finiteLoss
      ? `the loss is ${loss}`
      : `${nonFinite} gradient ${nonFinite === 1 ? 'element is' : 'elements are'} inf or NaN`;
    return {
      skipped: true,
      skipReason: this.scaler ? `${what} at loss scale ${scale} (the scale backs off to ${this.scaler.scale})` : what,
      overflow: this.scaler !== null && finiteLoss,
    };
  }

  /** Updates skipped so far because their loss or gradients were not finite. */
  get skippedSteps(): number {
    return this.scaler?.skippedSteps ?? this.nonFiniteSteps;
  }
}
