// LoRA (Hu et al. 2021), as Hugging Face PEFT does it: a Linear layer y = x·Wᵀ + b keeps its
// weight W frozen and learns a low-rank change instead, y = x·Wᵀ + b + (α/r)·(drop(x)·Aᵀ)·Bᵀ with
// A [r, in] and B [out, r]. A starts Kaiming-uniform (PEFT's kaiming_uniform_(a=√5): U(±1/√in)), B
// at zero, so the wrapped model computes what it did before training. Only A and B train: r·(in +
// out) numbers per layer instead of in·out, and the optimizer keeps state for those alone.
//
// wg.nn.lora(model, { rank, alpha, dropout?, targets? }) freezes every parameter of the model and
// gives each chosen Linear an adapter (linear.lora, a submodule: its tensors are named
// "<layer>.lora.A" and "<layer>.lora.B" in the state dict, next to the layer's own). merge()
// folds the adapters into the weights, W ← W + (α/r)·B·A, and removes them.
// Checkpoints can hold the adapters alone: saveCheckpoint({ model, trainableOnly: true }).

import { noGrad } from '../autograd/grad-mode';
import { zeros } from '../creation';
import { add, scale } from '../ops/elementwise';
import { toFloat, toHalf } from '../ops/half';
import { matmul } from '../ops/matmul';
import { copyInto } from '../ops/copy';
import { mT } from '../ops/shape';
import { ShapeError, WebGradError } from '../runtime/errors';
import { tidy } from '../scope';
import type { Tensor } from '../tensor';
import { MultiheadAttention } from './attention';
import { Dropout } from './dropout';
import { defaultUniform } from './init';
import { Linear } from './linear';
import { Module, parameter } from './module';

export interface LoRAOptions {
  /** r: the adapters' inner dimension (a positive integer, at most the layer's smaller side). */
  rank: number;
  /** α: the adapters' output is scaled by α / r (PEFT's lora_alpha). */
  alpha: number;
  /** Dropout on the adapters' input while training (PEFT's lora_dropout). Default 0. */
  dropout?: number;
  /**
   * Which Linear layers get adapters: names (a layer matches one that is its dotted name or ends
   * it after a dot, as PEFT's target_modules: ['inProj', 'outProj', 'fc', 'proj']), or a function
   * of the name and the layer. Default: the attention projections (the Linear layers of every
   * MultiheadAttention: inProj, outProj).
   */
  targets?: readonly string[] | ((name: string, layer: Linear) => boolean);
}

/** The low-rank adapter of one Linear layer: forward(x) = (α/r)·(drop(x)·Aᵀ)·Bᵀ. */
export class LoRA extends Module {
  A: Tensor;
  B: Tensor;
  drop: Dropout;
  /** α / r. */
  readonly scaling: number;

  constructor(readonly inFeatures: number, readonly outFeatures: number, readonly rank: number, readonly alpha: number, dropout = 0) {
    super();
    this.A = parameter(defaultUniform([rank, inFeatures], inFeatures));
    this.B = parameter(zeros([outFeatures, rank]));
    this.drop = new Dropout(dropout);
    this.scaling = alpha / rank;
  }

  forward(x: Tensor): Tensor {
    // The scaling goes on the [N, r] product: the smallest tensor on the way.
    return matmul(scale(matmul(this.drop.forward(x), mT(this.A)), this.scaling), mT(this.B));
  }

  /** (α/r)·B·A [out, in]: what merging adds to the layer's weight. */
  delta(): Tensor {
    return scale(matmul(this.B, this.A), this.scaling);
  }
}

/** What wg.nn.lora returns: the wrapped layers by name, their adapters' parameters, and merge(). */
export interface LoRAModel {
  /** The dotted names of the Linear layers that got adapters, in model order. */
  readonly layers: readonly string[];
  /** The adapters' parameters (every A and B): the only trainable parameters of the model. */
  parameters(): Tensor[];
  /** Trainable numbers (the adapters') and all numbers of the model. */
  readonly trainableCount: number;
  readonly totalCount: number;
  /**
   * Fold each adapter into its layer's weight, W ← W + (α/r)·B·A (in float32; a weight stored in
   * float16 is rounded back to it), and remove the adapters. The base parameters stay frozen.
   */
  merge(): void;
}

/** Give the chosen Linear layers of `model` trainable low-rank adapters and freeze everything else (see the top of this file). */
export function lora(model: Module, opts: LoRAOptions): LoRAModel {
  const op = 'wg.nn.lora';
  if (!(model instanceof Module)) throw new WebGradError(`${op}: the first argument must be a model (a wg.nn.Module)`);
  if (typeof opts !== 'object' || opts === null) throw new WebGradError(`${op}: options { rank, alpha, dropout?, targets? } are required`);
  const { rank, alpha, dropout = 0, targets } = opts;
  if (!Number.isSafeInteger(rank) || rank < 1) throw new WebGradError(`${op}: rank must be a positive integer, got ${String(rank)}`);
  if (typeof alpha !== 'number' || !(alpha > 0) || !Number.isFinite(alpha)) throw new WebGradError(`${op}: alpha must be a positive number, got ${String(alpha)}`);
  if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1)) throw new WebGradError(`${op}: dropout must be in [0, 1), got ${String(dropout)}`);
  if (targets !== undefined && typeof targets !== 'function' && !(Array.isArray(targets) && targets.every((t) => typeof t === 'string'))) {
    throw new WebGradError(`${op}: targets must be a list of layer names or a function (name, layer) → boolean`);
  }

  const linears = namedLinears(model);
  const chosen = linears.filter(([name, layer, parent]) =>
    targets === undefined
      ? parent instanceof MultiheadAttention
      : typeof targets === 'function'
        ? targets(name, layer)
        : targets.some((t) => name === t || name.endsWith(`.${t}`)),
  );
  if (chosen.length === 0) {
    const names = linears.map(([n]) => n);
    throw new WebGradError(
      `${op}: no Linear layer matches ${targets === undefined ? 'the default targets (the attention projections)' : `targets ${formatTargets(targets)}`}; ` +
        `the model's Linear layers are ${names.length ? names.slice(0, 12).join(', ') + (names.length > 12 ? ', …' : '') : 'none'}`,
    );
  }
  for (const [name, layer] of chosen) {
    if (layer.lora) throw new WebGradError(`${op}: ${name} has an adapter already (merge() the earlier one first)`);
    if (rank > Math.min(layer.inFeatures, layer.outFeatures)) {
      throw new ShapeError(`${op}: rank ${rank} is larger than ${name} (${layer.inFeatures} → ${layer.outFeatures}) itself`);
    }
  }
  model.freeze();
  const adapters = chosen.map(([, layer]) => (layer.lora = new LoRA(layer.inFeatures, layer.outFeatures, rank, alpha, dropout)));
  model.train(model.training); // the new dropout layers follow the model's mode
  let merged = false;
  const params = () => adapters.flatMap((a) => [a.A, a.B]);
  return {
    layers: chosen.map(([n]) => n),
    parameters: params,
    get trainableCount() {
      return params().reduce((n, p) => n + p.size, 0);
    },
    get totalCount() {
      return model.parameters().reduce((n, p) => n + p.size, 0);
    },
    merge() {
      if (merged) throw new WebGradError(`${op}: merge() was called already: the adapters are part of the weights now`);
      noGrad(() =>
        chosen.forEach(([, layer]) => {
          const adapter = layer.lora!;
          const w = layer.weight;
          tidy(() => {
            const sum = add(w.dtype === 'float16' ? toFloat(w) : w, adapter.delta());
            copyInto(w, w.dtype === 'float16' ? toHalf(sum) : sum);
          });
          layer.lora = null;
          adapter.dispose();
        }),
      );
      merged = true;
    },
  };
}

/** Every Linear of the model with its dotted name and the module that holds it, in model order. */
function namedLinears(model: Module): [string, Linear, Module][] {
  const out: [string, Linear, Module][] = [];
  const walk = (m: Module, prefix: string) => {
    for (const [name, child] of m.namedChildren()) {
      if (child instanceof LoRA) continue;
      const path = prefix + name;
      if (child instanceof Linear) out.push([path, child, m]);
      walk(child, `${path}.`);
    }
  };
  walk(model, '');
  return out;
}

function formatTargets(t: readonly string[] | ((name: string, layer: Linear) => boolean)): string {
  return typeof t === 'function' ? '(a function)' : `[${t.map((s) => JSON.stringify(s)).join(', ')}]`;
}
