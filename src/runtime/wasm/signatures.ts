// The argument block of every wasm kernel, by name (kernels.json beside this file, which also generates the
// kernels' own offsets): a 16-byte header — word 0 the next unclaimed task, word 1 the number of
// threads — then the kernel's 32-bit fields in order. Fields are named as in the matching WGSL
// kernel's Params struct and override constants; bindings are byte addresses in the memory.

import table from './kernels.json';

export const HEADER_BYTES = 16;

/** A kernel argument: a number, a flag (an override constant) or a list (shapes, strides). */
export type WasmArg = number | boolean | readonly number[];
export type WasmArgs = Readonly<Record<string, WasmArg>>;

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
  fields: readonly Field[];
  bytes: number;
}

function signature(kernel: string, spec: readonly string[]): Signature {
  let offset = HEADER_BYTES;
  const fields = spec.map((s) => {
    const [name, kind] = s.split(':') as [string, string | undefined];
    const words = kind && /^\d+$/.test(kind) ? Number(kind) : 1;
    const f = { name, offset, words, float: kind === 'f32' };
    offset += 4 * words;
    return f;
  });
  return { kernel, fields, bytes: offset };
}

export const SIGNATURES: ReadonlyMap<string, Signature> = new Map(
  Object.entries(table as Record<string, string[] | string>)
    .filter((e): e is [string, string[]] => !e[0].startsWith('//'))
    .map(([k, spec]) => [k, signature(k, spec)]),
);

/** Kernel names in export order (a worker calls kernels by index). */
export const KERNEL_NAMES: readonly string[] = [...SIGNATURES.keys()];

/**
 * Write `args` into the block at `view`'s byte 0: every field of the kernel must be given (array
 * fields may be shorter than their length: the rest is 0), and no other.
 */
export function packArgs(sig: Signature, args: WasmArgs, view: DataView): void {
  for (let i = 0; i < HEADER_BYTES; i += 4) view.setInt32(i, 0, true);
  for (const f of sig.fields) {
    const v = args[f.name];
    if (v === undefined) throw new Error(`wasm kernel ${sig.kernel}: missing argument ${f.name}`);
    if (typeof v === 'object') {
      if (f.words === 1 || v.length > f.words) {
        throw new Error(`wasm kernel ${sig.kernel}: argument ${f.name} takes ${f.words === 1 ? 'a number' : `up to ${f.words} numbers`}, got ${v.length}`);
      }
      for (let i = 0; i < f.words; i++) word(view, f, f.offset + 4 * i, i < v.length ? v[i]! : 0);
    } else {
      if (f.words !== 1) throw new Error(`wasm kernel ${sig.kernel}: argument ${f.name} takes a list of up to ${f.words} numbers`);
      word(view, f, f.offset, typeof v === 'boolean' ? Number(v) : v);
    }
  }
  for (const name of Object.keys(args)) {
    if (!sig.fields.some((f) => f.name === name)) throw new Error(`wasm kernel ${sig.kernel}: unknown argument ${name}`);
  }
}

function word(view: DataView, f: Field, at: number, v: number): void {
  if (f.float) return view.setFloat32(at, v, true);
  if (!Number.isInteger(v) || v < -0x80000000 || v > 0xffffffff) {
    throw new Error(`wasm kernel argument ${f.name} must be a 32-bit integer, got ${v}`);
  }
  if (v < 0) view.setInt32(at, v, true);
  else view.setUint32(at, v, true);
}
