// What the runtime needs to run one kernel on either backend. On WebGPU: a compute entry point
// whose layout is a uniform `Params` slot at @binding(0) and storage buffers from @binding(1) in
// the order of `access`. On the CPU backend: its wasm twin, a kernel of the same semantics
// (wasm/*.ts) called with the same named bindings, parameters and constants. Kernels
// (src/kernels/kernel.ts) are programs with named bindings and parameters.

export type Access = 'read' | 'write';

/** Values for a program's `override` constants (booleans become true/false overrides). */
export type Constants = Record<string, number | boolean>;

/** What a kernel's parameter may be given: a number (scalars), a list (vectors, arrays), a boolean (0/1). */
export type ParamValue = number | boolean | readonly number[];
export type ParamValues = Readonly<Record<string, ParamValue>>;

/** A kernel's twin on the CPU backend. */
export interface WasmTwin {
  /** Its name in src/runtime/wasm/kernels.json. */
  readonly kernel: string;
  /** The WGSL defaults of its constants (a launch that leaves a constant out gets its default, as on WebGPU). */
  readonly defaults: Readonly<Record<string, number>>;
}

export interface Program {
  /** Name used in errors and the profiler, e.g. "matmul.shared.subgroup". */
  readonly name: string;
  /** The WGSL module ('' for a kernel only the CPU backend has). */
  readonly code: string;
  /** Distinct per distinct code text, so that pipelines are keyed by code, not by name. */
  readonly codeId: number;
  readonly entryPoint: string;
  /** Names of the storage bindings 1..n, in order. */
  readonly bindings: readonly string[];
  /** Storage bindings 1..n: 'read' is read-only storage, 'write' is read_write storage. */
  readonly access: readonly Access[];
  /** The WGSL Params struct's bytes for these values (WebGPU's uniform slot). */
  encodeParams(values: ParamValues): Uint8Array;
  /** The CPU backend's kernel (null: the kernel has none, and the CPU backend never launches it). */
  readonly wasm: WasmTwin | null;
}

const codeIds = new Map<string, number>();

/** The id of a module's code text (the same text, the same id). */
export function codeIdOf(code: string): number {
  let id = codeIds.get(code);
  if (id === undefined) codeIds.set(code, (id = codeIds.size + 1));
  return id;
}
