// Optimizer: what SGD, Adam and AdamW share. It holds the parameters, which step() updates in
// place (a parameter keeps its Tensor object and its buffer), and per-parameter state tensors
// (momentum, moments) that live outside every tidy() scope until dispose(). Like PyTorch,
// parameters whose .grad is null are skipped, and zeroGrad() sets .grad to null; so are frozen
// parameters (requiresGrad false: Module.freeze()), whatever .grad holds (DataParallel fills
// missing gradients with zeros, which would still move a parameter under weight decay).
// Hyper-parameters are checked by one function per optimizer (checkHyperParams), which the
// constructor runs on its options and loadStateDict on what it loads, so a checkpoint passes the
// constructor's rules.

import { contiguousCopy } from '../creation';
import { sizeClass } from '../runtime/buffer-pool';
import { runtime } from '../runtime/device';
import { dryRun } from '../memory';
import { DTypeError, ShapeError, WebGradError } from '../runtime/errors';
import { keep, tidy } from '../scope';
import { formatShape, Tensor } from '../tensor';

/** An optimizer's hyper-parameters by name (lr, momentum, betas, …). */
export type HyperParams = Record<string, number | boolean | readonly number[]>;

export interface ParamState {
  /** Updates this parameter has received (Adam's bias correction counts them per parameter, like PyTorch). */
  step: number;
  /** State tensors by name: momentumBuffer (SGD), expAvg and expAvgSq (Adam, AdamW). */
  buffers: Record<string, Tensor>;
}

export interface OptimizerStateDict {
  /** step() calls so far. */
  step: number;
  hyperParams: HyperParams;
  /** State by parameter index (the order of the params given to the constructor). */
  state: Record<number, ParamState>;
}

export abstract class Optimizer {
  readonly params: readonly Tensor[];
  /** The learning rate of the next step() (LR schedules set it). */
  lr = 0;
  /** The lr when the first LR schedule was attached; schedules compute from it (PyTorch's initial_lr). */
  initialLr: number | undefined;
  /** step() calls so far. */
  stepCount = 0;
  protected readonly state = new Map<number, ParamState>();

  constructor(
    /** The class name ('SGD', 'Adam', 'AdamW'): checkpoints record it, errors name it. */
    readonly name: string,
    params: Iterable<Tensor>,
  ) {
    this.params = [...params];
    if (this.params.length === 0) throw new WebGradError(`${name}: got an empty parameter list`);
    if (new Set(this.params).size !== this.params.length) {
      throw new WebGradError(`${name}: a parameter appears more than once in the parameter list`);
    }
    this.params.forEach((p, i) => {
      // A frozen weight stored in float16 (Module.half) is never updated: it may stay in the list.
      const frozenHalf = p.dtype === 'float16' && !p.requiresGrad;
      if (p.dtype !== 'float32' && !frozenHalf) throw new DTypeError(`${name}: parameter ${i} ${formatShape(p.shape)} is ${p.dtype}, expected float32`);
      if (!p.isContiguous) {
        throw new ShapeError(
          `${name}: parameter ${i} ${formatShape(p.shape)} is a non-contiguous view; parameters are updated in place and must be contiguous`,
        );
      }
    });
  }

  /** Names of the hyper-parameters that stateDict() saves (lr is always one). */
  protected abstract readonly hyperParamNames: readonly string[];

  /**
   * Every hyper-parameter of `hp` checked (type, range, how they combine) and returned as this
   * optimizer holds them; an error naming `op` and the first bad one otherwise. The constructor
   * runs it on its options (defaults filled in), loadStateDict on the loaded values over the
   * current ones: one set of rules for both.
   */
  protected abstract checkHyperParams(op: string, hp: Record<string, unknown>): HyperParams;

  /** Update one parameter in place from its (contiguous) gradient; `state.step` is already counted. */
  protected abstract update(param: Tensor, grad: Tensor, state: ParamState): void;

  /** The state tensors a parameter gets before its first update (kept out of tidy scopes). */
  protected abstract createState(param: Tensor): Record<string, Tensor>;

  /** Names of the state tensors a parameter may have (loadStateDict accepts no others). */
  protected abstract readonly stateNames: readonly string[];

  /**
   * One update of every parameter that has a gradient: one fused kernel per parameter. All
   * checks and state allocations happen before the first parameter changes, so a step that fails
   * (bad gradient, out of memory) leaves every parameter as it was.
   */
  step(): void {
    const todo: [Tensor, Tensor, number][] = [];
    this.params.forEach((p, i) => {
      const grad = p.grad;
      if (!grad || !p.requiresGrad) return;
      if (grad.dtype !== 'float32') throw new DTypeError(`${this.name}.step: the gradient of parameter ${i} is ${grad.dtype}, expected float32`);
      if (grad.shape.length !== p.shape.length || grad.shape.some((d, k) => d !== p.shape[k])) {
        throw new ShapeError(
          `${this.name}.step: the gradient ${formatShape(grad.shape)} of parameter ${i} does not match its shape ${formatShape(p.shape)}`,
        );
      }
      todo.push([p, grad, i]);
    });
    for (const [p, , i] of todo) if (!this.state.has(i)) this.state.set(i, { step: 0, buffers: this.createState(p) });
    for (const [p, grad, i] of todo) {
      const state = this.state.get(i)!;
      state.step++;
      tidy(() => this.update(p, grad.isContiguous ? grad : contiguousCopy(grad, `${this.name}.step`), state));
    }
    this.stepCount++;
  }

  /** Bytes of optimizer state once every parameter has had a step (what exists now plus what will; frozen parameters get none). */
  stateBytes(): number {
    let bytes = 0;
    this.params.forEach((p, i) => {
      const s = this.state.get(i);
      if (s) for (const t of Object.values(s.buffers)) bytes += sizeClass(t.size * 4);
      else if (p.requiresGrad) bytes += dryRun(() => Object.values(this.createState(p)).forEach((t) => t.dispose())).peakBytes;
    });
    return bytes;
  }

  /** Free every parameter's gradient and set it to null (PyTorch's set_to_none=True). */
  zeroGrad(): void {
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /**
   * The step count, hyper-parameters and state tensors by parameter index. The tensors are the
   * optimizer's own (live, not copies): read or save them, don't dispose them.
   */
  stateDict(): OptimizerStateDict {
    const hyperParams: HyperParams = {};
    for (const k of this.hyperParamNames) hyperParams[k] = this.hyperParam(k);
    const state: Record<number, ParamState> = {};
    for (const [i, s] of this.state) state[i] = { step: s.step, buffers: { ...s.buffers } };
    return { step: this.stepCount, hyperParams, state };
  }

  /**
   * Restore what stateDict() returned (from this optimizer or one over parameters of the same
   * shapes). The state tensors are copied: the caller keeps ownership of `sd`. Everything is
   * checked before anything changes.
   */
  loadStateDict(sd: OptimizerStateDict): void {
    const hyperParams = this.checkStateDict(sd);
    // Copy before freeing: `sd` may hold this optimizer's own tensors.
    const loaded = Object.entries(sd.state).map(([key, s]): [number, ParamState] => [
      Number(key),
      { step: s.step, buffers: Object.fromEntries(Object.entries(s.buffers).map(([n, t]) => [n, keep(contiguousCopy(t))])) },
    ]);
    this.disposeState();
    for (const [i, s] of loaded) this.state.set(i, s);
    for (const [k, v] of Object.entries(hyperParams)) this.setHyperParam(k, Array.isArray(v) ? [...v] : v);
    this.stepCount = sd.step;
  }

  /**
   * Throws (naming what is off) unless loadStateDict(sd) would succeed; changes nothing. Returns
   * the hyper-parameters loadStateDict would set: those of `sd` (all or some) over the current ones.
   */
  checkStateDict(sd: OptimizerStateDict): HyperParams {
    const op = `${this.name}.loadStateDict`;
    if (!isRecord(sd)) throw new WebGradError(`${op}: the state dict must be an object, got ${formatValue(sd)}`);
    checkCount(op, 'step', sd.step);
    if (!isRecord(sd.hyperParams)) throw new WebGradError(`${op}: hyperParams must be an object, got ${formatValue(sd.hyperParams)}`);
    for (const k of Object.keys(sd.hyperParams)) {
      if (!this.hyperParamNames.includes(k)) throw new WebGradError(`${op}: unknown hyper-parameter "${k}"`);
    }
    const current = Object.fromEntries(this.hyperParamNames.map((k) => [k, this.hyperParam(k)]));
    const hyperParams = this.checkHyperParams(op, { ...current, ...sd.hyperParams });
    if (!isRecord(sd.state)) throw new WebGradError(`${op}: state must be an object, got ${formatValue(sd.state)}`);
    const expected = this.stateNames;
    for (const [key, s] of Object.entries(sd.state)) {
      const i = Number(key);
      const p = /^(0|[1-9]\d*)$/.test(key) ? this.params[i] : undefined;
      if (!p) throw new WebGradError(`${op}: state for parameter ${key}, but there are ${this.params.length} parameters`);
      if (!isRecord(s) || !isRecord(s.buffers)) throw new WebGradError(`${op}: the state of parameter ${i} must be { step, buffers }`);
      checkCount(op, `the step count of parameter ${i}`, s.step);
      for (const [name, t] of Object.entries(s.buffers)) {
        if (!expected.includes(name)) throw new WebGradError(`${op}: unknown state "${name}" for parameter ${i}`);
        if (!(t instanceof Tensor)) throw new WebGradError(`${op}: state "${name}" of parameter ${i} is not a Tensor`);
        if (t.dtype !== 'float32') throw new DTypeError(`${op}: state "${name}" of parameter ${i} is ${t.dtype}, expected float32`);
        if (t.size !== p.size || t.shape.length !== p.shape.length || t.shape.some((d, k) => d !== p.shape[k])) {
          throw new ShapeError(
            `${op}: state "${name}" ${formatShape(t.shape)} does not match parameter ${i} ${formatShape(p.shape)}`,
          );
        }
      }
    }
    return hyperParams;
  }

  /** Free the state tensors (momentum, moments); the optimizer starts afresh if used again. */
  dispose(): void {
    this.disposeState();
  }

  private disposeState(): void {
    for (const s of this.state.values()) for (const t of Object.values(s.buffers)) t.dispose();
    this.state.clear();
  }

  private hyperParam(k: string): number | boolean | readonly number[] {
    return (this as unknown as Record<string, number | boolean | readonly number[]>)[k]!;
  }

  private setHyperParam(k: string, v: number | boolean | readonly number[]): void {
    (this as unknown as Record<string, unknown>)[k] = v;
  }
}

/** `v` if it is a finite number ≥ min (and < below, when given), else an error naming it. */
export function checkNumber(op: string, what: string, v: unknown, min: number, below = Infinity): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v >= below) {
    const range = below === Infinity ? `≥ ${min}` : `in [${min}, ${below})`;
    throw new WebGradError(`${op}: ${what} must be a number ${range}, got ${formatValue(v)}`);
  }
  return v;
}

/** `v` if it is a boolean, else an error naming it. */
export function checkBoolean(op: string, what: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw new WebGradError(`${op}: ${what} must be true or false, got ${formatValue(v)}`);
  return v;
}

/** `v` if it is a non-negative integer (a count), else an error naming it. */
export function checkCount(op: string, what: string, v: unknown): number {
  if (!Number.isSafeInteger(v) || (v as number) < 0) throw new WebGradError(`${op}: ${what} must be a non-negative integer, got ${formatValue(v)}`);
  return v as number;
}

/** A value as an error message shows it: numbers as numbers (Infinity too), the rest as JSON. */
export function formatValue(v: unknown): string {
  if (typeof v === 'number' || v === undefined) return String(v);
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
