// Optimizer: what SGD, Adam and AdamW share. It holds the parameters, which step() updates in
// place (a parameter keeps its Tensor object and its buffer), and per-parameter state tensors
// (momentum, moments) that live outside every tidy() scope until dispose(). As in PyTorch, the
// parameters may come in groups with hyper-parameters of their own (param_groups: say, weight
// decay on matrices only, see decayGroups): `new AdamW([{ params, weightDecay: 0.1 }, { params:
// rest, weightDecay: 0 }], { lr })`; what a group leaves out comes from the options. Like PyTorch,
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

/**
 * Parameters with hyper-parameters of their own, as given to an optimizer's constructor (PyTorch's
 * param_groups): `{ params, weightDecay: 0 }`. Options a group leaves out are the optimizer's.
 */
export type ParamGroupSpec<O = Record<string, unknown>> = { params: Iterable<Tensor> } & Partial<O>;

/** What an optimizer's constructor takes: the parameters, or groups of them. */
export type ParamsOrGroups<O = Record<string, unknown>> = Iterable<Tensor> | readonly ParamGroupSpec<O>[];

/** A group of parameters as the optimizer holds it. */
export interface ParamGroup<H extends HyperParams = HyperParams> {
  readonly params: readonly Tensor[];
  /** Every hyper-parameter of this group (the optimizer's options, overridden by the group's own). */
  hyperParams: H;
  /** The group's lr when the first LR schedule was attached; schedules compute from it (PyTorch's initial_lr). */
  initialLr?: number;
}

export interface OptimizerStateDict {
  /** step() calls so far. */
  step: number;
  /** The hyper-parameters of the first group (of the only one when `paramGroups` is absent). */
  hyperParams: HyperParams;
  /**
   * With more than one group: each group's parameter indices and hyper-parameters (then these
   * are what loadStateDict reads, and `hyperParams` is only the first group's, for reading).
   */
  paramGroups?: { params: number[]; hyperParams: HyperParams }[];
  /** State by parameter index (the order of the params given to the constructor, group after group). */
  state: Record<number, ParamState>;
}

export abstract class Optimizer<H extends HyperParams = HyperParams> {
  /** Every parameter, group after group (state and checkpoints index them in this order). */
  readonly params: readonly Tensor[];
  /** The parameter groups, with their hyper-parameters (one group unless groups were given). */
  readonly paramGroups: ParamGroup<H>[] = [];
  /** step() calls so far. */
  stepCount = 0;
  protected readonly state = new Map<number, ParamState>();
  /** Each group's own options, until initGroups() resolves them. */
  private pendingGroups: { params: Tensor[]; options: Record<string, unknown> }[] | null;

  constructor(
    /** The class name ('SGD', 'Adam', 'AdamW'): checkpoints record it, errors name it. */
    readonly name: string,
    params: ParamsOrGroups,
  ) {
    this.pendingGroups = splitGroups(name, params);
    this.params = this.pendingGroups.flatMap((g) => g.params);
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

  /**
   * Resolve the groups (the subclass constructor calls it with its checked options): each group's
   * own options over `options`, checked by checkHyperParams.
   */
  protected initGroups(options: H): void {
    const groups = this.pendingGroups!;
    this.pendingGroups = null;
    groups.forEach(({ params, options: own }, i) => {
      const op = groups.length > 1 ? `${this.name} (param group ${i})` : this.name;
      for (const k of Object.keys(own)) {
        if (!this.hyperParamNames.includes(k)) {
          throw new WebGradError(`${op}: unknown option "${k}" (${this.name} takes ${this.hyperParamNames.join(', ')})`);
        }
      }
      this.paramGroups.push({ params, hyperParams: this.checkHyperParams(op, { ...options, ...own }) });
    });
  }

  /** The learning rate of the next step() (of the first group; setting it sets every group's; LR schedules set each group's). */
  get lr(): number {
    return this.groupValue('lr') as number;
  }

  set lr(v: number) {
    this.setEveryGroup('lr', v);
  }

  /** A hyper-parameter of the first group (the optimizer's, when there is one group). */
  protected groupValue(k: string): HyperParams[string] {
    return (this.paramGroups[0]!.hyperParams as HyperParams)[k]!;
  }

  /** Set a hyper-parameter of every group. */
  protected setEveryGroup(k: string, v: HyperParams[string]): void {
    for (const g of this.paramGroups) (g.hyperParams as HyperParams)[k] = v;
  }

  /** Names of the hyper-parameters that stateDict() saves (lr is always one). */
  protected abstract readonly hyperParamNames: readonly string[];

  /**
   * Every hyper-parameter of `hp` checked (type, range, how they combine) and returned as this
   * optimizer holds them; an error naming `op` and the first bad one otherwise. The constructor
   * runs it on its options (defaults filled in), loadStateDict on the loaded values over the
   * current ones: one set of rules for both.
   */
  protected abstract checkHyperParams(op: string, hp: Record<string, unknown>): H;

  /** Update one parameter in place from its (contiguous) gradient with its group's hyper-parameters; `state.step` is already counted. */
  protected abstract update(param: Tensor, grad: Tensor, state: ParamState, hp: H): void;

  /** The state tensors a parameter gets before its first update (kept out of tidy scopes). */
  protected abstract createState(param: Tensor, hp: H): Record<string, Tensor>;

  /** Names of the state tensors a parameter may have (loadStateDict accepts no others). */
  protected abstract readonly stateNames: readonly string[];

  /**
   * One update of every parameter that has a gradient: one fused kernel per parameter. All
   * checks and state allocations happen before the first parameter changes, so a step that fails
   * (bad gradient, out of memory) leaves every parameter as it was.
   */
  step(): void {
    const todo: [Tensor, Tensor, number, H][] = [];
    this.forEachParam((p, i, hp) => {
      const grad = p.grad;
      if (!grad || !p.requiresGrad) return;
      if (grad.dtype !== 'float32') throw new DTypeError(`${this.name}.step: the gradient of parameter ${i} is ${grad.dtype}, expected float32`);
      if (grad.shape.length !== p.shape.length || grad.shape.some((d, k) => d !== p.shape[k])) {
        throw new ShapeError(
          `${this.name}.step: the gradient ${formatShape(grad.shape)} of parameter ${i} does not match its shape ${formatShape(p.shape)}`,
        );
      }
      todo.push([p, grad, i, hp]);
    });
    for (const [p, , i, hp] of todo) if (!this.state.has(i)) this.state.set(i, { step: 0, buffers: this.createState(p, hp) });
    for (const [p, grad, i, hp] of todo) {
      const state = this.state.get(i)!;
      state.step++;
      tidy(() => this.update(p, grad.isContiguous ? grad : contiguousCopy(grad, `${this.name}.step`), state, hp));
    }
    this.stepCount++;
  }

  /** Each parameter with its index in `params` and its group's hyper-parameters. */
  private forEachParam(fn: (p: Tensor, index: number, hp: H) => void): void {
    let i = 0;
    for (const g of this.paramGroups) for (const p of g.params) fn(p, i++, g.hyperParams);
  }

  /** Bytes of optimizer state once every parameter has had a step (what exists now plus what will; frozen parameters get none). */
  stateBytes(): number {
    let bytes = 0;
    this.forEachParam((p, i, hp) => {
      const s = this.state.get(i);
      if (s) for (const t of Object.values(s.buffers)) bytes += sizeClass(t.size * 4);
      else if (p.requiresGrad) bytes += dryRun(() => Object.values(this.createState(p, hp)).forEach((t) => t.dispose())).peakBytes;
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
    const state: Record<number, ParamState> = {};
    for (const [i, s] of this.state) state[i] = { step: s.step, buffers: { ...s.buffers } };
    let first = 0;
    const paramGroups = this.paramGroups.map((g) => {
      const params = g.params.map((_, k) => first + k);
      first += g.params.length;
      return { params, hyperParams: copyHyperParams(g.hyperParams, this.hyperParamNames) };
    });
    const sd: OptimizerStateDict = { step: this.stepCount, hyperParams: paramGroups[0]!.hyperParams, state };
    if (paramGroups.length > 1) sd.paramGroups = paramGroups;
    return sd;
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
    hyperParams.forEach((hp, i) => (this.paramGroups[i]!.hyperParams = hp));
    this.stepCount = sd.step;
  }

  /**
   * Throws (naming what is off) unless loadStateDict(sd) would succeed; changes nothing. Returns
   * the hyper-parameters loadStateDict would set, by group: those of `sd` (all or some) over the
   * current ones. The state dict must have this optimizer's groups (the same parameter indices in
   * each); one without paramGroups has one group of every parameter.
   */
  checkStateDict(sd: OptimizerStateDict): H[] {
    const op = `${this.name}.loadStateDict`;
    if (!isRecord(sd)) throw new WebGradError(`${op}: the state dict must be an object, got ${formatValue(sd)}`);
    checkCount(op, 'step', sd.step);
    const groups = sd.paramGroups ?? [{ params: this.params.map((_, i) => i), hyperParams: sd.hyperParams }];
    const given = this.checkGroups(op, groups);
    const hyperParams = given.map((hp, i) => {
      const where = given.length > 1 ? `${op} (param group ${i})` : op;
      if (!isRecord(hp)) throw new WebGradError(`${where}: hyperParams must be an object, got ${formatValue(hp)}`);
      for (const k of Object.keys(hp)) {
        if (!this.hyperParamNames.includes(k)) throw new WebGradError(`${where}: unknown hyper-parameter "${k}"`);
      }
      return this.checkHyperParams(where, { ...copyHyperParams(this.paramGroups[i]!.hyperParams, this.hyperParamNames), ...hp });
    });
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

  /** The groups of a state dict, checked against this optimizer's: their hyper-parameters. */
  private checkGroups(op: string, groups: unknown): unknown[] {
    const describe = (sizes: number[]) => `${sizes.length} param group${sizes.length === 1 ? '' : 's'} (${sizes.join(', ')} parameters)`;
    const mine = this.paramGroups.map((g) => g.params.length);
    if (!Array.isArray(groups)) throw new WebGradError(`${op}: paramGroups must be an array, got ${formatValue(groups)}`);
    let first = 0;
    return groups.map((g: unknown, i) => {
      if (!isRecord(g) || !Array.isArray(g.params)) throw new WebGradError(`${op}: param group ${i} must be { params: [indices], hyperParams }`);
      const n = mine[i];
      const expected = n === undefined ? null : Array.from({ length: n }, (_, k) => first + k);
      first += n ?? 0;
      if (groups.length !== mine.length || !expected || g.params.length !== n || g.params.some((p, k) => p !== expected[k])) {
        const theirs = groups.map((x: unknown) => (isRecord(x) && Array.isArray(x.params) ? x.params.length : NaN));
        throw new WebGradError(`${op}: the state dict has ${describe(theirs)} and this optimizer ${describe(mine)}; they must be the same groups`);
      }
      return g.hyperParams;
    });
  }

  /** Free the state tensors (momentum, moments); the optimizer starts afresh if used again. */
  dispose(): void {
    this.disposeState();
  }

  private disposeState(): void {
    for (const s of this.state.values()) for (const t of Object.values(s.buffers)) t.dispose();
    this.state.clear();
  }

}

/** The groups of a constructor's `params`: a list of tensors (one group) or of { params, …options }. */
function splitGroups(name: string, params: ParamsOrGroups): { params: Tensor[]; options: Record<string, unknown> }[] {
  if (params === null || typeof params !== 'object' || !(Symbol.iterator in params)) {
    throw new WebGradError(`${name}: expected the parameters (model.parameters()) or a list of groups { params, … }, got ${formatValue(params)}`);
  }
  const items = [...(params as Iterable<unknown>)];
  if (!items.some((x) => !(x instanceof Tensor))) return [{ params: items as Tensor[], options: {} }];
  return items.map((g, i) => {
    if (!isRecord(g) || g.params === null || typeof g.params !== 'object' || !(Symbol.iterator in g.params)) {
      throw new WebGradError(`${name}: item ${i} of the parameter list is neither a Tensor nor a group { params, … }`);
    }
    const { params: groupParams, ...options } = g;
    const list = [...(groupParams as Iterable<unknown>)];
    const bad = list.findIndex((p) => !(p instanceof Tensor));
    if (bad >= 0) throw new WebGradError(`${name}: param group ${i}: item ${bad} of its params is not a Tensor`);
    return { params: list as Tensor[], options };
  });
}

/** A copy of the named hyper-parameters (arrays copied too). */
function copyHyperParams<H extends HyperParams>(hp: H, names: readonly string[]): H {
  const out: HyperParams = {};
  for (const k of names) {
    const v = hp[k]!;
    out[k] = Array.isArray(v) ? [...v] : v;
  }
  return out as H;
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
