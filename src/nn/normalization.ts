// LayerNorm and RMSNorm (the fused ops of src/ops/norm.ts), and BatchNorm2d, composed from
// differentiable ops (its gradients follow from the ops' own backward rules). Weights start at 1,
// biases at 0, as in PyTorch.

import { noGrad } from '../autograd/grad-mode';
import { isRecomputing } from '../autograd/segment';
import { ones, zeros } from '../creation';
import { add, affine, div, mul, sqrt, sub } from '../ops/elementwise';
import { layerNorm, rmsNorm } from '../ops/norm';
import { mean } from '../ops/reduce';
import { reshape } from '../ops/shape';
import { ShapeError } from '../runtime/errors';
import { keep, tidy } from '../scope';
import { formatShape, type Tensor } from '../tensor';
import { Module, buffer, parameter } from './module';

/** Normalise over the last dimensions (`normalizedShape`), then scale and shift per element. */
export class LayerNorm extends Module {
  readonly normalizedShape: number[];
  weight: Tensor | null;
  bias: Tensor | null;

  constructor(normalizedShape: number | number[], readonly opts: { eps?: number; elementwiseAffine?: boolean } = {}) {
    super();
    this.normalizedShape = typeof normalizedShape === 'number' ? [normalizedShape] : [...normalizedShape];
    const affineOn = opts.elementwiseAffine ?? true;
    this.weight = affineOn ? parameter(ones(this.normalizedShape)) : null;
    this.bias = affineOn ? parameter(zeros(this.normalizedShape)) : null;
  }

  forward(x: Tensor): Tensor {
    return layerNorm(x, this.normalizedShape, this.weight, this.bias, this.opts.eps ?? 1e-5);
  }
}

/** x / √(mean(x²) + eps) over the last dimensions (`normalizedShape`), then scaled per element. */
export class RMSNorm extends Module {
  readonly normalizedShape: number[];
  weight: Tensor | null;

  /** eps: float32's machine epsilon when absent (PyTorch's default). */
  constructor(normalizedShape: number | number[], readonly opts: { eps?: number; elementwiseAffine?: boolean } = {}) {
    super();
    this.normalizedShape = typeof normalizedShape === 'number' ? [normalizedShape] : [...normalizedShape];
    this.weight = (opts.elementwiseAffine ?? true) ? parameter(ones(this.normalizedShape)) : null;
  }

  forward(x: Tensor): Tensor {
    return rmsNorm(x, this.normalizedShape, this.weight, this.opts.eps);
  }
}

/**
 * Batch normalisation over N, H, W per channel of NCHW input. Training uses the batch's
 * statistics and updates running estimates (momentum 0.1, unbiased variance, like PyTorch);
 * eval uses the running estimates. Under micro-batching each micro-batch is normalised with
 * its own statistics (see the README).
 */
export class BatchNorm2d extends Module {
  weight: Tensor | null;
  bias: Tensor | null;
  runningMean: Tensor;
  runningVar: Tensor;
  readonly eps: number;
  readonly momentum: number;

  constructor(readonly numFeatures: number, opts: { eps?: number; momentum?: number; affine?: boolean } = {}) {
    super();
    this.eps = opts.eps ?? 1e-5;
    this.momentum = opts.momentum ?? 0.1;
    const affineOn = opts.affine ?? true;
    this.weight = affineOn ? parameter(ones([numFeatures])) : null;
    this.bias = affineOn ? parameter(zeros([numFeatures])) : null;
    this.runningMean = buffer(zeros([numFeatures]));
    this.runningVar = buffer(ones([numFeatures]));
  }

  forward(x: Tensor): Tensor {
    if (x.ndim !== 4 || x.shape[1] !== this.numFeatures) {
      throw new ShapeError(`BatchNorm2d(${this.numFeatures}): expected input [N, ${this.numFeatures}, H, W], got ${formatShape(x.shape)}`);
    }
    const c = this.numFeatures;
    let mu: Tensor;
    let variance: Tensor;
    if (this.training) {
      const n = x.shape[0]! * x.shape[2]! * x.shape[3]!;
      if (n < 2) throw new ShapeError(`BatchNorm2d: training needs more than one value per channel, got input ${formatShape(x.shape)}`);
      mu = mean(x, [0, 2, 3], true);
      const centered = sub(x, mu);
      variance = mean(mul(centered, centered), [0, 2, 3], true);
      // A checkpointed segment's re-run (nn/checkpoint.ts) must not count the batch twice.
      if (!isRecomputing()) this.updateRunningStats(mu, variance, n);
    } else {
      mu = reshape(this.runningMean, [1, c, 1, 1]);
      variance = reshape(this.runningVar, [1, c, 1, 1]);
    }
    let y = div(sub(x, mu), sqrt(affine(variance, 1, this.eps)));
    if (this.weight) y = mul(y, reshape(this.weight, [1, c, 1, 1]));
    if (this.bias) y = add(y, reshape(this.bias, [1, c, 1, 1]));
    return y;
  }

  private updateRunningStats(mu: Tensor, variance: Tensor, n: number): void {
    const m = this.momentum;
    const [newMean, newVar] = noGrad(() =>
      tidy(() => [
        add(affine(this.runningMean, 1 - m, 0), affine(reshape(mu, [this.numFeatures]), m, 0)),
        add(affine(this.runningVar, 1 - m, 0), affine(reshape(variance, [this.numFeatures]), (m * n) / (n - 1), 0)),
      ]),
    );
    this.runningMean.dispose();
    this.runningVar.dispose();
    this.runningMean = keep(newMean!);
    this.runningVar = keep(newVar!);
  }
}
