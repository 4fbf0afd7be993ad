import { matmul } from '../ops/matmul';
import { add } from '../ops/elementwise';
import { mT } from '../ops/shape';
import { ShapeError } from '../runtime/errors';
import { formatShape, type Tensor } from '../tensor';
import { defaultUniform, initWeight, type InitName } from './init';
import type { LoRA } from './lora';
import { Module, parameter } from './module';

export interface LinearOptions {
  bias?: boolean;
  init?: InitName;
}

/**
 * y = x · Wᵀ + b, with W of shape [out, in] as in PyTorch. Wᵀ is read in place (no copy). With a
 * LoRA adapter (wg.nn.lora), its low-rank term is added: y + lora(x).
 */
export class Linear extends Module {
  weight: Tensor;
  bias: Tensor | null;
  /** The low-rank adapter wg.nn.lora gave this layer (its submodule "lora"), or null. */
  lora: LoRA | null = null;

  constructor(readonly inFeatures: number, readonly outFeatures: number, { bias = true, init = 'default' }: LinearOptions = {}) {
    super();
    this.weight = parameter(initWeight([outFeatures, inFeatures], init));
    this.bias = bias ? parameter(defaultUniform([outFeatures], inFeatures)) : null;
  }

  /** half() may store the weight in float16 (matmul reads it so); the bias stays float32. */
  protected override halfWeightNames(): readonly string[] {
    return ['weight'];
  }

  forward(x: Tensor): Tensor {
    if (x.shape[x.ndim - 1] !== this.inFeatures) {
      throw new ShapeError(`Linear(${this.inFeatures}, ${this.outFeatures}): input ${formatShape(x.shape)} has ${x.shape[x.ndim - 1]} features, expected ${this.inFeatures}`);
    }
    const y = matmul(x, mT(this.weight));
    const out = this.bias ? add(y, this.bias) : y;
    return this.lora ? add(out, this.lora.forward(x)) : out;
  }
}
