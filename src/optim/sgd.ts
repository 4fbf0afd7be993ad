// Stochastic gradient descent with optional momentum, Nesterov momentum, dampening and L2 weight
// decay, as torch.optim.SGD: one fused kernel per parameter (shaders/optim.wgsl).

import optimWGSL from '../../shaders/optim.wgsl?raw';
import { defineKernel } from '../kernels/kernel';
import { WG } from '../kernels/layout';
import { launch } from '../kernels/launch';
import { inFlatChunks } from '../kernels/segments';
import { sizeOf } from '../kernels/view';
import { WebGradError } from '../runtime/errors';
import { keep } from '../scope';
import { empty, type Tensor } from '../tensor';
import { checkBoolean, checkNumber, Optimizer, type ParamState, type ParamsOrGroups } from './optimizer';

const sgdKernel = defineKernel('SGD.step', { code: optimWGSL, entry: 'sgd', bindings: { param: 'write', grad: 'read' }, wasm: 'sgd' });
const momentumKernel = defineKernel('SGD.step', { code: optimWGSL, entry: 'sgd_momentum', bindings: { param: 'write', grad: 'read', buf: 'write' }, wasm: 'sgd_momentum' });

export interface SGDOptions {
  lr: number;
  /** Momentum factor (default 0: plain SGD). */
  momentum?: number;
  /** Dampening of the gradient's contribution to the momentum (default 0). */
  dampening?: number;
  /** L2 penalty added to the gradient (default 0). */
  weightDecay?: number;
  /** Nesterov momentum (needs momentum > 0 and dampening 0). */
  nesterov?: boolean;
}

type SGDHyperParams = { lr: number; momentum: number; dampening: number; weightDecay: number; nesterov: boolean };

export class SGD extends Optimizer<SGDHyperParams> {
  protected readonly hyperParamNames = ['lr', 'momentum', 'dampening', 'weightDecay', 'nesterov'];
  protected readonly stateNames = ['momentumBuffer'];

  constructor(params: ParamsOrGroups<SGDOptions>, opts: SGDOptions) {
    super('SGD', params);
    this.initGroups(
      this.checkHyperParams('SGD', {
        lr: opts?.lr,
        momentum: opts?.momentum ?? 0,
        dampening: opts?.dampening ?? 0,
        weightDecay: opts?.weightDecay ?? 0,
        nesterov: opts?.nesterov ?? false,
      }),
    );
  }

  /** The first group's values (the optimizer's, with one group); setting one sets every group's. */
  get momentum(): number {
    return this.groupValue('momentum') as number;
  }
  set momentum(v: number) {
    this.setEveryGroup('momentum', v);
  }
  get dampening(): number {
    return this.groupValue('dampening') as number;
  }
  set dampening(v: number) {
    this.setEveryGroup('dampening', v);
  }
  get weightDecay(): number {
    return this.groupValue('weightDecay') as number;
  }
  set weightDecay(v: number) {
    this.setEveryGroup('weightDecay', v);
  }
  get nesterov(): boolean {
    return this.groupValue('nesterov') as boolean;
  }
  set nesterov(v: boolean) {
    this.setEveryGroup('nesterov', v);
  }

  protected checkHyperParams(op: string, hp: Record<string, unknown>): SGDHyperParams {
    const checked = {
      lr: checkNumber(op, 'lr', hp.lr, 0),
      momentum: checkNumber(op, 'momentum', hp.momentum, 0),
      dampening: checkNumber(op, 'dampening', hp.dampening, 0),
      weightDecay: checkNumber(op, 'weightDecay', hp.weightDecay, 0),
      nesterov: checkBoolean(op, 'nesterov', hp.nesterov),
    };
    if (checked.nesterov && (checked.momentum <= 0 || checked.dampening !== 0)) {
      throw new WebGradError(`${op}: Nesterov momentum needs momentum > 0 and dampening 0`);
    }
    return checked;
  }

  protected createState(param: Tensor, hp: SGDHyperParams): Record<string, Tensor> {
    // The momentum buffer starts as the first step's update, so it needs no initial fill.
    return hp.momentum !== 0 ? { momentumBuffer: keep(empty(param.shape, 'float32', 'SGD momentum')) } : {};
  }

  protected update(param: Tensor, grad: Tensor, state: ParamState, hp: SGDHyperParams): void {
    const withMomentum = hp.momentum !== 0;
    const first = withMomentum && state.step === 1;
    const tensors = withMomentum ? [param, grad, state.buffers.momentumBuffer!] : [param, grad];
    // A parameter larger than one storage binding is updated chunk by chunk.
    inFlatChunks(tensors, ([p, g, buf]) => {
      const n = sizeOf(p!.shape);
      launch(withMomentum ? momentumKernel : sgdKernel, {
        bind: withMomentum ? { param: p!, grad: g!, buf: buf! } : { param: p!, grad: g! },
        params: { n, first, lr: hp.lr, weight_decay: hp.weightDecay, momentum: hp.momentum, dampening: hp.dampening },
        constants: withMomentum ? { WG, NESTEROV: hp.nesterov } : { WG },
        workgroups: Math.ceil(n / WG),
      });
    });
  }
}
