// The argument block of every wasm kernel, by name (kernels.json beside this file, which also
// generates the kernels' own offsets). A run names its arguments as launch() does for the WGSL
// twin: { bind, params, constants }. The block is a 16-byte header — word 0 the next unclaimed
// task, word 1 the number of threads — then the params, the constants and the bindings (byte
// addresses in the wasm memory), one 32-bit word each (an array field: several).

import table from './kernels.json';

export const HEADER_BYTES = 16;

/** A kernel argument: a number, a flag (an override constant) or a list (shapes, strides). */
export type WasmArg = number | boolean | readonly number[];

export interface WasmRunArgs {
  /** Storage bindings: byte addresses in the pool's memory. */
  bind: Readonly<Record<string, number>>;
  params?: Readonly<Record<string, WasmArg>>;
  constants?: Readonly<Record<string, WasmArg>>;
}

interface Field {
  name: string;
  /** Byte offset in the block. */
  offset: number;
  /** Words: 1, or the length of an array field. */
  words: number;
  float: boolean;
}

export interface Signature {
  kernel: string;
  bind: readonly Field[];
  params: readonly Field[];
  constants: readonly Field[];
  bytes: number;
}

interface Spec {
  bind: string[];
  params: string[];
  constants: string[];
}

function signature(kernel: string, spec: Spec): Signature {
  let offset = HEADER_BYTES;
  const fields = (list: readonly string[]): Field[] =>
    list.map((s) => {
      const [name, kind] = s.split(':') as [string, string | undefined];
      const words = kind && /^\d+$/.test(kind) ? Number(kind) : 1;
      const f = { name, offset, words, float: kind === 'f32' };
      offset += 4 * words;
      return f;
    });
  const params = fields(spec.params);
  const constants = fields(spec.constants);
  const bind = fields(spec.bind);
  return { kernel, bind, params, constants, bytes: offset };
}

export const SIGNATURES: ReadonlyMap<string, Signature> = new Map(
  Object.entries(table as Record<string, Spec | string>)
    .filter((e): e is [string, Spec] => !e[0].startsWith('//'))
    .map(([k, spec]) => [k, signature(k, spec)]),
);

/** Kernel names in export order (a worker calls kernels by index). */
export const KERNEL_NAMES: readonly string[] = [...SIGNATURES.keys()];

/**
 * Write `args` into the block at `view`'s byte 0. Every binding, param and constant of the kernel
 * must be given (array fields may be shorter than their length: the rest is 0), and no other.
 */
export function packArgs(sig: Signature, args: WasmRunArgs, view: DataView): void {
  for (let i = 0; i < HEADER_BYTES; i += 4) view.setInt32(i, 0, true);
  const groups = [['bind', sig.bind, args.bind], ['params', sig.params, args.params ?? {}], ['constants', sig.constants, args.constants ?? {}]] as const;
  for (const [group, fields, values] of groups) {
    for (const f of fields) {
      const v = (values as Record<string, WasmArg | undefined>)[f.name];
      const what = `wasm kernel ${sig.kernel}: ${group}.${f.name}`;
      if (v === undefined) throw new Error(`${what} is missing`);
      if (typeof v === 'object') {
        if (f.words === 1 || v.length > f.words) throw new Error(`${what} takes ${f.words === 1 ? 'a number' : `up to ${f.words} numbers`}, got ${v.length}`);
        for (let i = 0; i < f.words; i++) word(view, f, f.offset + 4 * i, i < v.length ? v[i]! : 0, what);
      } else {
        if (f.words !== 1) throw new Error(`${what} takes a list of up to ${f.words} numbers`);
        word(view, f, f.offset, typeof v === 'boolean' ? Number(v) : v, what);
      }
    }
    for (const name of Object.keys(values)) {
      if (!fields.some((f) => f.name === name)) throw new Error(`wasm kernel ${sig.kernel}: unknown ${group}.${name} (${fields.map((f) => f.name).join(', ') || 'none'})`);
    }
  }
}

function word(view: DataView, f: Field, at: number, v: number, what: string): void {
  if (f.float) return view.setFloat32(at, v, true);
  if (!Number.isInteger(v) || v < -0x80000000 || v > 0xffffffff) throw new Error(`${what} must be a 32-bit integer, got ${v}`);
  if (v < 0) view.setInt32(at, v, true);
  else view.setUint32(at, v, true);
}
