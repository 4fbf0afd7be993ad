// The Trainer's precision ('f32' or 'f16-mixed') in one place, so that trainer.ts only calls it.
// 'f16-mixed' keeps f32 master weights, gradients and optimizer state; runs forward and backward
// under autocast (matmul and conv2d with f16 operands and f32 accumulation, src/ops/autocast.ts)
// when the device has shader-f16 — without it, it says so once and computes in f32 — and always
// uses dynamic loss scaling (loss-scaler.ts): the loss is scaled by S before backward (folded into
// each micro-batch's gradient share), and after the micro-batches one pass per gradient divides
// by S and counts inf/NaN elements; the count lands next to the loss sum, so the step's single
// readback brings both, and a step with any is skipped (its gradients dropped, S backed off).

import { autocastF16 } from '../ops/autocast';
import { collectGrads, gradStat } from '../optim/grad-stats';
import { runtime } from '../runtime/device';
import { WebGradError } from '../runtime/errors';
import type { Tensor } from '../tensor';
import { LossScaler, type LossScalingOptions } from './loss-scaler';

export type Precision = 'f32' | 'f16-mixed';

let warned = false;

export class MixedPrecision {
  /** The loss scaler ('f16-mixed' only). */
  readonly scaler: LossScaler | null;
  /** Whether the last computed gradients were not finite: the update is skipped. */
  skipped = false;
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
      console.warn(
        "webgrad: precision 'f16-mixed' needs the shader-f16 feature, which this adapter does not offer; " +
          'computing in f32 (loss scaling stays on).',
      );
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
   * After the micro-batches: divide the gradients of `params` by the loss scale and write the
   * number of inf/NaN elements into `nonFinite` (a one-element view, read back with the loss).
   * Nothing to do without loss scaling.
   */
  unscale(params: Iterable<Tensor>, nonFinite: Tensor): void {
    if (!this.scaler) return;
    gradStat('unscaleCheck', collectGrads('Trainer (loss scaling)', params), nonFinite, { factor: 1 / this.scaler.scale });
  }

  /** After the readback: record whether the gradients were finite (updates the scale). */
  check(nonFinite: number): void {
    this.skipped = this.scaler ? this.scaler.update(nonFinite === 0) : false;
  }

  /** For StepResult: whether this step's update is skipped, and how many were so far. */
  result(): { skipped: boolean; skippedSteps: number } {
    return { skipped: this.skipped, skippedSteps: this.scaler?.skippedSteps ?? 0 };
  }
}
