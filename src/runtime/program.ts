// What the runtime needs to compile and bind one compute entry point. Every program follows one
// layout: a uniform `Params` slot at @binding(0), storage buffers from @binding(1) in the order of
// `access`. Kernels (src/kernels/kernel.ts) are programs with named bindings and parameters.

export type Access = 'read' | 'write';

/** Values for a program's `override` constants (booleans become true/false overrides). */
export type Constants = Record<string, number | boolean>;

export interface Program {
  /** Name used in errors and the profiler, e.g. "matmul.shared.subgroup". */
  readonly name: string;
  readonly code: string;
  /** Distinct per distinct code text, so that pipelines are keyed by code, not by name. */
  readonly codeId: number;
  readonly entryPoint: string;
  /** Storage bindings 1..n: 'read' is read-only storage, 'write' is read_write storage. */
  readonly access: readonly Access[];
}

const codeIds = new Map<string, number>();

/** The id of a module's code text (the same text, the same id). */
export function codeIdOf(code: string): number {
  let id = codeIds.get(code);
  if (id === undefined) codeIds.set(code, (id = codeIds.size + 1));
  return id;
}
