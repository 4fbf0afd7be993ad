import { conv2d } from '../ops/conv2d';
import type { Tensor } from '../tensor';
import { defaultUniform, initWeight, type InitName } from './init';
import { Module, parameter } from './module';

export interface Conv2dLayerOptions {
  stride?: number | [number, number];
  padding?: number | [number, number];
  dilation?: number | [number, number];
  bias?: boolean;
  init?: InitName;
}

/** 2-D convolution over NCHW input, weight [out, in, kH, kW] as in PyTorch. */
export class Conv2d extends Module {
  weight: Tensor;
  bias: Tensor | null;
  readonly stride: number | [number, number];
  readonly padding: number | [number, number];
  readonly dilation: number | [number, number];

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: number | [number, number],
    { stride = 1, padding = 0, dilation = 1, bias = true, init = 'default' }: Conv2dLayerOptions = {},
  ) {
    super();
    const [kH, kW] = typeof kernelSize === 'number' ? [kernelSize, kernelSize] : kernelSize;
    this.weight = parameter(initWeight([outChannels, inChannels, kH, kW], init));
    this.bias = bias ? parameter(defaultUniform([outChannels], inChannels * kH * kW)) : null;
    this.stride = stride;
    this.padding = padding;
    this.dilation = dilation;
  }

  forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, this.bias, { stride: this.stride, padding: this.padding, dilation: this.dilation });
  }
}
