// Tensor methods: a.add(b), a.matmul(b), … — each one calls the op function of the same name.
// Kept here, apart from the Tensor class, so that tensor.ts does not depend on every op.

import { backward } from '../autograd/backward';
import { Tensor } from '../tensor';
import * as ew from './elementwise';
import * as mask from './mask';
import * as join from './join';
import * as idx from './indexing';
import * as shape from './shape';
import { contiguous } from './copy';
import * as red from './reduce';
import * as sm from './softmax';
import * as loss from './loss';
import * as norm from './norm';
import { matmul } from './matmul';
import { conv2d, type Conv2dOptions } from './conv2d';
import { avgPool2d, maxPool2d, type Pool2dOptions } from './pool';

declare module '../tensor' {
  interface Tensor {
    add(b: ew.TensorOrNumber): Tensor;
    sub(b: ew.TensorOrNumber): Tensor;
    mul(b: ew.TensorOrNumber): Tensor;
    div(b: ew.TensorOrNumber): Tensor;
    neg(): Tensor;
    exp(): Tensor;
    log(): Tensor;
    sqrt(): Tensor;
    relu(): Tensor;
    gelu(opts?: ew.GeluOptions): Tensor;
    tanh(): Tensor;
    sigmoid(): Tensor;
    abs(): Tensor;
    pow(p: number): Tensor;
    silu(): Tensor;
    eq(b: ew.TensorOrNumber): Tensor;
    ne(b: ew.TensorOrNumber): Tensor;
    lt(b: ew.TensorOrNumber): Tensor;
    le(b: ew.TensorOrNumber): Tensor;
    gt(b: ew.TensorOrNumber): Tensor;
    ge(b: ew.TensorOrNumber): Tensor;
    /** where(cond, this, other), as PyTorch's x.where(cond, y). */
    where(cond: Tensor, other: ew.TensorOrNumber): Tensor;
    maskedFill(mask: Tensor, value: number): Tensor;
    tril(k?: number): Tensor;
    triu(k?: number): Tensor;
    narrow(axis: number, start: number, length: number): Tensor;
    split(sizeOrSizes: number | readonly number[], axis?: number): Tensor[];
    chunk(n: number, axis?: number): Tensor[];
    indexSelect(axis: number, ids: Tensor): Tensor;
    gather(axis: number, index: Tensor): Tensor;
    matmul(b: Tensor): Tensor;
    sum(axis?: red.Axis, keepdim?: boolean): Tensor;
    mean(axis?: red.Axis, keepdim?: boolean): Tensor;
    max(axis?: red.Axis, keepdim?: boolean): Tensor;
    argmax(axis?: number, keepdim?: boolean): Tensor;
    softmax(axis?: number): Tensor;
    logSoftmax(axis?: number): Tensor;
    conv2d(w: Tensor, b?: Tensor | null, opts?: Conv2dOptions): Tensor;
    maxPool2d(k: number | [number, number], opts?: Pool2dOptions): Tensor;
    avgPool2d(k: number | [number, number], opts?: Pool2dOptions): Tensor;
    crossEntropy(labels: Tensor | Int32Array, opts?: loss.CrossEntropyOptions): Tensor;
    mse(b: Tensor): Tensor;
    layerNorm(normalizedShape: number | readonly number[], weight?: Tensor | null, bias?: Tensor | null, eps?: number): Tensor;
    rmsNorm(normalizedShape: number | readonly number[], weight?: Tensor | null, eps?: number): Tensor;
    reshape(shape: readonly number[]): Tensor;
    transpose(dims?: readonly number[]): Tensor;
    expand(shape: readonly number[]): Tensor;
    contiguous(): Tensor;
    /** Backpropagate from this one-element tensor into .grad of every leaf that requires grad. */
    backward(gradOutput?: Tensor): void;
  }
}

const methods: Record<string, (this: Tensor, ...args: never[]) => unknown> = {
  add(this: Tensor, b: ew.TensorOrNumber) { return ew.add(this, b); },
  sub(this: Tensor, b: ew.TensorOrNumber) { return ew.sub(this, b); },
  mul(this: Tensor, b: ew.TensorOrNumber) { return ew.mul(this, b); },
  div(this: Tensor, b: ew.TensorOrNumber) { return ew.div(this, b); },
  neg(this: Tensor) { return ew.neg(this); },
  exp(this: Tensor) { return ew.exp(this); },
  log(this: Tensor) { return ew.log(this); },
  sqrt(this: Tensor) { return ew.sqrt(this); },
  relu(this: Tensor) { return ew.relu(this); },
  gelu(this: Tensor, opts?: ew.GeluOptions) { return ew.gelu(this, opts); },
  tanh(this: Tensor) { return ew.tanh(this); },
  sigmoid(this: Tensor) { return ew.sigmoid(this); },
  abs(this: Tensor) { return ew.abs(this); },
  pow(this: Tensor, p: number) { return ew.powScalar(this, p); },
  silu(this: Tensor) { return ew.silu(this); },
  eq(this: Tensor, b: ew.TensorOrNumber) { return mask.eq(this, b); },
  ne(this: Tensor, b: ew.TensorOrNumber) { return mask.ne(this, b); },
  lt(this: Tensor, b: ew.TensorOrNumber) { return mask.lt(this, b); },
  le(this: Tensor, b: ew.TensorOrNumber) { return mask.le(this, b); },
  gt(this: Tensor, b: ew.TensorOrNumber) { return mask.gt(this, b); },
  ge(this: Tensor, b: ew.TensorOrNumber) { return mask.ge(this, b); },
  where(this: Tensor, cond: Tensor, other: ew.TensorOrNumber) { return mask.where(cond, this, other); },
  maskedFill(this: Tensor, m: Tensor, value: number) { return mask.maskedFill(this, m, value); },
  tril(this: Tensor, k?: number) { return mask.tril(this, k); },
  triu(this: Tensor, k?: number) { return mask.triu(this, k); },
  narrow(this: Tensor, axis: number, start: number, length: number) { return shape.narrow(this, axis, start, length); },
  split(this: Tensor, s: number | readonly number[], axis?: number) { return join.split(this, s, axis); },
  chunk(this: Tensor, n: number, axis?: number) { return join.chunk(this, n, axis); },
  indexSelect(this: Tensor, axis: number, ids: Tensor) { return idx.indexSelect(this, axis, ids); },
  gather(this: Tensor, axis: number, index: Tensor) { return idx.gather(this, axis, index); },
  matmul(this: Tensor, b: Tensor) { return matmul(this, b); },
  sum(this: Tensor, axis?: red.Axis, keepdim?: boolean) { return red.sum(this, axis, keepdim); },
  mean(this: Tensor, axis?: red.Axis, keepdim?: boolean) { return red.mean(this, axis, keepdim); },
  max(this: Tensor, axis?: red.Axis, keepdim?: boolean) { return red.max(this, axis, keepdim); },
  argmax(this: Tensor, axis?: number, keepdim?: boolean) { return red.argmax(this, axis, keepdim); },
  softmax(this: Tensor, axis?: number) { return sm.softmax(this, axis); },
  logSoftmax(this: Tensor, axis?: number) { return sm.logSoftmax(this, axis); },
  conv2d(this: Tensor, w: Tensor, b?: Tensor | null, o?: Conv2dOptions) { return conv2d(this, w, b, o); },
  maxPool2d(this: Tensor, k: number | [number, number], o?: Pool2dOptions) { return maxPool2d(this, k, o); },
  avgPool2d(this: Tensor, k: number | [number, number], o?: Pool2dOptions) { return avgPool2d(this, k, o); },
  crossEntropy(this: Tensor, labels: Tensor | Int32Array, o?: loss.CrossEntropyOptions) { return loss.crossEntropy(this, labels, o); },
  mse(this: Tensor, b: Tensor) { return loss.mse(this, b); },
  layerNorm(this: Tensor, s: number | readonly number[], w?: Tensor | null, b?: Tensor | null, eps?: number) { return norm.layerNorm(this, s, w, b, eps); },
  rmsNorm(this: Tensor, s: number | readonly number[], w?: Tensor | null, eps?: number) { return norm.rmsNorm(this, s, w, eps); },
  reshape(this: Tensor, s: readonly number[]) { return shape.reshape(this, s); },
  transpose(this: Tensor, dims?: readonly number[]) { return shape.transpose(this, dims); },
  expand(this: Tensor, s: readonly number[]) { return shape.expand(this, s); },
  contiguous(this: Tensor) { return contiguous(this); },
  backward(this: Tensor, g?: Tensor) { backward(this, g); },
};

for (const [name, fn] of Object.entries(methods)) {
  Object.defineProperty(Tensor.prototype, name, { value: fn, writable: true, configurable: true });
}
