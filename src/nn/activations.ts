// Parameter-free layers: activations, pooling, flatten.

import { gelu, relu, sigmoid, silu, tanh, type GeluOptions } from '../ops/elementwise';
import { avgPool2d, maxPool2d } from '../ops/pool';
import { reshape } from '../ops/shape';
import type { Tensor } from '../tensor';
import { Module } from './module';
import { WebGradError } from '../runtime/errors';

export class ReLU extends Module {
  forward(x: Tensor): Tensor {
    return relu(x);
  }
}

/** GELU: the exact erf form (PyTorch's default), or new GELU({ approximate: 'tanh' }) (GPT-2's gelu_new). */
export class GELU extends Module {
  readonly approximate: 'none' | 'tanh';

  constructor({ approximate = 'none' }: GeluOptions = {}) {
    super();
    if (approximate !== 'none' && approximate !== 'tanh') {
      throw new WebGradError(`GELU: approximate must be 'none' or 'tanh', got ${JSON.stringify(approximate)}`);
    }
    this.approximate = approximate;
  }

  forward(x: Tensor): Tensor {
    return gelu(x, { approximate: this.approximate });
  }
}

/** SiLU (swish): x·sigmoid(x). */
export class SiLU extends Module {
  forward(x: Tensor): Tensor {
    return silu(x);
  }
}

export class Tanh extends Module {
  forward(x: Tensor): Tensor {
    return tanh(x);
  }
}

export class Sigmoid extends Module {
  forward(x: Tensor): Tensor {
    return sigmoid(x);
  }
}

export class MaxPool2d extends Module {
  constructor(readonly kernelSize: number | [number, number], readonly stride?: number | [number, number], readonly padding: number | [number, number] = 0) {
    super();
  }
  forward(x: Tensor): Tensor {
    return maxPool2d(x, this.kernelSize, { stride: this.stride, padding: this.padding });
  }
}

export class AvgPool2d extends Module {
  constructor(readonly kernelSize: number | [number, number], readonly stride?: number | [number, number], readonly padding: number | [number, number] = 0) {
    super();
  }
  forward(x: Tensor): Tensor {
    return avgPool2d(x, this.kernelSize, { stride: this.stride, padding: this.padding });
  }
}

/** Flattens every dimension from `startDim` on (default 1: keep the batch dimension). */
export class Flatten extends Module {
  constructor(readonly startDim = 1) {
    super();
  }
  forward(x: Tensor): Tensor {
    const keep = x.shape.slice(0, this.startDim);
    return reshape(x, [...keep, -1]);
  }
}
