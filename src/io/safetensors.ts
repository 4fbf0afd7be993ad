// Checkpoints in Hugging Face's safetensors format, readable by Python's `safetensors`:
//
//   8 bytes   N, the header length (u64, little-endian)
//   N bytes   UTF-8 JSON: { "__metadata__": {string: string}, name: { "dtype": "F32" | "I32" | "F16",
//             "shape": [...], "data_offsets": [begin, end] }, ... }, padded with spaces to a
//             multiple of 8 so that the data section starts aligned
//   the rest  the data section: each tensor's elements, row-major, little-endian; data_offsets are
//             relative to its start, and the tensors tile it exactly (no gaps, no overlaps)
//
// Writing follows the reference implementation byte for byte (tensors sorted by dtype, F32 before
// I32 before F16, then by name; `__metadata__` first). Reading checks the whole file before it
// creates a single GPU tensor, so a corrupt file never leaves a half-loaded model behind.
// F16: a weight stored in float16 (Module.half) is written as F16; an F16 tensor of a file is
// read as float32 (exactly: every half is a float), which loadStateDict stores back in float16
// where the module keeps that weight in float16.

import { tensor } from '../creation';
import { checkShape } from '../checks';
import { DisposedError, DTypeError, LimitError, WebGradError } from '../runtime/errors';
import { formatShape, halfToFloat, Tensor, type DType } from '../tensor';

/** The safetensors dtypes webgrad reads and writes. */
export type SafetensorsDType = 'F32' | 'I32' | 'F16';

export interface SafetensorsTensorInfo {
  dtype: SafetensorsDType;
  shape: number[];
  /** [begin, end) in bytes, relative to the start of the data section. */
  dataOffsets: [number, number];
}

export interface SafetensorsHeader {
  /** Every tensor's entry, in file (offset) order. */
  tensors: Record<string, SafetensorsTensorInfo>;
  /** The free-form `__metadata__` strings ({} when the file has none). */
  metadata: Record<string, string>;
  /** Where the data section starts in the file: 8 + N. */
  dataStart: number;
}

const TO_SAFETENSORS: Record<DType, SafetensorsDType> = { float32: 'F32', int32: 'I32', float16: 'F16' };
const FROM_SAFETENSORS: Record<SafetensorsDType, DType> = { F32: 'float32', I32: 'int32', F16: 'float32' };
/** The reference writer's order of dtypes (descending in its Dtype enum): F32, then I32, then F16. */
const DTYPE_ORDER: Record<SafetensorsDType, number> = { F32: 0, I32: 1, F16: 2 };
/** Bytes per element of every dtype the format defines (to tell "unsupported" from "unknown"). */
const FORMAT_DTYPE_BYTES: Record<string, number> = {
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1, I16: 2, U16: 2, F16: 2, BF16: 2,
  I32: 4, U32: 4, F32: 4, F64: 8, I64: 8, U64: 8,
};
/** The reference implementation refuses larger headers; so does this one. */
const MAX_HEADER_BYTES = 100_000_000;
const METADATA_KEY = '__metadata__';

/** The file for `stateDict` (async: the tensors are read back from the GPU). */
export async function saveSafetensors(
  stateDict: Record<string, Tensor>,
  metadata: Record<string, string> = {},
): Promise<Uint8Array> {
  const encoder = new TextEncoder();
  const entries = Object.entries(stateDict).map(([name, t]) => {
    if (!(t instanceof Tensor)) throw new WebGradError(`saveSafetensors: "${name}" is not a Tensor (got ${typeof t})`);
    if (t.disposed) throw new DisposedError(`saveSafetensors: tensor "${name}" ${formatShape(t.shape)} was disposed`);
    if (name === METADATA_KEY) throw new WebGradError(`saveSafetensors: "${METADATA_KEY}" is reserved and cannot name a tensor`);
    if (t.dtype === 'float16' && !t.isContiguous) throw new DTypeError(`saveSafetensors: "${name}" is a float16 view that is not contiguous`);
    return { name, key: encoder.encode(name), tensor: t, dtype: TO_SAFETENSORS[t.dtype] };
  });
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') throw new WebGradError(`saveSafetensors: metadata "${k}" is a ${typeof v}; values must be strings`);
  }
  entries.sort((a, b) => (a.dtype === b.dtype ? compareBytes(a.key, b.key) : DTYPE_ORDER[a.dtype] - DTYPE_ORDER[b.dtype]));

  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header[METADATA_KEY] = metadata;
  let offset = 0;
  for (const e of entries) {
    const end = offset + e.tensor.size * (e.dtype === 'F16' ? 2 : 4);
    header[e.name] = { dtype: e.dtype, shape: e.tensor.shape, data_offsets: [offset, end] };
    offset = end;
  }
  const json = encoder.encode(JSON.stringify(header));
  const n = Math.ceil(json.length / 8) * 8;
  const data = await Promise.all(
    entries.map(async (e) => {
      if (e.tensor.size === 0) return new Float32Array(0);
      const values = await e.tensor.toArray();
      return e.dtype === 'F16' ? halfBits(values as Float32Array) : values;
    }),
  );

  const out = new Uint8Array(8 + n + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + n);
  let at = 8 + n;
  for (const d of data) {
    out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), at);
    at += d.byteLength;
  }
  return out;
}

/**
 * The tensors of a safetensors file, as new GPU tensors (float32 or int32), in an object without
 * a prototype: names come from the file, and one such as "__proto__" must stay a plain entry.
 */
export function loadSafetensors(bytes: Uint8Array): Record<string, Tensor> {
  const { tensors, dataStart } = readSafetensorsHeader(bytes);
  const out: Record<string, Tensor> = Object.create(null);
  const made: Tensor[] = [];
  try {
    for (const [name, info] of Object.entries(tensors)) {
      const t = tensor(safetensorsValues(bytes, dataStart, info), info.shape, { dtype: FROM_SAFETENSORS[info.dtype] });
      made.push(t);
      out[name] = t;
    }
  } catch (e) {
    for (const t of made) t.dispose(); // all or nothing, even when the GPU refuses one
    throw e;
  }
  return out;
}

/**
 * The values of one tensor of a file whose header readSafetensorsHeader checked: int32 for I32,
 * else float32 (F16 widened exactly). For readers that build their tensors one at a time.
 */
export function safetensorsValues(bytes: Uint8Array, dataStart: number, info: SafetensorsTensorInfo): Float32Array | Int32Array {
  // slice() copies into a fresh, aligned buffer; the typed array keeps the bits exactly.
  const raw = bytes.slice(dataStart + info.dataOffsets[0], dataStart + info.dataOffsets[1]).buffer;
  return info.dtype === 'I32' ? new Int32Array(raw) : info.dtype === 'F16' ? halfValues(new Uint16Array(raw)) : new Float32Array(raw);
}

/** The header of a safetensors file, fully checked against the file (no GPU work). */
export function readSafetensorsHeader(bytes: Uint8Array): SafetensorsHeader {
  if (bytes.length < 8) {
    throw new WebGradError(
      `safetensors: the file is ${bytes.length} bytes; it must start with an 8-byte header length (empty or truncated file?)`,
    );
  }
  const n64 = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER_BYTES)) {
    throw new LimitError(
      `safetensors: the header length field says ${n64} bytes, over the format's limit of ${MAX_HEADER_BYTES}: ` +
        'not a safetensors file, or a corrupt one',
    );
  }
  const n = Number(n64);
  const dataStart = 8 + n;
  if (dataStart > bytes.length) {
    throw new WebGradError(
      `safetensors: the header length (${n} bytes) runs past the end of the file (${bytes.length} bytes): ` +
        'the file is truncated or not safetensors',
    );
  }
  const parsed = parseHeaderJson(bytes.subarray(8, dataStart));
  const dataBytes = bytes.length - dataStart;

  const tensors: [string, SafetensorsTensorInfo][] = [];
  let metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(parsed)) {
    if (name === METADATA_KEY) metadata = checkMetadata(value);
    else tensors.push([name, checkTensorInfo(name, value, dataBytes)]);
  }
  tensors.sort(([, a], [, b]) => a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1]);
  checkTiling(tensors, dataBytes);
  return { tensors: Object.fromEntries(tensors), metadata, dataStart };
}

function parseHeaderJson(raw: Uint8Array): Record<string, unknown> {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
  } catch {
    throw new WebGradError(`safetensors: the ${raw.length}-byte header is not valid UTF-8: the file is corrupt`);
  }
  if (!text.startsWith('{')) {
    throw new WebGradError(
      `safetensors: the header should be a JSON object starting with "{", but starts with ${JSON.stringify(text.slice(0, 16))}`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new WebGradError(`safetensors: the header is not valid JSON (${(e as Error).message}): the file is corrupt`);
  }
  if (!isObject(parsed)) throw new WebGradError('safetensors: the header is JSON but not an object of tensor entries');
  return parsed;
}

function checkMetadata(value: unknown): Record<string, string> {
  if (!isObject(value)) throw new WebGradError(`safetensors: "${METADATA_KEY}" must be an object of strings`);
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string') {
      throw new WebGradError(`safetensors: "${METADATA_KEY}" entry "${k}" is ${JSON.stringify(v)}; values must be strings`);
    }
  }
  return value as Record<string, string>;
}

function checkTensorInfo(name: string, value: unknown, dataBytes: number): SafetensorsTensorInfo {
  const what = `safetensors: tensor "${name}"`;
  if (!isObject(value)) throw new WebGradError(`${what}: its entry is ${JSON.stringify(value)}, not an object`);
  const { dtype, shape, data_offsets: offsets } = value;
  if (typeof dtype !== 'string' || !(dtype in FORMAT_DTYPE_BYTES)) {
    throw new WebGradError(
      `${what}: unknown dtype ${JSON.stringify(dtype)} (safetensors dtypes are ${Object.keys(FORMAT_DTYPE_BYTES).join(', ')})`,
    );
  }
  if (!(dtype in FROM_SAFETENSORS)) {
    throw new DTypeError(
      `${what} is ${dtype}; webgrad loads F32, F16 and I32 tensors only (convert it before saving, e.g. t.float() in PyTorch)`,
    );
  }
  if (!Array.isArray(shape) || !shape.every(isCount)) {
    throw new WebGradError(`${what}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
  }
  checkShape(what, shape);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount) || offsets[0] > offsets[1]) {
    throw new WebGradError(`${what}: data_offsets ${JSON.stringify(offsets)} is not a pair [begin, end] with 0 ≤ begin ≤ end`);
  }
  const [begin, end] = offsets as [number, number];
  if (end > dataBytes) {
    throw new WebGradError(
      `${what}: data_offsets [${begin}, ${end}] run past the end of the data section (${dataBytes} bytes): ` +
        'the file is truncated',
    );
  }
  const bytes = shape.reduce((a: number, d: number) => a * d, 1) * FORMAT_DTYPE_BYTES[dtype]!;
  if (bytes !== end - begin) {
    throw new WebGradError(
      `${what}: shape ${formatShape(shape)} of ${dtype} needs ${bytes} bytes, but data_offsets [${begin}, ${end}] ` +
        `hold ${end - begin}`,
    );
  }
  return { dtype: dtype as SafetensorsDType, shape, dataOffsets: [begin, end] };
}

/** The tensors (sorted by offset) must cover the data section exactly, as the reference requires. */
function checkTiling(tensors: [string, SafetensorsTensorInfo][], dataBytes: number): void {
  let covered = 0;
  let previous = '(the start of the data section)';
  for (const [name, { dataOffsets: [begin, end] }] of tensors) {
    if (begin > covered) {
      throw new WebGradError(
        `safetensors: bytes ${covered}–${begin} of the data section belong to no tensor (a gap between ` +
          `${previous} and "${name}"): the header is corrupt`,
      );
    }
    if (begin < covered) {
      throw new WebGradError(
        `safetensors: tensor "${name}" (data_offsets [${begin}, ${end}]) overlaps ${previous}, which ends at ${covered}: ` +
          'the header is corrupt',
      );
    }
    covered = end;
    previous = `"${name}"`;
  }
  if (covered !== dataBytes) {
    throw new WebGradError(
      `safetensors: the tensors cover ${covered} bytes but the data section has ${dataBytes}: ` +
        `${dataBytes - covered} trailing bytes belong to no tensor`,
    );
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isCount(v: unknown): v is number {
  return Number.isSafeInteger(v) && (v as number) >= 0;
}

/** The f32 values of f16 bits. */
function halfValues(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = halfToFloat(bits[i]!);
  return out;
}

/** The f16 bits of values that are halves (read back from a float16 tensor: exact). */
function halfBits(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let i = 0; i < values.length; i++) {
    f[0] = values[i]!;
    const b = u[0]!;
    const sign = (b >>> 16) & 0x8000;
    const exp = (b >>> 23) & 0xff;
    const mant = b & 0x7fffff;
    if (exp === 0xff) out[i] = sign | 0x7c00 | (mant ? 0x200 : 0); // inf, NaN
    else if (exp >= 113) out[i] = sign | ((exp - 112) << 10) | (mant >>> 13); // a normal half
    else out[i] = sign | Math.round(Math.abs(values[i]!) * 2 ** 24); // a subnormal half (or zero)
  }
  return out;
}

/** Byte-wise order of UTF-8 names, as Rust's String ordering in the reference writer. */
function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}
