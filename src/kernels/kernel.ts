// A kernel: one WGSL entry point, its named storage bindings and its Params struct, and its twin
// on the CPU backend (a wasm kernel of the same semantics, by name from
// src/runtime/wasm/kernels.json). Every WGSL kernel follows one layout:
//   @group(0) @binding(0) var<uniform> p: Params;        (a slot of the per-batch params buffer)
//   @group(0) @binding(1..n) var<storage, read|read_write> …;   (in the order of `bindings`)
// Its module is assembled from parts (kernels.wgsl.ts), always after shaders/prelude.wgsl, which
// gives workgroup_index() for folded dispatches. The Params fields are read from the WGSL struct
// itself (params.ts), so a launch names them and nothing restates their order. The twin takes the
// same names: what it reads is checked here against the WGSL (bindings, Params fields, override
// constants, whose WGSL defaults it gets when a launch leaves them out), so the two cannot drift.

import preludeWGSL from '../../shaders/prelude.wgsl?raw';
import { codeIdOf, type Access, type Program, type WasmTwin } from '../runtime/program';
import { SIGNATURES } from '../runtime/wasm/signatures';
import { encodeParams, parseParams, type ParamsLayout } from './params';
import { assembleWGSL } from './wgsl';

export type { Access, Constants } from '../runtime/program';

export interface Kernel extends Program {
  /** The layout of the module's `struct Params` (null: the module has none, or there is no WGSL). */
  readonly params: ParamsLayout | null;
  /** The parameter names a launch may give: the WGSL Params fields (a wasm-only kernel: its twin's). */
  readonly fields: ReadonlySet<string>;
}

export interface KernelSpec {
  /** The module's WGSL, or its parts in order (each part may bring `enable` directives). Absent: the kernel exists only on the CPU backend. */
  code?: string | readonly string[];
  /** The entry point (default 'main'). */
  entry?: string;
  /** Storage bindings in binding order: 'read' (read-only) or 'write' (read_write). */
  bindings: Readonly<Record<string, Access>>;
  /** The struct of the uniform at binding 0, when a module has several (default 'Params'). */
  paramsStruct?: string;
  /** The twin's name in src/runtime/wasm/kernels.json (absent: none; the CPU backend never launches this kernel). */
  wasm?: string;
}

const layouts = new Map<string, ParamsLayout | null>();

export function defineKernel(name: string, spec: KernelSpec): Kernel {
  const parts = spec.code === undefined ? null : typeof spec.code === 'string' ? [spec.code] : spec.code;
  const code = parts ? assembleWGSL(preludeWGSL, ...parts) : '';
  let params: ParamsLayout | null = null;
  if (parts) {
    const struct = spec.paramsStruct ?? 'Params';
    const key = `${struct}\n${code}`;
    const known = layouts.get(key);
    if (known === undefined) layouts.set(key, (params = parseParams(code, name, struct)));
    else params = known;
  }
  const bindings = Object.keys(spec.bindings);
  const wasm = spec.wasm === undefined ? null : twinOf(name, spec.wasm, bindings, parts ? code : null, params);
  const fields = new Set(params ? params.fields.keys() : SIGNATURES.get(spec.wasm ?? '')?.params.map((f) => f.name) ?? []);
  return {
    name,
    code,
    codeId: codeIdOf(code),
    entryPoint: spec.entry ?? 'main',
    bindings,
    access: Object.values(spec.bindings),
    params,
    fields,
    wasm,
    encodeParams: parts
      ? (values) => encodeParams(name, params, values)
      : () => {
          throw new Error(`${name} exists only on the CPU backend`);
        },
  };
}

/**
 * The twin `twin` of kernel `name`, checked: it binds only the kernel's bindings and reads only
 * its WGSL's Params fields and override constants (a wasm-only kernel: no WGSL to check against).
 */
function twinOf(name: string, twin: string, bindings: readonly string[], code: string | null, params: ParamsLayout | null): WasmTwin {
  const sig = SIGNATURES.get(twin);
  const fail = (what: string) => new Error(`${name}: its wasm twin ${twin} ${what}`);
  if (!sig) throw fail('is not in src/runtime/wasm/kernels.json');
  for (const f of sig.bind) if (!bindings.includes(f.name)) throw fail(`binds "${f.name}", which the kernel does not (${bindings.join(', ')})`);
  const defaults: Record<string, number> = {};
  if (code === null) return { kernel: twin, defaults };
  for (const f of sig.params) if (!params?.fields.has(f.name)) throw fail(`reads the parameter "${f.name}", which the WGSL Params lacks`);
  const overrides = overrideDefaults(code);
  for (const f of sig.constants) {
    if (!(f.name in overrides)) throw fail(`reads the constant "${f.name}", which the WGSL does not declare`);
    defaults[f.name] = overrides[f.name]!;
  }
  return { kernel: twin, defaults };
}

/** Every `override NAME: type = value;` of a module, with its default as a number (booleans 0/1; none: 0). */
function overrideDefaults(code: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of code.replace(/\/\/[^\n]*/g, '').matchAll(/\boverride\s+(\w+)\s*(?::\s*\w+)?\s*(?:=\s*([^;]+))?;/g)) {
    const v = (m[2] ?? '0').trim();
    out[m[1]!] = v === 'true' ? 1 : v === 'false' ? 0 : Number.parseFloat(v) || 0;
  }
  return out;
}
