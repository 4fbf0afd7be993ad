// Frozen weights in f16 (Module.half({ frozenOnly: true })) where this adapter has no shader-f16
// (SwiftShader): the fallback warns once, changes nothing and computes exactly in f32. The
// pieces of f16 storage that need no f16 arithmetic run here too: the f16 → f32 widening kernel
// (core WGSL), safetensors' F16 tensors, loadStateDict and LoRA's merge() into a weight stored in
// f16. With shader-f16 the matmul pipelines that read such weights are validated by
// test/ops/matmul-f16-operand.test.ts (Dawn's null backend) and computed by scripts/gpu-check.ts.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { toFloat, toHalf } from '../../src/ops/half';
import { runtime } from '../../src/runtime/device';
import { gpu, gpuTensor, Rng, wasmBackend, wg } from '../helpers';

beforeAll(() => gpu());
afterAll(() => wg.shutdown());

/** IEEE binary16 rounding to nearest even of a float64 value (the reference for the cast). */
function toHalfRef(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const a = Math.abs(x);
  if (a >= 65520) return Math.sign(x) * Infinity;
  if (a === 0) return x;
  const e = Math.max(Math.floor(Math.log2(a)), -14);
  const ulp = 2 ** (e - 10);
  let q = a / ulp;
  const f = Math.floor(q);
  q = q - f > 0.5 || (q - f === 0.5 && f % 2 === 1) ? f + 1 : f;
  return Math.sign(x) * q * ulp;
}

const bits = async (t: wg.Tensor) => Array.from(new Uint32Array(Float32Array.from(await t.toArray()).buffer));

function model(): wg.nn.Sequential {
  wg.manualSeed(11);
  return new wg.nn.Sequential(new wg.nn.TransformerBlock(8, 2, { causal: true }), new wg.nn.Linear(8, 5));
}

describe('half({ frozenOnly: true }) without shader-f16', () => {
  it('warns once and keeps every weight float32, bit for bit: the model computes exactly as before', async () => {
    expect(runtime().hasFeature('shader-f16')).toBe(false);
    const m = model();
    wg.nn.lora(m, { rank: 2, alpha: 2 });
    const x = wg.randn([2, 3, 8], { seed: 1 });
    const before = await bits(wg.noGrad(() => m.forward(x)));
    const weights = await Promise.all(m.parameters().map(bits));
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      expect(m.half({ frozenOnly: true })).toBe(m);
      m.half({ frozenOnly: true });
      expect(warn).toHaveBeenCalledTimes(1);
      expect(String(warn.mock.calls[0]![0])).toMatch(/no shader-f16, so frozen weights stay float32/);
    } finally {
      warn.mockRestore();
    }
    expect(m.parameters().every((p) => p.dtype === 'float32')).toBe(true);
    expect(await Promise.all(m.parameters().map(bits))).toEqual(weights);
    expect(await bits(wg.noGrad(() => m.forward(x)))).toEqual(before);
    expect(() => m.half({} as { frozenOnly: true })).toThrowError(/call half\(\{ frozenOnly: true \}\)/);
    x.dispose();
    m.dispose();
  });
});

// WebGPU's: the CPU backend has no f16 tensors (toHalf refuses there).
describe.skipIf(wasmBackend)('weights stored in f16, without f16 arithmetic', () => {
  it('toFloat widens f16 exactly (inf, NaN, signed zero, subnormals) at odd sizes and view offsets', async () => {
    const rng = new Rng();
    const special = [0, -0, 1, -1, 65504, -65504, 70000, -Infinity, NaN, 2 ** -14, 2 ** -24, -3 * 2 ** -24, 1 + 2 ** -10];
    for (const n of [1, 3, 17, 65, 1031]) {
      const src = Float32Array.from({ length: n }, (_, i) => (i < special.length ? special[i]! : Math.fround(rng.normal() * 10 ** rng.int(4))));
      const h = toHalf(wg.tensor(src, [n]));
      const halves = await h.toArray();
      for (const start of n > 2 ? [0, 1, 2] : [0]) {
        const view = h.view([n - start], [1], h.offset + start);
        const f = toFloat(view);
        expect(f.dtype).toBe('float32');
        expect(f.shape).toEqual([n - start]);
        const got = await f.toArray();
        for (let i = 0; i < n - start; i++) {
          const want = halves[i + start]!;
          expect(Object.is(got[i], want), `n ${n}, start ${start}, element ${i}: ${got[i]}, expected ${want} (seed ${rng.seed})`).toBe(true);
        }
        f.dispose();
        view.dispose();
      }
      h.dispose();
    }
    expect(() => toFloat(wg.zeros([2]))).toThrowError(/toFloat: tensor \[2\] is float32, expected float16/);
  });

  it('safetensors writes f16 weights as F16 bits and reads them back exactly (as float32)', async () => {
    const rng = new Rng();
    const src = Float32Array.from(rng.array(33 * 3, -70000, 70000));
    const h = toHalf(wg.tensor(src, [33, 3]));
    const f = wg.tensor(Float32Array.from([1.5, -2]), [2]);
    const i = wg.tensor(Int32Array.from([7]), [1], { dtype: 'int32' });
    const bytes = await wg.io.saveSafetensors({ w: h, b: f, n: i });
    const header = wg.io.readSafetensorsHeader(bytes);
    expect(Object.keys(header.tensors)).toEqual(['b', 'n', 'w']); // F32, I32, F16: the reference writer's order
    expect(header.tensors.w).toMatchObject({ dtype: 'F16', shape: [33, 3], dataOffsets: [12, 12 + 33 * 3 * 2] });
    const stored = new Uint16Array(bytes.slice(header.dataStart + 12, header.dataStart + 12 + 198).buffer);
    const want = Array.from(src, toHalfRef);
    stored.forEach((b, k) => {
      const v = (b & 0x8000 ? -1 : 1) * ((b >> 10) & 31 ? ((b >> 10) & 31) === 31 ? (b & 0x3ff ? NaN : Infinity) : (1 + (b & 0x3ff) / 1024) * 2 ** (((b >> 10) & 31) - 15) : (b & 0x3ff) * 2 ** -24);
      expect(Object.is(v, want[k]!) || v === want[k], `element ${k}: bits ${b.toString(16)} are ${v}, expected ${want[k]} (seed ${rng.seed})`).toBe(true);
    });
    const back = wg.io.loadSafetensors(bytes);
    expect(back.w!.dtype).toBe('float32');
    expect(Array.from(await back.w!.toArray())).toEqual(want);
    for (const t of [h, f, i, ...Object.values(back)]) t.dispose();
  });

  it('loadStateDict rounds float32 values into an f16 weight; merge() folds a LoRA adapter into it (float64 reference)', async () => {
    const rng = new Rng();
    const [I, O, r, alpha] = [9, 5, 2, 3];
    const layer = new wg.nn.Linear(I, O);
    layer.freeze();
    const w32 = layer.weight;
    layer.weight = toHalf(w32); // as half() stores it on a device with shader-f16
    w32.dispose();
    const W = rng.array(O * I, -2, 2);
    const sd = { weight: gpuTensor(W, [O, I]), bias: gpuTensor(rng.array(O), [O]) };
    layer.loadStateDict(sd);
    expect(layer.weight.dtype).toBe('float16');
    expect(Array.from(await layer.weight.toArray())).toEqual(Array.from(W, toHalfRef));

    const model = new wg.nn.Sequential(layer);
    const adapted = wg.nn.lora(model, { rank: r, alpha, targets: ['0'] });
    const A = rng.array(r * I);
    const B = rng.array(O * r);
    model.loadStateDict({ '0.lora.A': gpuTensor(A, [r, I]), '0.lora.B': gpuTensor(B, [O, r]) }, { strict: false });
    adapted.merge();
    expect(layer.weight.dtype).toBe('float16');
    expect(layer.lora).toBe(null);
    const merged = await layer.weight.toArray();
    for (let o = 0; o < O; o++) {
      for (let k = 0; k < I; k++) {
        let d = 0;
        for (let j = 0; j < r; j++) d += B[o * r + j]! * A[j * I + k]!;
        const exact = toHalfRef(W[o * I + k]!) + (alpha / r) * d;
        // The f32 sum rounded once to f16: within half an f16 ulp of the exact value (and a float32 rounding).
        const ulp = 2 ** (Math.max(Math.floor(Math.log2(Math.abs(exact))), -14) - 10);
        expect(Math.abs(merged[o * I + k]! - exact), `(${o}, ${k}) seed ${rng.seed}`).toBeLessThanOrEqual(ulp * 0.5 + Math.abs(exact) * 2 ** -22);
      }
    }
    for (const t of Object.values(sd)) t.dispose();
    model.dispose();
  });
});
