// A kernel's uniform parameters, by name. The WGSL `struct Params` of a kernel's module is the one
// declaration of its fields: it is parsed once (parseParams) into byte offsets that follow WGSL's
// uniform layout rules (scalars 4-byte aligned, vec2 8, vec4 and arrays of vec4 16), and each
// launch writes the named values there (encodeParams). A name the struct lacks is an error; a
// field left out is zero, as is the unused tail of an array.

import { PARAMS_SLOT_BYTES } from '../runtime/executor';

export type Scalar = 'u32' | 'i32' | 'f32';

export interface ParamField {
  readonly name: string;
  readonly scalar: Scalar;
  /** Byte offset in the struct. */
  readonly offset: number;
  /** Scalars the field holds: 1, 2 or 4 for scalars and vectors, 4·n for array<vec4, n>. */
  readonly count: number;
}

export interface ParamsLayout {
  readonly fields: ReadonlyMap<string, ParamField>;
  /** Size of the struct, a multiple of 16 (at least 16). */
  readonly bytes: number;
}

import type { ParamValues } from '../runtime/program';

export type { ParamValue, ParamValues } from '../runtime/program';

const SCALAR_SUFFIX: Record<string, Scalar> = { u: 'u32', i: 'i32', f: 'f32' };

/** One WGSL type → its scalar, scalar count and alignment, or null when the encoder cannot write it. */
function typeOf(type: string): { scalar: Scalar; count: number; align: number } | null {
  const t = type.replace(/\s+/g, '');
  if (t === 'u32' || t === 'i32' || t === 'f32') return { scalar: t, count: 1, align: 4 };
  const vec = /^vec([24])(?:([uif])|<(u32|i32|f32)>)$/.exec(t);
  if (vec) {
    const n = Number(vec[1]);
    return { scalar: vec[2] ? SCALAR_SUFFIX[vec[2]]! : (vec[3] as Scalar), count: n, align: n * 4 };
  }
  const arr = /^array<vec4(?:([uif])|<(u32|i32|f32)>),(\d+)u?>$/.exec(t);
  if (arr) return { scalar: arr[1] ? SCALAR_SUFFIX[arr[1]]! : (arr[2] as Scalar), count: 4 * Number(arr[3]), align: 16 };
  return null;
}

/**
 * The layout of the struct `name` (by default `Params`) in WGSL `code`, or null when the code
 * declares none. Throws on a field type the encoder cannot write (test/tooling/shaders.test.ts
 * parses every shader's structs).
 */
export function parseParams(code: string, where = 'a kernel', name = 'Params'): ParamsLayout | null {
  const m = new RegExp(`struct\\s+${name}\\s*\\{([^}]*)\\}`).exec(code.replace(/\/\/[^\n]*/g, ''));
  if (!m) return null;
  const fields = new Map<string, ParamField>();
  let offset = 0;
  for (const decl of m[1]!.split(/,(?![^<]*>)/)) {
    const d = decl.trim();
    if (!d) continue;
    const f = /^(\w+)\s*:\s*(.+)$/.exec(d);
    const type = f && typeOf(f[2]!);
    if (!f || !type) throw new Error(`${where}: Params field "${d}" has a type the params encoder cannot write`);
    offset = Math.ceil(offset / type.align) * type.align;
    fields.set(f[1]!, { name: f[1]!, scalar: type.scalar, offset, count: type.count });
    offset += type.count * 4;
  }
  const bytes = Math.max(16, Math.ceil(offset / 16) * 16);
  if (bytes > PARAMS_SLOT_BYTES) throw new Error(`${where}: Params is ${bytes} bytes, more than a params slot (${PARAMS_SLOT_BYTES})`);
  return { fields, bytes };
}

// One scratch slot: the executor copies it at once, so every launch may reuse it.
const scratch = new Uint8Array(PARAMS_SLOT_BYTES);
const view = new DataView(scratch.buffer);

/** The bytes of `values` laid out as `layout` (a view of a scratch buffer, valid until the next call). */
export function encodeParams(kernel: string, layout: ParamsLayout | null, values: ParamValues): Uint8Array {
  const bytes = layout?.bytes ?? 16;
  scratch.fill(0, 0, bytes);
  for (const name in values) {
    const field = layout?.fields.get(name);
    if (!field) {
      const known = layout ? [...layout.fields.keys()].join(', ') : 'none';
      throw new Error(`${kernel}: its Params has no field "${name}" (fields: ${known})`);
    }
    const v = values[name]!;
    const list = typeof v === 'object' ? v : [typeof v === 'boolean' ? +v : v];
    if (list.length > field.count) {
      throw new Error(`${kernel}: Params field "${name}" holds ${field.count} values, got ${list.length}`);
    }
    for (let i = 0; i < list.length; i++) write(kernel, field, field.offset + 4 * i, list[i]!);
  }
  return scratch.subarray(0, bytes);
}

function write(kernel: string, field: ParamField, at: number, x: number): void {
  if (field.scalar === 'f32') {
    view.setFloat32(at, x, true);
    return;
  }
  const [lo, hi] = field.scalar === 'u32' ? [0, 0xffffffff] : [-0x80000000, 0x7fffffff];
  if (!Number.isInteger(x) || x < lo || x > hi) {
    // An offset or size that is negative, fractional or too large is a bug upstream: say where.
    throw new Error(`${kernel}: Params field "${field.name}" is ${field.scalar}, got ${x}`);
  }
  if (field.scalar === 'u32') view.setUint32(at, x, true);
  else view.setInt32(at, x, true);
}
