/// <reference types="@webgpu/types" />
// webgrad's public API (see ../shared/API.md). Everything not exported here is internal.

import './ops/methods';

export {
  init, shutdown, type InitOptions, type DeviceInfo, type AdapterDescription, type BackendChoice, type BackendName, type WasmOptions, type WasmInfo,
} from './runtime/device';
export { adapters, type AdapterSummary, type AdapterRequest } from './runtime/adapters';
export {
  profile, formatProfile, type Profile, type ProfileOptions, type KernelProfile, type OpProfile, type DispatchProfile, type SubmissionProfile,
} from './profile';
export { formatBytes, type Budget, type EngineLimits } from './runtime/limits';
export { unavailableMessage } from './runtime/gpu-provider';
export {
  WebGradError,
  ShapeError,
  DTypeError,
  DisposedError,
  LimitError,
  OutOfMemoryError,
  GPUValidationError,
  DeviceLostError,
  NonFiniteError,
  WebGPUUnavailableError,
  NotInitializedError,
} from './runtime/errors';
export { memory, resetPeakMemory, sync, type MemoryStats } from './memory';

export { Tensor, type DType } from './tensor';
export { tidy, keep } from './scope';
export { tensor, zeros, ones, full, randn, rand, arange, type TensorData, type TensorOptions, type RandomOptions } from './creation';
export { manualSeed } from './random';
export { noGrad, isGradEnabled } from './autograd/grad-mode';

export {
  add, sub, mul, div, neg, exp, log, sqrt, relu, gelu, silu, tanh, sigmoid, abs, powScalar as pow, maximum, clamp, dropout, isnan,
  type GeluOptions,
} from './ops/elementwise';
export { eq, ne, lt, le, gt, ge, where, maskedFill, tril, triu } from './ops/mask';
export { reshape, transpose, expand, narrow, unsqueeze } from './ops/shape';
export { cat, stack, split, chunk } from './ops/join';
export { embedding, indexSelect, gather } from './ops/indexing';
export { contiguous } from './ops/copy';
export { matmul } from './ops/matmul';
export { sum, mean, max, argmax } from './ops/reduce';
export { softmax, logSoftmax } from './ops/softmax';
export { scaledDotProductAttention, type AttentionOptions } from './ops/attention';
export { layerNorm, rmsNorm } from './ops/norm';
export { crossEntropy, mse, type CrossEntropyOptions } from './ops/loss';
export { conv2d, type Conv2dOptions } from './ops/conv2d';
export { maxPool2d, avgPool2d, type Pool2dOptions } from './ops/pool';

export * as nn from './nn';
export * as data from './data';
export * as io from './io';
export * as optim from './optim';
export * as distributed from './distributed';
export { Trainer, type TrainerOptions, type StepResult, type StepInfo, type EpochInfo, type EvalResult, type FitOptions, type LossFn } from './train/trainer';
export type { Plan } from './train/memory-plan';
export type { AutoCheckpointOptions, ResumePoint } from './train/recovery';
export * as models from './models';
export { autotune } from './autotune';
export { precompile, type PrecompileOptions, type PrecompileProgress } from './precompile';
export type { TuneResult, TuneOptions, TuningProgress } from './kernels/tuning/autotune';
