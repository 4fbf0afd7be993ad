// Module: the base of every layer and model, as in PyTorch. A module's parameters, buffers and
// submodules are found by looking at its own properties, in the order they were assigned:
//   - a Tensor made a parameter by parameter(), or one that requires grad, is a parameter — a
//     frozen parameter (requiresGrad(false), freeze()) stays one: it is still in parameters() and
//     the state dict, it just gets no gradient and optimizers skip it,
//   - any other Tensor is a buffer (saved in the state dict, e.g. BatchNorm's running stats),
//   - a Module (or an array of Modules) is a submodule, named by property (and index).

import { noGrad } from '../autograd/grad-mode';
import { ShapeError, DTypeError, WebGradError } from '../runtime/errors';
import { keep, tidy } from '../scope';
import { formatShape, Tensor } from '../tensor';
import { copyInto } from '../ops/copy';
import { toFloat, toHalf } from '../ops/half';
import { runtime } from '../runtime/device';
import { checkpoint } from './checkpoint';

export abstract class Module {
  training = true;
  /** The dtype forward() takes: float32, or int32 for token ids (the Trainer's planning feeds its dry runs with it). */
  readonly inputDType: 'float32' | 'int32' = 'float32';

  abstract forward(x: Tensor): Tensor;

  /**
   * Whether calls of forward() run as a checkpoint (nn/checkpoint.ts): the activations inside
   * are not kept for backward(), which runs forward() again for them. The Trainer sets it on a
   * model's checkpointBlocks() as its memory plan says ('auto', 'blocks').
   */
  get checkpointed(): boolean {
    return Object.hasOwn(this, 'forward');
  }

  set checkpointed(on: boolean) {
    if (on === this.checkpointed) return;
    if (!on) {
      delete (this as { forward?: unknown }).forward;
      return;
    }
    // The class's forward, wrapped by an own property (not enumerable: not a submodule or state).
    const plain = Object.getPrototypeOf(this).forward as (x: Tensor, ...rest: unknown[]) => Tensor;
    const name = this.constructor.name;
    Object.defineProperty(this, 'forward', {
      configurable: true,
      enumerable: false,
      writable: true,
      value: function checkpointedForward(this: Module, x: Tensor, ...rest: unknown[]): Tensor {
        const block = (xi: Tensor, ...r: unknown[]) => plain.call(this, xi, ...r);
        Object.defineProperty(block, 'name', { value: name });
        return checkpoint(block, x, ...rest);
      },
    });
  }

  /**
   * The units this model is checkpointed by, in order (the Trainer's checkpointing sets their
   * `checkpointed`): its submodules' blocks. A TransformerBlock is one block; a Sequential's
   * blocks are its layers (a layer with blocks of its own contributes those).
   */
  checkpointBlocks(): Module[] {
    return this.namedChildren().flatMap(([, m]) => m.checkpointBlocks());
  }

  /** Submodules, named by property (arrays as name.index; Sequential's layers as their index). */
  namedChildren(): [string, Module][] {
    const out: [string, Module][] = [];
    for (const [k, v] of Object.entries(this)) {
      if (v instanceof Module) out.push([k, v]);
      else if (Array.isArray(v)) v.forEach((m, i) => m instanceof Module && out.push([this.arrayChildName(k, i), m]));
    }
    return out;
  }

  /** How an element of an array property is named in paths (Sequential overrides: just the index). */
  protected arrayChildName(property: string, index: number): string {
    return `${property}.${index}`;
  }

  namedParameters(prefix = ''): [string, Tensor][] {
    return this.namedTensors(prefix, true);
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  /** Tensors that are state but not parameters (running statistics). */
  namedBuffers(prefix = ''): [string, Tensor][] {
    return this.namedTensors(prefix, false);
  }

  /** Parameters and buffers by dotted name, like PyTorch's state_dict(). The tensors are live: don't dispose them. */
  stateDict(): Record<string, Tensor> {
    return Object.fromEntries([...this.namedParameters(), ...this.namedBuffers()]);
  }

  /**
   * Copy values from `sd` into this module's parameters and buffers. Every name and shape is
   * checked before anything is copied, so a mismatch leaves the module unchanged.
   */
  loadStateDict(sd: Record<string, Tensor>, { strict = true }: { strict?: boolean } = {}): void {
    const own = this.stateDict();
    // Own keys only: a name from a file such as "__proto__" or "constructor" is not inherited from Object.
    const missing = Object.keys(own).filter((k) => !Object.hasOwn(sd, k));
    const unexpected = Object.keys(sd).filter((k) => !Object.hasOwn(own, k));
    if (strict && (missing.length || unexpected.length)) {
      throw new WebGradError(
        `loadStateDict: ${missing.length ? `missing ${missing.join(', ')}` : ''}` +
          `${missing.length && unexpected.length ? '; ' : ''}${unexpected.length ? `unexpected ${unexpected.join(', ')}` : ''}`,
      );
    }
    for (const [k, t] of Object.entries(own)) {
      const src = Object.hasOwn(sd, k) ? sd[k] : undefined;
      if (!src) continue;
      if (src.shape.length !== t.shape.length || src.shape.some((d, i) => d !== t.shape[i])) {
        throw new ShapeError(`loadStateDict: ${k} has shape ${formatShape(src.shape)}, the module expects ${formatShape(t.shape)}`);
      }
      // A weight this module keeps in float16 (half()) takes float32 values, rounded to f16.
      const rounded = t.dtype === 'float16' && src.dtype === 'float32';
      if (src.dtype !== t.dtype && !rounded) throw new DTypeError(`loadStateDict: ${k} is ${src.dtype}, the module expects ${t.dtype}`);
    }
    noGrad(() => {
      for (const [k, t] of Object.entries(own)) {
        const src = Object.hasOwn(sd, k) ? sd[k] : undefined;
        if (src) tidy(() => copyInto(t, t.dtype === src.dtype ? src : toHalf(src)));
      }
    });
  }

  /**
   * Whether this module's parameters (its submodules' included) get gradients. Frozen ones
   * (false) get none from backward(), optimizers skip them (no update, no state), and they stay
   * parameters: in parameters() and the state dict. Freezing drops any gradient they hold.
   */
  requiresGrad(flag = true): this {
    const half = flag ? this.namedParameters().find(([, p]) => p.dtype === 'float16') : undefined;
    if (half) {
      throw new DTypeError(
        `requiresGrad(true): ${half[0]} is stored in float16 by half({ frozenOnly: true }), and only float32 parameters train; call float() first`,
      );
    }
    for (const p of this.parameters()) {
      p.requiresGrad = flag;
      if (!flag) {
        p.grad?.dispose();
        p.grad = null;
      }
    }
    return this;
  }

  /** requiresGrad(false): keep every parameter as it is while the rest of a model trains. */
  freeze(): this {
    return this.requiresGrad(false);
  }

  /**
   * Store frozen weights in float16 on a device with shader-f16: half their memory, read as they
   * are by matmul's f16-operand kernels (f32 arithmetic). Only weights that matmul alone reads are
   * stored so (a Linear's weight, not an embedding table that a lookup reads), and only frozen ones
   * (requiresGrad false: Module.freeze(), or the base of wg.nn.lora): trainable parameters keep
   * float32 gradients and updates, so `frozenOnly: true` must be passed. Rounding to f16 changes
   * the weights by up to 2^-11 of their size, once. Without shader-f16 nothing changes — the model
   * computes exactly in f32 — and webgrad says so once.
   */
  half(opts?: { frozenOnly: true }): this {
    if (opts?.frozenOnly !== true) {
      throw new WebGradError(
        'half(): only frozen weights can be stored in float16 (trainable ones need float32 gradients and updates): call half({ frozenOnly: true })',
      );
    }
    if (!runtime().hasFeature('shader-f16')) {
      if (!warnedNoHalf) {
        warnedNoHalf = true;
        console.warn("webgrad: half({ frozenOnly: true }): this adapter has no shader-f16, so frozen weights stay float32 (computed exactly in f32).");
      }
      return this;
    }
    this.convertWeights((t) => t.dtype === 'float32' && !t.requiresGrad, toHalf);
    return this;
  }

  /** Undo half(): weights stored in float16 become float32 again (exactly: every f16 value is an f32 value). */
  float(): this {
    this.convertWeights((t) => t.dtype === 'float16', toFloat);
    return this;
  }

  /**
   * Names of this module's own tensors that half() may store in float16: weights that only matmul
   * reads (Linear: its weight). A tensor shared with a module that does not list it stays float32.
   */
  protected halfWeightNames(): readonly string[] {
    return [];
  }

  /** Replace each weight that `pick` selects (everywhere it is held) by `convert(weight)`, a frozen parameter. */
  private convertWeights(pick: (t: Tensor) => boolean, convert: (t: Tensor) => Tensor): void {
    const modules = [...new Set(this.modules())];
    // Every property holding each tensor, and whether that module lets it change precision.
    const holders = new Map<Tensor, { module: Module; name: string; allowed: boolean }[]>();
    for (const m of modules) {
      const allowed = new Set(m.halfWeightNames());
      for (const [name, v] of Object.entries(m)) {
        if (v instanceof Tensor && !v.disposed && pick(v)) {
          let list = holders.get(v);
          if (!list) holders.set(v, (list = []));
          list.push({ module: m, name, allowed: allowed.has(name) });
        }
      }
    }
    const changed = [...holders].filter(([t, list]) => list.every((h) => h.allowed) && madeParameters.has(t));
    const converted = noGrad(() => changed.map(([t]) => convert(t)));
    changed.forEach(([old, list], i) => {
      const t = keep(converted[i]!);
      t.requiresGrad = false;
      madeParameters.add(t);
      for (const h of list) (h.module as unknown as Record<string, Tensor>)[h.name] = t;
      old.dispose();
    });
  }

  /** This module and every submodule, depth first. */
  modules(): Module[] {
    return [this, ...this.namedChildren().flatMap(([, m]) => m.modules())];
  }

  train(mode = true): this {
    this.training = mode;
    for (const [, m] of this.namedChildren()) m.train(mode);
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /**
   * After a device loss and a new wg.init(): give every parameter and buffer new, uninitialised
   * memory on the new device. The tensor objects stay (an optimizer over them still holds them);
   * load a state dict or checkpoint next. Gradients of the old device are dropped.
   */
  rehome(): void {
    const homes = new Map();
    for (const t of Object.values(this.stateDict())) {
      if (t.grad?.orphaned) {
        t.grad.dispose();
        t.grad = null;
      }
      t.rehome(homes);
    }
  }

  /** Free every parameter and buffer. */
  dispose(): void {
    for (const t of Object.values(this.stateDict())) t.dispose();
  }

  private namedTensors(prefix: string, params: boolean): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [k, v] of Object.entries(this)) {
      if (v instanceof Tensor && !v.disposed && isParameter(v) === params) out.push([prefix + k, v]);
    }
    for (const [name, child] of this.namedChildren()) out.push(...child.namedTensors(`${prefix}${name}.`, params));
    return out;
  }
}

let warnedNoHalf = false;

// Parameters made by parameter(): they stay parameters when frozen (requiresGrad false).
const madeParameters = new WeakSet<Tensor>();

function isParameter(t: Tensor): boolean {
  return t.requiresGrad || madeParameters.has(t);
}

/** Make `t` a parameter: it requires grad and survives tidy(). */
export function parameter(t: Tensor): Tensor {
  t.requiresGrad = true;
  madeParameters.add(t);
  return keep(t);
}

/** Make `t` a buffer: module state without gradient, surviving tidy(). */
export function buffer(t: Tensor): Tensor {
  t.requiresGrad = false;
  madeParameters.delete(t);
  return keep(t);
}
