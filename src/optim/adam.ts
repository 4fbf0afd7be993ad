// Adam and AdamW, as torch.optim.Adam / AdamW (without amsgrad): one fused kernel per parameter
// updates the parameter and both moment estimates in place (shaders/optim.wgsl). Adam adds the
// weight decay to the gradient (L2); AdamW decays the parameter directly (decoupled).

import optimWGSL from '../../shaders/optim.wgsl?raw';
import { zeros } from '../creation';
import { defineKernel } from '../kernels/kernel';
import { WG } from '../kernels/layout';
import { launch } from '../kernels/launch';
import { inFlatChunks } from '../kernels/segments';
import { sizeOf } from '../kernels/view';
import { keep } from '../scope';
import type { Tensor } from '../tensor';
import { checkNumber, formatValue, Optimizer, type ParamState, type ParamsOrGroups } from './optimizer';
import { WebGradError } from '../runtime/errors';

const adamKernel = defineKernel('Adam.step', { code: optimWGSL, entry: 'adam', bindings: { param: 'write', grad: 'read', m: 'write', v: 'write' }, wasm: 'adam' });

export interface AdamOptions {
  lr: number;
  /** Decay rates of the first and second moment estimates (default [0.9, 0.999]). */
  betas?: readonly [number, number];
  /** Added to the denominator for stability (default 1e-8). */
  eps?: number;
  /** Adam: L2 penalty added to the gradient (default 0). AdamW: decoupled decay (default 0.01). */
  weightDecay?: number;
}

type AdamHyperParams = { lr: number; betas: [number, number]; eps: number; weightDecay: number };

/** What Adam and AdamW share; they differ in the weight decay only. */
abstract class AdamBase extends Optimizer<AdamHyperParams> {
  protected readonly hyperParamNames = ['lr', 'betas', 'eps', 'weightDecay'];
  protected readonly stateNames = ['expAvg', 'expAvgSq'];

  constructor(
    name: string,
    params: ParamsOrGroups<AdamOptions>,
    opts: AdamOptions,
    /** AdamW's decoupled weight decay instead of L2. */
    private readonly decoupled: boolean,
  ) {
    super(name, params);
    this.initGroups(
      this.checkHyperParams(name, {
        lr: opts?.lr,
        betas: opts?.betas ?? [0.9, 0.999],
        eps: opts?.eps ?? 1e-8,
        weightDecay: opts?.weightDecay ?? (decoupled ? 0.01 : 0),
      }),
    );
  }

  /** The first group's values (the optimizer's, with one group); setting one sets every group's. */
  get betas(): [number, number] {
    return this.groupValue('betas') as [number, number];
  }
  set betas(v: [number, number]) {
    this.setEveryGroup('betas', v);
  }
  get eps(): number {
    return this.groupValue('eps') as number;
  }
  set eps(v: number) {
    this.setEveryGroup('eps', v);
  }
  get weightDecay(): number {
    return this.groupValue('weightDecay') as number;
  }
  set weightDecay(v: number) {
    this.setEveryGroup('weightDecay', v);
  }

  protected checkHyperParams(op: string, hp: Record<string, unknown>): AdamHyperParams {
    const betas = hp.betas;
    if (!Array.isArray(betas) || betas.length !== 2) {
      throw new WebGradError(`${op}: betas must be a pair [beta1, beta2] of numbers in [0, 1), got ${formatValue(betas)}`);
    }
    return {
      lr: checkNumber(op, 'lr', hp.lr, 0),
      betas: [checkNumber(op, 'betas[0]', betas[0], 0, 1), checkNumber(op, 'betas[1]', betas[1], 0, 1)],
      eps: checkNumber(op, 'eps', hp.eps, 0),
      weightDecay: checkNumber(op, 'weightDecay', hp.weightDecay, 0),
    };
  }

  protected createState(param: Tensor): Record<string, Tensor> {
    return { expAvg: keep(zeros(param.shape)), expAvgSq: keep(zeros(param.shape)) };
  }

  protected update(param: Tensor, grad: Tensor, state: ParamState, hp: AdamHyperParams): void {
    const m = state.buffers.expAvg!;
    const v = state.buffers.expAvgSq!;
    const [b1, b2] = hp.betas;
    // Bias corrections in float64 on the CPU, for this parameter's own step count.
    const stepSize = hp.lr / (1 - b1 ** state.step);
    const bc2Sqrt = Math.sqrt(1 - b2 ** state.step);
    const op = `${this.name}.step`;
    // A parameter larger than one storage binding is updated chunk by chunk.
    inFlatChunks([param, grad, m, v], ([pv, gv, mv, vv]) => {
      const n = sizeOf(pv!.shape);
      launch(
        adamKernel,
        {
          bind: { param: pv!, grad: gv!, m: mv!, v: vv! },
          params: { n, lr: hp.lr, beta1: b1, beta2: b2, eps: hp.eps, weight_decay: hp.weightDecay, step_size: stepSize, bc2_sqrt: bc2Sqrt },
          constants: { WG, DECOUPLED: this.decoupled },
          workgroups: Math.ceil(n / WG),
        },
        op,
      );
    });
  }
}

/** Adam; weightDecay (default 0) is an L2 penalty added to the gradient, like torch.optim.Adam. */
export class Adam extends AdamBase {
  constructor(params: ParamsOrGroups<AdamOptions>, opts: AdamOptions) {
    super('Adam', params, opts, false);
  }
}

/** Adam with decoupled weight decay (Loshchilov & Hutter); weightDecay defaults to 0.01 like PyTorch. */
export class AdamW extends AdamBase {
  constructor(params: ParamsOrGroups<AdamOptions>, opts: AdamOptions) {
    super('AdamW', params, opts, true);
  }
}
