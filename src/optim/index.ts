// The wg.optim namespace: optimizers, gradient clipping and learning-rate schedules.

export {
  Optimizer,
  type HyperParams,
  type ParamState,
  type OptimizerStateDict,
  type ParamGroup,
  type ParamGroupSpec,
  type ParamsOrGroups,
} from './optimizer';
export { SGD, type SGDOptions } from './sgd';
export { Adam, AdamW, type AdamOptions } from './adam';
export { clipGradNorm } from './clip-grad-norm';
export {
  LRScheduler,
  LambdaLR,
  StepLR,
  CosineAnnealingLR,
  LinearWarmup,
  type LRSchedulerState,
  type StepLROptions,
  type CosineAnnealingLROptions,
  type LinearWarmupOptions,
} from './lr-schedule';
export { decayGroups, type DecayGroup } from './decay-groups';
