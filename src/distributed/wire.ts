// How values travel in the all-reduce: the session's wire format.
//   'f32'  float32, exact: the sums are those of the CPU in the ring's order (default).
//   'f16'  IEEE binary16, half the bytes, with error feedback: whoever rounds a value for the wire
//          keeps what the rounding lost (its residual) and adds it to its own contribution at the
//          next sync, so nothing is lost over time, only delayed by one sync.
// Rounding is to nearest, ties to even (as a GPU's f16 conversion); values past the f16 range
// saturate to ±65504 (the residual keeps the excess); ±Infinity and NaN pass through (with a zero
// residual: nothing finite to carry).

import { halfToFloat } from '../tensor';

export type WireFormat = 'f32' | 'f16';

/** The dtype a gradient message declares for its values in each wire format. */
export const WIRE_DTYPE = { f32: 'float32', f16: 'float16' } as const satisfies Record<WireFormat, string>;

export type WireDType = (typeof WIRE_DTYPE)[WireFormat];

export function bytesPerValue(wire: WireFormat): number {
  return wire === 'f16' ? 2 : 4;
}

export function isWireFormat(v: unknown): v is WireFormat {
  return v === 'f32' || v === 'f16';
}

/** Values as they go on the wire (`residual`, when given, receives value − sent value, element by element). */
export function encodeWire(wire: WireFormat, values: Float32Array, residual?: Float32Array): Uint8Array {
  if (wire === 'f32') {
    residual?.fill(0);
    return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  }
  const half = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    const h = floatToHalf(v);
    half[i] = h;
    if (residual) residual[i] = Number.isFinite(v) ? v - halfToFloat(h) : 0;
  }
  return new Uint8Array(half.buffer);
}

/** The values of a payload in wire format `wire` (`count` of them; the payload's size is checked before). */
export function decodeWire(wire: WireFormat, payload: Uint8Array, count: number): Float32Array {
  if (wire === 'f32') {
    if (payload.byteOffset % 4 === 0) return new Float32Array(payload.buffer, payload.byteOffset, count);
    return new Float32Array(payload.slice(0, count * 4).buffer);
  }
  const half = payload.byteOffset % 2 === 0 ? new Uint16Array(payload.buffer, payload.byteOffset, count) : new Uint16Array(payload.slice(0, count * 2).buffer);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = halfToFloat(half[i]!);
  return out;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The binary16 bits nearest to the float32 `v` (ties to even), saturating at ±65504. */
export function floatToHalf(v: number): number {
  f32[0] = v;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // Infinity, NaN (quiet)
  const e = exp - 127 + 15; // the f16 exponent
  if (e >= 0x1f) return sign | 0x7bff; // past the range: the largest finite f16
  if (e <= 0) {
    // A subnormal f16 (or zero): the mantissa with its implicit 1, shifted into place, rounded.
    if (e < -10) return sign;
    const m = mant | 0x800000;
    const shift = 14 - e;
    let h = m >>> shift;
    const rest = m & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++; // may carry into the exponent: still right
  if ((h & 0x7c00) === 0x7c00) return sign | 0x7bff; // rounded up past the range: saturate
  return sign | h;
}
