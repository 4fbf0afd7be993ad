// scaledDotProductAttention against the float64 reference (test/reference/attention.ts) at shapes
// that are no multiple of any tile (T and Dh of 1, 3, 17, 33, 65; heads 1 and 3; Tq ≠ Tk), causal
// and not, with additive masks, dropout (the reference draws the kernels' hash, so values and
// gradients with dropout are exact), rank-3 inputs; gradients of q, k and v against central
// finite differences. The kernel variants — quads sharing loads by subgroup swaps (SwiftShader's
// default) or through workgroup memory, and no sharing — each against the reference; scalar and
// vec4 loads are chosen by the operands (Dh and alignment). Then the composite, views, dropout's
// statistics, NaN, autocast and bad input.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setOperandSharing } from '../../src/kernels/sharing';
import { setAttentionConfig } from '../../src/kernels/tuning/attention-config';
import { autocastF16 } from '../../src/ops/autocast';
import { runtime } from '../../src/runtime/device';
import { expectClose, gpu, gpuTensor, relErr, Rng, sizeOf, wg } from '../helpers';
import * as ref from '../reference/attention';
import { opTable, type OpCase, type Variant } from './op-table';

beforeAll(() => gpu());
afterAll(() => {
  setAttentionConfig(null);
  setOperandSharing(null);
  wg.shutdown();
});

interface CaseOptions {
  causal?: boolean;
  /** Shape of an additive mask input (values in [-2, 2), some -inf where `maskInf`). */
  mask?: number[];
  scale?: number;
  dropout?: number;
  seed?: number;
  /** [B, T, Dh] inputs (H = 1) instead of [B, H, T, Dh]. */
  rank3?: boolean;
  grad?: boolean;
}

/** A table case: q [B, H, Tq, Dh], k and v [B, H, Tk, Dh] (and the mask), the op, the reference. */
function attention(name: string, [B, H, Tq, Tk, Dh]: [number, number, number, number, number], o: CaseOptions = {}): OpCase {
  const qShape = o.rank3 ? [B, Tq, Dh] : [B, H, Tq, Dh];
  const kShape = o.rank3 ? [B, Tk, Dh] : [B, H, Tk, Dh];
  const mask = o.mask;
  const opts = { causal: o.causal, scale: o.scale, dropout: o.dropout, seed: o.seed };
  return {
    name,
    inputs: [{ shape: qShape }, { shape: kShape }, { shape: kShape }, ...(mask ? [{ shape: mask, range: [-2, 2] as [number, number] }] : [])],
    run: ([q, k, v, m]) => wg.scaledDotProductAttention(q!, k!, v!, { ...opts, mask: m }),
    ref: ([q, k, v, m]) => ref.attention(q!, k!, v!, { B, H: o.rank3 ? 1 : H, Tq, Tk, Dh, ...opts, mask: m && { data: m, shape: mask! } }),
    shape: qShape,
    atol: 2e-5,
    grad: o.grad === false ? false : { wrt: [0, 1, 2] },
  };
}

const cases: OpCase[] = [
  attention('one query, one key, Dh 1', [1, 1, 1, 1, 1]),
  attention('3 heads, T 17, Dh 3', [2, 3, 17, 17, 3]),
  attention('causal, 3 heads, T 17, Dh 33', [1, 3, 17, 17, 33], { causal: true }),
  attention('causal, Tq 3 < Tk 33 (top-left aligned)', [2, 1, 3, 33, 8], { causal: true }),
  attention('causal, Tq 33 > Tk 5, mask [Tq, Tk], Dh 17', [1, 2, 33, 5, 17], { causal: true, mask: [33, 5] }),
  attention('causal, T 65, Dh 16', [1, 1, 65, 65, 16], { causal: true }),
  attention('padding mask [B, 1, 1, Tk], Dh 32', [2, 3, 9, 7, 32], { mask: [2, 1, 1, 7] }),
  attention('mask [B, H, Tq, Tk], scale 0.3', [1, 2, 5, 6, 4], { mask: [1, 2, 5, 6], scale: 0.3 }),
  attention('[B, T, Dh] inputs', [3, 1, 9, 11, 5], { rank3: true, causal: true }),
  attention('dropout 0.3 (the seed\'s mask)', [1, 2, 17, 13, 8], { causal: true, dropout: 0.3, seed: 1234 }),
  attention('Dh 65', [1, 1, 3, 5, 65], { grad: false }),
];
opTable('scaledDotProductAttention', cases);

// Every kernel variant on a few cases (vec4 and scalar loads, mask, dropout).
const variants: Variant[] = [
  { name: 'quads share loads through workgroup memory', enter: () => setOperandSharing('workgroup'), exit: () => setOperandSharing(null) },
  { name: 'no sharing, 4 invocations a workgroup', enter: () => setAttentionConfig({ shared: false, wg: 4 }), exit: () => setAttentionConfig(null) },
  { name: 'quads share loads by subgroup swaps, 16 invocations', enter: () => setAttentionConfig({ shared: true, wg: 16 }), exit: () => setAttentionConfig(null) },
];
opTable('scaledDotProductAttention variants', [cases[1]!, cases[3]!, cases[4]!, cases[9]!], variants);

/** Random float32 values as a tensor and as float64s. */
function input(rng: Rng, shape: number[], requiresGrad = false): [wg.Tensor, Float64Array] {
  const data = rng.array(sizeOf(shape));
  return [gpuTensor(data, shape, requiresGrad), data];
}

describe('scaledDotProductAttention', () => {
  it('equals the composite matmul → mask → softmax → matmul, values and gradients (dropout 0)', async () => {
    const rng = new Rng();
    const [B, H, Tq, Tk, Dh] = [2, 3, 17, 20, 8];
    const [q] = input(rng, [B, H, Tq, Dh], true);
    const [k] = input(rng, [B, H, Tk, Dh], true);
    const [v] = input(rng, [B, H, Tk, Dh], true);
    const [mask] = input(rng, [Tq, Tk]);
    const g = input(rng, [B, H, Tq, Dh])[0];
    const causal = wg.tensor(Float32Array.from({ length: Tq * Tk }, (_, i) => (i % Tk > Math.floor(i / Tk) ? -Infinity : 0)), [Tq, Tk]);
    const composite = (m: wg.Tensor) =>
      wg.matmul(wg.softmax(wg.add(wg.mul(wg.matmul(q, wg.transpose(k, [0, 1, 3, 2])), 1 / Math.sqrt(Dh)), m), -1), v);
    for (const isCausal of [false, true]) {
      const grads = async (o: wg.Tensor) => {
        o.backward(g);
        const out = [await o.toArray(), ...(await Promise.all([q, k, v].map((t) => t.grad!.toArray())))];
        for (const t of [q, k, v]) t.grad = null;
        return out;
      };
      const fused = await grads(wg.scaledDotProductAttention(q, k, v, { mask, causal: isCausal }));
      const plain = await grads(composite(isCausal ? wg.add(mask, causal) : mask));
      ['output', 'dq', 'dk', 'dv'].forEach((what, i) => expect(relErr(fused[i]!, plain[i]!), `${what}, causal ${isCausal} (seed ${rng.seed})`).toBeLessThan(2e-5));
    }
  });

  it('keeps the mask for the backward pass: gradients are the same when the caller disposes it after the forward', async () => {
    const rng = new Rng();
    const [q, k, v] = [0, 1, 2].map(() => input(rng, [1, 2, 6, 4], true)[0]!);
    const maskData = rng.array(6 * 6, -2, 2);
    const grads = async (dispose: boolean) => {
      const mask = gpuTensor(maskData, [6, 6]);
      const o = wg.scaledDotProductAttention(q!, k!, v!, { mask });
      if (dispose) mask.dispose();
      o.backward(wg.ones(o.shape));
      const out = await Promise.all([q!, k!, v!].map((t) => t.grad!.toArray()));
      for (const t of [q!, k!, v!]) t.grad = null;
      return out;
    };
    const kept = await grads(false);
    const disposed = await grads(true);
    kept.forEach((g, i) => expect(Array.from(disposed[i]!)).toEqual(Array.from(g)));
  });

  it('reads q, k and v where they lie in one [B, T, H, 3·Dh] projection (strided views, offsets): no copy', async () => {
    const rng = new Rng();
    const [B, T, H, Dh] = [2, 9, 3, 8];
    const [x, data] = input(rng, [B, T, H, 3 * Dh]);
    const part = (i: number) => wg.transpose(wg.narrow(x, 3, i * Dh, Dh), [0, 2, 1, 3]);
    const pick = (i: number) => {
      const out = new Float64Array(B * H * T * Dh);
      for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let t = 0; t < T; t++) for (let d = 0; d < Dh; d++) {
        out[((b * H + h) * T + t) * Dh + d] = data[((b * T + t) * H + h) * 3 * Dh + i * Dh + d]!;
      }
      return out;
    };
    const kernels: string[] = [];
    runtime().executor.observer = { onDispatch: (k) => void kernels.push(k.name) };
    let out: wg.Tensor;
    try {
      out = wg.scaledDotProductAttention(part(0), part(1), part(2), { causal: true });
    } finally {
      runtime().executor.observer = null;
    }
    expect(kernels).toEqual(['attention.forward.vec4']); // offsets and strides are multiples of 4: vec4 loads
    expectClose(await out.toArray(), ref.attention(pick(0), pick(1), pick(2), { B, H, Tq: T, Tk: T, Dh, causal: true }), { seed: rng.seed, atol: 2e-5 });
  });

  it('dropout: the seed makes it repeatable; without one, wg.manualSeed does', async () => {
    const rng = new Rng();
    const [q, k, v] = [0, 1, 2].map(() => input(rng, [1, 2, 9, 8])[0]!);
    const run = (opts: wg.AttentionOptions) => wg.scaledDotProductAttention(q!, k!, v!, { dropout: 0.5, ...opts }).toArray();
    const a = await run({ seed: 7 });
    expect(Array.from(await run({ seed: 7 }))).toEqual(Array.from(a));
    expect(Array.from(await run({ seed: 8 }))).not.toEqual(Array.from(a));
    wg.manualSeed(3);
    const b = await run({});
    wg.manualSeed(3);
    expect(Array.from(await run({}))).toEqual(Array.from(b));
  });

  it('dropout keeps the expectation: the mean over seeds is the result without dropout', async () => {
    const rng = new Rng();
    const [B, H, T, Dh] = [1, 2, 5, 4];
    const [q] = input(rng, [B, H, T, Dh]);
    const [k] = input(rng, [B, H, T, Dh]);
    const [v] = input(rng, [B, H, T, Dh]);
    const exact = await wg.scaledDotProductAttention(q, k, v).toArray();
    const n = 400;
    const sum = new Float64Array(exact.length);
    const sq = new Float64Array(exact.length);
    for (let s = 0; s < n; s++) {
      const y = await wg.scaledDotProductAttention(q, k, v, { dropout: 0.4, seed: s }).toArray();
      y.forEach((x, i) => {
        sum[i] += x;
        sq[i] += x * x;
      });
    }
    // Each element's mean is within 5 standard errors of the exact value (a false alarm per
    // element is a 6e-7 chance), and the standard errors are not zero (dropout did something).
    exact.forEach((e, i) => {
      const mean = sum[i]! / n;
      const se = Math.sqrt(Math.max(0, sq[i]! / n - mean * mean) / n);
      expect(se, `element ${i}: the outputs vary with the seed`).toBeGreaterThan(0);
      expect(Math.abs(mean - e), `element ${i}: mean ${mean} vs ${e} (standard error ${se}, seed ${rng.seed})`).toBeLessThan(5 * se + 1e-6);
    });
    // The hash drops a weight with probability p: over many (i, j) the share dropped is 0.4.
    let dropped = 0;
    const pairs = 200_000;
    for (let i = 0; i < pairs; i++) if (!ref.kept(99, i % 7, 1000, i % 1000, Math.floor(i / 1000), 0.4)) dropped++;
    expect(Math.abs(dropped / pairs - 0.4)).toBeLessThan(0.005);
  });

  it('a row whose keys are all masked gives NaN (as softmax over -inf does); NaN in q propagates', async () => {
    const q = wg.tensor([1, 2, 3, 4, NaN, 1, 1, 1], [1, 1, 2, 4]);
    const k = wg.ones([1, 1, 3, 4]);
    const v = wg.ones([1, 1, 3, 4]);
    const mask = wg.tensor([-Infinity, -Infinity, -Infinity, 0, 0, 0], [2, 3]);
    const a = await wg.scaledDotProductAttention(q, k, v, { mask }).toArray();
    expect(Array.from(a.slice(0, 4)).every(Number.isNaN)).toBe(true);
    expect(Array.from(a.slice(4)).every(Number.isNaN)).toBe(true); // row 1 holds a NaN
    const b = await wg.scaledDotProductAttention(wg.tensor([1, 2, 3, 4], [1, 1, 1, 4]), k, v, { mask: wg.tensor([0, -Infinity, 0], [3]) }).toArray();
    expectClose(b, [1, 1, 1, 1]);
  });

  it('under autocast without shader-f16 it computes in f32: the same bits', async () => {
    expect(runtime().hasFeature('shader-f16')).toBe(false);
    const rng = new Rng();
    const [q, k, v] = [0, 1, 2].map(() => input(rng, [2, 3, 7, 8])[0]!);
    const plain = await wg.scaledDotProductAttention(q!, k!, v!, { causal: true }).toArray();
    const auto = await autocastF16(() => wg.scaledDotProductAttention(q!, k!, v!, { causal: true })).toArray();
    expect(Array.from(auto)).toEqual(Array.from(plain));
  });

  it('frees what it made: forward and backward leave liveBytes flat', async () => {
    const rng = new Rng();
    const [q, k, v] = [0, 1, 2].map(() => input(rng, [1, 2, 9, 8], true)[0]!);
    const step = async () => {
      const loss = wg.tidy(() => {
        const l = wg.sum(wg.scaledDotProductAttention(q!, k!, v!, { causal: true, dropout: 0.1 }));
        l.backward();
        return l;
      });
      await loss.item();
      loss.dispose();
      for (const t of [q, k, v]) {
        t!.grad?.dispose();
        t!.grad = null;
      }
    };
    await step();
    const before = wg.memory().liveBytes;
    for (let i = 0; i < 3; i++) await step();
    expect(wg.memory().liveBytes).toBe(before);
  });

  it('bad input: a ShapeError or DTypeError naming the op and the shapes', () => {
    const t = (shape: number[]) => wg.zeros(shape);
    const sdpa = wg.scaledDotProductAttention;
    expect(() => sdpa(t([2, 3, 5, 8]), t([2, 4, 5, 8]), t([2, 4, 5, 8]))).toThrowError(wg.ShapeError);
    expect(() => sdpa(t([2, 3, 5, 8]), t([2, 4, 5, 8]), t([2, 4, 5, 8]))).toThrowError(
      /scaledDotProductAttention: q, k and v must have the same batch and head dimensions, got q \[2, 3, 5, 8\], k \[2, 4, 5, 8\], v \[2, 4, 5, 8\]/,
    );
    expect(() => sdpa(t([2, 3, 5, 8]), t([2, 3, 5, 4]), t([2, 3, 5, 4]))).toThrowError(/q and k must have the same head dimension, got 8 and 4/);
    expect(() => sdpa(t([2, 3, 5, 8]), t([2, 3, 6, 8]), t([2, 3, 7, 8]))).toThrowError(/v must have k's shape, got q \[2, 3, 5, 8\], k \[2, 3, 6, 8\], v \[2, 3, 7, 8\]/);
    expect(() => sdpa(t([5, 8]), t([5, 8]), t([5, 8]))).toThrowError(/must all be \[B, H, T, Dh\] \(or all \[B, T, Dh\]\), got q \[5, 8\]/);
    expect(() => sdpa(t([1, 2, 5, 8]), t([1, 2, 6, 8]), t([1, 2, 6, 8]), { mask: t([5, 5]) })).toThrowError(
      /mask \[5, 5\] cannot be broadcast to the scores' shape \[B, H, Tq, Tk\] = \[1, 2, 5, 6\]/,
    );
    expect(() => sdpa(t([1, 2, 5, 8]), t([1, 2, 6, 8]), t([1, 2, 6, 8]), { mask: t([3, 1, 5, 6]) })).toThrowError(wg.ShapeError);
    const ints = wg.tensor(new Int32Array(40), [1, 1, 5, 8], { dtype: 'int32' });
    expect(() => sdpa(ints, t([1, 1, 5, 8]), t([1, 1, 5, 8]))).toThrowError(wg.DTypeError);
    expect(() => sdpa(ints, t([1, 1, 5, 8]), t([1, 1, 5, 8]))).toThrowError(/scaledDotProductAttention: q \[1, 1, 5, 8\] is int32, expected float32/);
    expect(() => sdpa(t([1, 1, 5, 8]), t([1, 1, 5, 8]), t([1, 1, 5, 8]), { mask: wg.tensor(new Int32Array(5), [5], { dtype: 'int32' }) })).toThrowError(/mask \[5\] is int32/);
    expect(() => sdpa(t([1, 1, 5, 8]), t([1, 1, 5, 8]), t([1, 1, 5, 8]), { dropout: 1 })).toThrowError(/dropout must be in \[0, 1\)/);
    expect(() => sdpa(t([1, 1, 5, 8]), t([1, 1, 0, 8]), t([1, 1, 0, 8]))).toThrowError(/k and v have no keys/);
    expect(() => sdpa(t([1, 1, 2, 300]), t([1, 1, 2, 300]), t([1, 1, 2, 300]))).toThrowError(wg.LimitError);
    expect(() => sdpa(t([1, 1, 5, 8]), t([1, 1, 5, 8]), t([1, 1, 5, 8]), { mask: wg.zeros([5, 5], { requiresGrad: true }) })).toThrowError(/mask \[5, 5\] requires grad/);
  });

  it('empty batches and queries give empty results', async () => {
    expect(wg.scaledDotProductAttention(wg.zeros([0, 2, 3, 4]), wg.zeros([0, 2, 3, 4]), wg.zeros([0, 2, 3, 4])).shape).toEqual([0, 2, 3, 4]);
    expect(wg.scaledDotProductAttention(wg.zeros([1, 2, 0, 4]), wg.zeros([1, 2, 3, 4]), wg.zeros([1, 2, 3, 4])).shape).toEqual([1, 2, 0, 4]);
  });
});
