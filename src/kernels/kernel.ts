// A kernel: one WGSL entry point, its named storage bindings and its Params struct. Every kernel
// follows one layout:
//   @group(0) @binding(0) var<uniform> p: Params;        (a slot of the per-batch params buffer)
//   @group(0) @binding(1..n) var<storage, read|read_write> …;   (in the order of `bindings`)
// Its module is assembled from parts (kernels.wgsl.ts), always after shaders/prelude.wgsl, which
// gives workgroup_index() for folded dispatches. The Params fields are read from the WGSL struct
// itself (params.ts), so a launch names them and nothing restates their order.

import preludeWGSL from '../../shaders/prelude.wgsl?raw';
import { codeIdOf, type Access, type Program } from '../runtime/program';
import { parseParams, type ParamsLayout } from './params';
import { assembleWGSL } from './wgsl';

export type { Access, Constants } from '../runtime/program';

export interface Kernel extends Program {
  /** Names of the storage bindings 1..n, in order. */
  readonly bindings: readonly string[];
  /** The layout of the module's `struct Params` (null: the module has none). */
  readonly params: ParamsLayout | null;
}

export interface KernelSpec {
  /** The module's WGSL, or its parts in order (each part may bring `enable` directives). */
  code: string | readonly string[];
  /** The entry point (default 'main'). */
  entry?: string;
  /** Storage bindings in binding order: 'read' (read-only) or 'write' (read_write). */
  bindings: Readonly<Record<string, Access>>;
  /** The struct of the uniform at binding 0, when a module has several (default 'Params'). */
  paramsStruct?: string;
}

const layouts = new Map<string, ParamsLayout | null>();

export function defineKernel(name: string, spec: KernelSpec): Kernel {
  const parts = typeof spec.code === 'string' ? [spec.code] : spec.code;
  const code = assembleWGSL(preludeWGSL, ...parts);
  const struct = spec.paramsStruct ?? 'Params';
  const key = `${struct}\n${code}`;
  let params = layouts.get(key);
  if (params === undefined) layouts.set(key, (params = parseParams(code, name, struct)));
  return {
    name,
    code,
    codeId: codeIdOf(code),
    entryPoint: spec.entry ?? 'main',
    bindings: Object.keys(spec.bindings),
    access: Object.values(spec.bindings),
    params,
  };
}
