import { beforeAll, describe, expect, it } from 'vitest';
import { gpu, Rng, wg } from '../helpers';
import { loadSafetensors, readSafetensorsHeader, saveSafetensors } from '../../src/io';

beforeAll(() => gpu());

const utf8 = new TextEncoder();

/** A safetensors file from its parts: the length field, the header text as given, the data. */
function file(header: string, data: Uint8Array = new Uint8Array(0), lengthField?: bigint): Uint8Array {
  const h = utf8.encode(header);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, lengthField ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

function f32le(values: number[]): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const v = new DataView(out.buffer);
  values.forEach((x, i) => v.setFloat32(i * 4, x, true));
  return out;
}

function i32le(values: number[]): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const v = new DataView(out.buffer);
  values.forEach((x, i) => v.setInt32(i * 4, x, true));
  return out;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function bits(a: Float32Array | Int32Array): number[] {
  return Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
}

function headerText(bytes: Uint8Array): string {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return new TextDecoder().decode(bytes.subarray(8, 8 + n));
}

function disposeAll(sd: Record<string, wg.Tensor>): void {
  for (const t of Object.values(sd)) t.dispose();
}

describe('safetensors round trip', () => {
  it('is bit-exact for float32 specials (NaN payloads, −0, denormals, ±Inf) and int32', async () => {
    const rng = new Rng();
    const specialBits = [
      0x7fc00000, 0xffc00000, 0x7f800001, 0x7fa5a5a5, 0xff812345, // NaNs: quiet, negative, signalling, payloads
      0x80000000, 0x00000000, // −0, +0
      0x00000001, 0x807fffff, 0x00400000, // smallest, largest-negative and middle denormals
      0x7f800000, 0xff800000, 0x7f7fffff, 0x00800000, // ±Inf, largest finite, smallest normal
    ];
    const special = new Float32Array(new Uint32Array(specialBits).buffer);
    const random = Float32Array.from({ length: 2 * 3 * 5 }, () => rng.normal() * 1e3);
    const ints = Int32Array.from([-(2 ** 31), 2 ** 31 - 1, -1, 0, 1, ...Array.from({ length: 12 }, () => (rng.uniform() * 2 ** 32) | 0)]);
    const sd = {
      special: wg.tensor(special, [special.length]),
      'layer.0.weight': wg.tensor(random, [2, 3, 5]),
      steps: wg.tensor(ints, [ints.length], { dtype: 'int32' }),
      scalar: wg.tensor(Float32Array.of(rng.normal()), []),
      empty: wg.tensor(new Float32Array(0), [0, 3]),
    };
    const bytes = await saveSafetensors(sd);
    const back = loadSafetensors(bytes);
    expect(Object.keys(back).sort()).toEqual(Object.keys(sd).sort());
    for (const [name, t] of Object.entries(sd)) {
      const b = back[name]!;
      expect(b.shape, name).toEqual(t.shape);
      expect(b.dtype, name).toBe(t.dtype);
      const original = await t.toArray();
      expect(bits(await b.toArray()), `${name} (seed ${rng.seed})`).toEqual(bits(original));
    }
    expect(bits(await sd.special.toArray()), 'the GPU keeps the specials').toEqual(specialBits);
    disposeAll(sd);
    disposeAll(back);
  });

  it('writes what the reference implementation writes (header, order, padding)', async () => {
    // One tensor whose header is exactly 64 bytes: no padding.
    const values = [0, 1, 2, 3, 4, 5];
    const t = wg.tensor(values, [1, 2, 3]);
    const expected = file('{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}', f32le(values));
    expect(Array.from(await saveSafetensors({ 'attn.0': t }))).toEqual(Array.from(expected));
    t.dispose();
    // No tensors: "{}" padded with six spaces; metadata comes first.
    expect(Array.from(await saveSafetensors({}))).toEqual(Array.from(file('{}      ')));
    expect(Array.from(await saveSafetensors({}, { framework: 'pt' }))).toEqual(
      Array.from(file('{"__metadata__":{"framework":"pt"}}     ')),
    );
  });

  it('packs F32 tensors before I32 ones, each group by name, contiguously', async () => {
    const sd = {
      zeta: wg.tensor([1, 2, 3]),
      count: wg.tensor(Int32Array.of(7), [1], { dtype: 'int32' }),
      alpha: wg.tensor([[4, 5]]),
      beta: wg.tensor(Int32Array.of(8, 9), [2], { dtype: 'int32' }),
    };
    const header = readSafetensorsHeader(await saveSafetensors(sd));
    expect(Object.entries(header.tensors).map(([n, i]) => [n, i.dtype, i.dataOffsets])).toEqual([
      ['alpha', 'F32', [0, 8]],
      ['zeta', 'F32', [8, 20]],
      ['beta', 'I32', [20, 28]],
      ['count', 'I32', [28, 32]],
    ]);
    disposeAll(sd);
  });

  it('pads the header with spaces to a multiple of 8, and it is valid JSON', async () => {
    for (let len = 1; len <= 9; len++) {
      const name = 'w'.repeat(len);
      const t = wg.tensor([len]);
      const bytes = await saveSafetensors({ [name]: t }, { note: 'ü'.repeat(len) });
      const text = headerText(bytes);
      expect(utf8.encode(text).length % 8, name).toBe(0);
      expect(text.trimEnd().endsWith('}'), name).toBe(true);
      expect(/^ *$/.test(text.slice(text.trimEnd().length)), name).toBe(true);
      expect(JSON.parse(text)[name], name).toEqual({ dtype: 'F32', shape: [1], data_offsets: [0, 4] });
      t.dispose();
    }
  });

  it('keeps the metadata (and reports {} when there is none)', async () => {
    const t = wg.tensor([1]);
    const metadata = { format: 'pt', epoch: '12', note: 'Grüße, 数字 ✓', empty: '' };
    expect(readSafetensorsHeader(await saveSafetensors({ t }, metadata)).metadata).toEqual(metadata);
    expect(readSafetensorsHeader(await saveSafetensors({ t })).metadata).toEqual({});
    t.dispose();
  });

  it('writes non-ASCII names as UTF-8 and reads them back', async () => {
    const t = wg.tensor([1, 2]);
    const back = loadSafetensors(await saveSafetensors({ 'größe.权重': t }));
    expect(Object.keys(back)).toEqual(['größe.权重']);
    expect(Array.from(await back['größe.权重']!.toArray())).toEqual([1, 2]);
    t.dispose();
    disposeAll(back);
  });
});

describe('safetensors files written by others', () => {
  it('loads a hand-built file: unpadded header, keys not in offset order, I32 and F32', async () => {
    const header =
      '{"b":{"dtype":"F32","shape":[3],"data_offsets":[16,28]},' +
      '"__metadata__":{"source":"hand"},' +
      '"a":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}';
    const bytes = file(header, concat(i32le([1, -2, 3, 2147483647]), f32le([0.5, -1.25, 3e38])));
    const { tensors, metadata, dataStart } = readSafetensorsHeader(bytes);
    expect(Object.keys(tensors)).toEqual(['a', 'b']);
    expect(metadata).toEqual({ source: 'hand' });
    expect(dataStart).toBe(8 + header.length);
    const sd = loadSafetensors(bytes);
    expect(sd.a!.dtype).toBe('int32');
    expect(sd.a!.shape).toEqual([2, 2]);
    expect(Array.from(await sd.a!.toArray())).toEqual([1, -2, 3, 2147483647]);
    expect(sd.b!.dtype).toBe('float32');
    expect(Array.from(await sd.b!.toArray())).toEqual([0.5, -1.25, Math.fround(3e38)]);
    disposeAll(sd);
  });

  it('a tensor named "__proto__" is an entry like any other, not the prototype of what loading returns', async () => {
    const bytes = file(
      '{"__proto__":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}',
      f32le([1, 2]),
    );
    expect(Object.keys(readSafetensorsHeader(bytes).tensors)).toEqual(['__proto__', 'w']);
    const before = wg.memory().liveTensors;
    const sd = loadSafetensors(bytes);
    expect(Object.keys(sd)).toEqual(['__proto__', 'w']);
    expect(Object.getPrototypeOf(sd)).toBeNull();
    expect(Array.from(await sd['__proto__']!.toArray())).toEqual([1]);
    disposeAll(sd);
    expect(wg.memory().liveTensors).toBe(before);
  });

  it('loads from a Uint8Array that is a view into a larger buffer', async () => {
    const inner = file('{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', f32le([7, 8]));
    const outer = new Uint8Array(inner.length + 3);
    outer.set(inner, 3);
    const sd = loadSafetensors(outer.subarray(3));
    expect(Array.from(await sd.x!.toArray())).toEqual([7, 8]);
    disposeAll(sd);
  });
});

describe('corrupt safetensors files are rejected, and nothing is loaded', () => {
  const good = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}';
  const data = f32le([1, 2, 3]);
  const cases: [string, () => Uint8Array, RegExp, typeof wg.WebGradError?][] = [
    ['a file shorter than the length field', () => new Uint8Array(5), /5 bytes.*8-byte header length/],
    ['a header length past the end', () => file(good, data, BigInt(good.length + data.length + 1)), /runs past the end of the file/],
    ['a header length over the limit', () => file(good, data, 2n ** 40n), /over the format's limit/, wg.LimitError],
    ['a header that is not UTF-8', () => concat(file('{"a'), Uint8Array.of(0xff, 0xfe)).map((b, i, a) => (i === 0 ? a.length - 8 : b)), /not valid UTF-8/],
    ['a header that is not JSON', () => file('{"a":{"dtype":"F32",', data), /not valid JSON/],
    ['a header that is not an object', () => file('[1, 2]', data), /starting with "\{"/],
    ['an unknown dtype', () => file(good.replace('"F32"', '"F33"'), data), /tensor "a": unknown dtype "F33"/],
    ['a dtype webgrad does not hold', () => file(good.replace('"F32","shape":[2]', '"BF16","shape":[4]'), data), /tensor "a" is BF16/, wg.DTypeError],
    ['a negative dimension', () => file(good.replace('[2]', '[-2]'), data), /tensor "a": shape \[-2\]/],
    ['offsets that are not a pair', () => file(good.replace('[0,8]', '[0]'), data), /tensor "a": data_offsets \[0\]/],
    ['offsets with begin after end', () => file(good.replace('[8,12]', '[12,8]'), data), /tensor "b": data_offsets \[12,8\]/],
    ['a truncated data section', () => file(good, data.subarray(0, 10)), /tensor "b".*run past the end of the data section \(10 bytes\).*truncated/],
    ['overlapping tensors', () => file(good.replace('"shape":[1],"data_offsets":[8,12]', '"shape":[1],"data_offsets":[4,8]'), data), /overlaps "a"/],
    ['a gap between tensors', () => file(good.replace('"shape":[2],"data_offsets":[0,8]', '"shape":[1],"data_offsets":[0,4]'), data), /bytes 4–8 .* no tensor \(a gap between "a" and "b"\)/],
    ['trailing bytes', () => file(good, concat(data, new Uint8Array(4))), /cover 12 bytes but the data section has 16/],
    ['shape × dtype not the byte length', () => file(good.replace('[2]', '[3]'), data), /tensor "a": shape \[3\] of F32 needs 12 bytes, but data_offsets \[0, 8\] hold 8/],
    ['metadata that is not strings', () => file(good.replace('{"a"', '{"__metadata__":{"epoch":3},"a"'), data), /"__metadata__" entry "epoch" is 3/],
    ['a tensor entry that is not an object', () => file('{"a":[0,8]}', data.subarray(0, 8)), /tensor "a": its entry is \[0,8\]/],
  ];

  it('the unmodified file loads (so each case below fails for its own reason)', async () => {
    const sd = loadSafetensors(file(good, data));
    expect(Array.from(await sd.a!.toArray())).toEqual([1, 2]);
    disposeAll(sd);
  });

  for (const [what, make, message, type] of cases) {
    it(what, () => {
      const before = wg.memory().liveTensors;
      const bytes = make();
      expect(() => loadSafetensors(bytes)).toThrow(type ?? wg.WebGradError);
      expect(() => loadSafetensors(bytes)).toThrow(message);
      expect(wg.memory().liveTensors).toBe(before);
    });
  }
});

describe('saving checks its input', () => {
  it('refuses disposed tensors, the reserved name and non-string metadata', async () => {
    const t = wg.tensor([1]);
    await expect(saveSafetensors({ __metadata__: t })).rejects.toThrow(/"__metadata__" is reserved/);
    await expect(saveSafetensors({ t }, { epoch: 3 as unknown as string })).rejects.toThrow(/metadata "epoch" is a number/);
    t.dispose();
    await expect(saveSafetensors({ w: t })).rejects.toThrow(wg.DisposedError);
    await expect(saveSafetensors({ w: t })).rejects.toThrow(/tensor "w" \[1\] was disposed/);
  });
});
