// layerNorm and rmsNorm (fused kernels, shaders/norm.wgsl) against the float64 reference: rows of
// awkward lengths, several normalized dimensions, with and without weight and bias, gradients of
// x, weight and bias by finite differences — under both row-combine variants (subgroups and
// workgroup memory) and both lane profiles (many lanes per row as on GPUs, few as on software
// adapters). Then non-finite rows (as PyTorch), views, bad input, and tensors over the binding cap.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setRowCombine, type RowCombine } from '../../src/kernels/rows';
import { setReduceProfile, type ReduceProfile } from '../../src/ops/reduce';
import { runtime } from '../../src/runtime/device';
import { expectClose, gpu, gpuTensor, gradCheck, Rng, settleGarbage, sizeOf, wg } from '../helpers';
import * as ref from '../reference/norm';
import { opTable, type OpCase, type OpInput, type Variant } from './op-table';

beforeAll(() => gpu());
afterAll(() => {
  setRowCombine(null);
  setReduceProfile(null);
  wg.shutdown();
});

const profiles: [string, ReduceProfile][] = [
  ['many lanes per row', { maxWorkgroup: 256, perLane: 4 }],
  ['few lanes per row', { maxWorkgroup: 64, perLane: 128 }],
];
const variants: Variant[] = (['subgroup', 'workgroup'] as RowCombine[]).flatMap((c) =>
  profiles.map(([name, profile]) => ({
    name: `${c}, ${name}`,
    enter: () => {
      setRowCombine(c);
      setReduceProfile(profile);
    },
    exit: () => {
      setRowCombine(null);
      setReduceProfile(null);
    },
  })),
);

// [input shape, normalized shape, weight, bias]: rows of 1, 3, 17, 33, 65, 130 and 1000 elements,
// several normalized dimensions, many short rows (several rows per workgroup), one row; rows whose
// length is a multiple of 4 run the vec4 kernels (4, 12, 20, 1000), the others the scalar ones.
const layouts: [number[], number[], boolean, boolean][] = [
  [[1], [1], true, true],
  [[3, 4], [4], true, true],
  [[5, 2, 6], [2, 6], false, true],
  [[33, 20], [20], true, false],
  [[4, 3], [3], false, false],
  [[5, 17], [17], true, false],
  [[3, 33], [33], true, true],
  [[2, 65], [65], false, true],
  [[2, 130], [130], true, true],
  [[2, 1000], [1000], true, true],
  [[2, 3, 5], [3, 5], true, true],
  [[3, 2, 3, 11], [3, 11], true, false],
  [[65, 3], [3], true, true],
  [[7], [7], false, false],
];

const weightRange: [number, number] = [0.5, 1.5];

/**
 * Rows of k values in [-2, 2] whose spread (the std, or for rmsNorm the rms) is at least 0.25: a
 * short row can draw three nearly equal values, and there the gradient is large and float32's
 * rounding of x − mean dominates it (in PyTorch too), which the float64 check cannot tell from
 * a bug. Such rows are drawn again.
 */
function spreadRows(k: number, centred: boolean) {
  return (rng: Rng, n: number): Float64Array => {
    const out = new Float64Array(n);
    for (let r = 0; r < n; r += k) {
      let row: Float64Array;
      do row = rng.array(Math.min(k, n - r), -2, 2);
      while (k > 1 && spread(row, centred) < 0.25);
      out.set(row, r);
    }
    return out;
  };
}

function spread(row: Float64Array, centred: boolean): number {
  const mean = centred ? row.reduce((a, b) => a + b, 0) / row.length : 0;
  return Math.sqrt(row.reduce((a, b) => a + (b - mean) ** 2, 0) / row.length);
}

function layerNormCase(shape: number[], norm: number[], withW: boolean, withB: boolean, x?: OpInput): OpCase {
  const k = sizeOf(norm);
  x ??= { shape, values: spreadRows(k, true) };
  const inputs: OpInput[] = [x, ...(withW ? [{ shape: norm, range: weightRange }] : []), ...(withB ? [{ shape: norm }] : [])];
  return {
    name: `layerNorm ${JSON.stringify(shape)} over ${JSON.stringify(norm)}${withW ? ' weight' : ''}${withB ? ' bias' : ''}`,
    inputs,
    run: ([xt, ...rest]) => wg.layerNorm(xt!, norm, withW ? rest[0] : null, withB ? rest[withW ? 1 : 0] : null),
    ref: ([xv, ...rest]) => ref.layerNorm(xv!, k, withW ? rest[0]! : null, withB ? rest[withW ? 1 : 0]! : null),
    shape,
    atol: 1e-5,
    grad: sizeOf(shape) > 1000 ? { atol: 1e-3 } : undefined,
  };
}

function rmsNormCase(shape: number[], norm: number[], withW: boolean): OpCase {
  const k = sizeOf(norm);
  return {
    name: `rmsNorm ${JSON.stringify(shape)} over ${JSON.stringify(norm)}${withW ? ' weight' : ''}`,
    inputs: [{ shape, values: spreadRows(k, false) }, ...(withW ? [{ shape: norm, range: weightRange }] : [])],
    run: ([xt, wt]) => wg.rmsNorm(xt!, norm, withW ? wt : null),
    ref: ([xv, wv]) => ref.rmsNorm(xv!, k, withW ? wv! : null),
    shape,
    atol: 1e-5,
    grad: sizeOf(shape) > 1000 ? { atol: 1e-3 } : undefined,
  };
}

// Rows far from zero: mean 1000, spread ±1. Σx² − (Σx)²/K in float32 loses the variance here
// (1e6 against 0.33, float32 steps of 0.06); Welford with Chan's combination keeps it.
const largeMean = (k: number): OpInput => ({ shape: [3, k], values: (rng, n) => rng.array(n, 999, 1001) });

opTable(
  'layerNorm and rmsNorm match the float64 reference, and their gradients finite differences',
  [
    ...layouts.map(([shape, norm, w, b]) => layerNormCase(shape, norm, w, b)),
    ...layouts.map(([shape, norm, w]) => rmsNormCase(shape, norm, w)),
    ...[130, 128].map((k) => ({ ...layerNormCase([3, k], [k], true, true, largeMean(k)), name: `layerNorm of rows of ${k} with mean 1000`, atol: 2e-3, grad: false as const })),
  ],
  variants,
);

it('each row-combine variant runs its own kernels, forward and backward', async () => {
  for (const c of ['subgroup', 'workgroup'] as RowCombine[]) {
    setRowCombine(c);
    const names: string[] = [];
    runtime().executor.observer = { onDispatch: (k) => void names.push(k.name) };
    try {
      const x = wg.randn([5, 40], { requiresGrad: true });
      const w = wg.ones([40], { requiresGrad: true });
      wg.sum(wg.layerNorm(x, 40, w)).backward();
      await w.grad!.toArray();
    } finally {
      runtime().executor.observer = null;
      setRowCombine(null);
    }
    const ours = names.filter((n) => n.startsWith('layerNorm'));
    expect(ours.length, c).toBe(3); // forward, dx, column sums
    expect(ours.every((n) => n.endsWith(`/${c}`)), `${ours.join(', ')}`).toBe(true);
  }
});

describe('non-finite values, as PyTorch', () => {
  const rows = [1, NaN, 2, 1, Infinity, 2, -Infinity, 0, 1, 1, 2, 3];
  it('layerNorm: a row holding NaN or ±Inf is NaN throughout; the other rows are untouched', async () => {
    const y = Array.from(await wg.layerNorm(wg.tensor(rows, [4, 3]), 3).toArray());
    expect(y.slice(0, 9).every(Number.isNaN)).toBe(true);
    expectClose(y.slice(9), ref.layerNorm([1, 2, 3], 3, null, null), { atol: 1e-5 });
  });

  it('rmsNorm: NaN rows are NaN; an infinite element makes its row 0 and itself NaN (x · 1/√∞)', async () => {
    const y = Array.from(await wg.rmsNorm(wg.tensor(rows, [4, 3]), 3).toArray());
    expect(y.slice(0, 3).every(Number.isNaN)).toBe(true);
    expect(y.slice(3, 9).map((v) => (Number.isNaN(v) ? 'NaN' : v))).toEqual([0, 'NaN', 0, 'NaN', 0, 0]);
    expectClose(y.slice(9), ref.rmsNorm([1, 2, 3], 3, null), { atol: 1e-5 });
  });

  it('a constant row normalises to 0 (variance 0, only eps below the root)', async () => {
    const y = await wg.layerNorm(wg.full([2, 33], 7.25), 33, null, wg.full([33], 0.5)).toArray();
    expect(Array.from(y).every((v) => v === 0.5)).toBe(true);
  });
});

describe('views and gradients of any layout', () => {
  it('reads a transposed input and takes a broadcast (stride-0) upstream gradient', async () => {
    const rng = new Rng();
    const data = rng.array(17 * 9, -2, 2);
    const w = rng.array(17, 0.5, 1.5);
    const x = gpuTensor(data, [9, 17], true);
    const wt = gpuTensor(w, [17], true);
    const t = wg.transpose(x); // [17, 9]: rows of the transpose are columns of x
    const y = wg.layerNorm(wg.transpose(t), 17, wt);
    // sum() hands back a stride-0 gradient of ones.
    wg.sum(y).backward();
    expectClose(await y.toArray(), ref.layerNorm(data, 17, w, null), { seed: rng.seed, atol: 1e-5 });
    // Σ over a row of layerNorm is Σ w·x̂: its x-gradient is w-weighted and its w-gradient Σ_rows x̂.
    const dw = await wt.grad!.toArray();
    const xhat = ref.layerNorm(data, 17, null, null);
    const colSums = Array.from({ length: 17 }, (_, c) => Array.from({ length: 9 }, (_, r) => xhat[r * 17 + c]!).reduce((a, b) => a + b, 0));
    expectClose(dw, colSums, { seed: rng.seed, atol: 1e-4 });
    expect(x.grad!.shape).toEqual([9, 17]);
  });

  it('reads inputs and gradients at offsets that are not multiples of 4 (the scalar kernels)', async () => {
    const rng = new Rng();
    const data = rng.array(1 + 6 * 8, -2, 2);
    const w = rng.array(8, 0.5, 1.5);
    const dy = rng.array(1 + 6 * 8);
    const x = wg.reshape(wg.narrow(gpuTensor(data, [49]), 0, 1, 48), [6, 8]);
    expect(x.offset).toBe(1);
    const wt = gpuTensor(w, [8], true);
    const y = wg.layerNorm(x, 8, wt);
    expectClose(await y.toArray(), ref.layerNorm(data.slice(1), 8, w, null), { seed: rng.seed, atol: 1e-5 });
    y.backward(wg.reshape(wg.narrow(gpuTensor(dy, [49]), 0, 1, 48), [6, 8]));
    const xhat = ref.layerNorm(data.slice(1), 8, null, null);
    const dw = Array.from({ length: 8 }, (_, c) => Array.from({ length: 6 }, (_, r) => xhat[r * 8 + c]! * dy[1 + r * 8 + c]!).reduce((a, b) => a + b, 0));
    expectClose(await wt.grad!.toArray(), dw, { seed: rng.seed, atol: 1e-4 });
  });

  it('gradients are the same bits on every run (column sums without atomics)', async () => {
    const rng = new Rng();
    const x = gpuTensor(rng.array(300 * 40, -2, 2), [300, 40], true);
    const w = gpuTensor(rng.array(40, 0.5, 1.5), [40], true);
    const b = gpuTensor(rng.array(40), [40], true);
    const g = gpuTensor(rng.array(300 * 40), [300, 40]);
    const runs: string[] = [];
    for (let i = 0; i < 3; i++) {
      for (const t of [x, w, b]) {
        t.grad?.dispose();
        t.grad = null;
      }
      wg.layerNorm(x, [40], w, b).backward(g);
      const bits = await Promise.all([x, w, b].map(async (t) => Array.from(new Uint32Array((await t.grad!.toArray()).buffer)).join(',')));
      runs.push(bits.join('|'));
    }
    expect(new Set(runs).size).toBe(1);
  });

  it('computes only the gradients asked for (a frozen input, weight or bias)', async () => {
    const rng = new Rng();
    const data = rng.array(6 * 12, -2, 2);
    const g = rng.array(6 * 12);
    const x = gpuTensor(data, [6, 12]);
    const b = gpuTensor(rng.array(12), [12], true);
    const w = gpuTensor(rng.array(12, 0.5, 1.5), [12]);
    wg.layerNorm(x, 12, w, b).backward(gpuTensor(g, [6, 12]));
    const db = Array.from({ length: 12 }, (_, c) => Array.from({ length: 6 }, (_, r) => g[r * 12 + c]!).reduce((p, q) => p + q, 0));
    expectClose(await b.grad!.toArray(), db, { seed: rng.seed, atol: 1e-5 });
    expect(x.grad).toBeNull();
    expect(w.grad).toBeNull();
  });

  it('training with norm layers leaves live memory flat', async () => {
    const model = new wg.nn.Sequential(new wg.nn.Linear(12, 16), new wg.nn.LayerNorm(16), new wg.nn.ReLU(), new wg.nn.RMSNorm(16), new wg.nn.Linear(16, 3));
    const opt = new wg.optim.Adam(model.parameters(), { lr: 1e-2 });
    const rng = new Rng();
    const x = gpuTensor(rng.array(9 * 12), [9, 12]);
    const y = wg.tensor(Int32Array.from({ length: 9 }, () => rng.int(3)), [9], { dtype: 'int32' });
    const live: number[] = [];
    for (let i = 0; i < 4; i++) {
      opt.zeroGrad();
      const loss = wg.tidy(() => {
        const l = wg.crossEntropy(model.forward(x), y);
        l.backward();
        return l;
      });
      opt.step();
      await loss.item();
      loss.dispose();
      await settleGarbage();
      live.push(wg.memory().liveBytes);
    }
    expect(live[3]).toBe(live[1]);
  });

  it('an empty batch gives an empty output and zero weight gradients', async () => {
    const x = wg.zeros([0, 5], { requiresGrad: true });
    const w = wg.ones([5], { requiresGrad: true });
    const y = wg.layerNorm(x, 5, w);
    expect(y.shape).toEqual([0, 5]);
    wg.sum(y).backward();
    expect(Array.from(await w.grad!.toArray())).toEqual([0, 0, 0, 0, 0]);
  });

  it('methods: x.layerNorm(…) and x.rmsNorm(…)', async () => {
    const x = wg.tensor([[1, 2, 4]]);
    expectClose(await x.layerNorm(3).toArray(), ref.layerNorm([1, 2, 4], 3, null, null), { atol: 1e-5 });
    expectClose(await x.rmsNorm([3], null, 1e-6).toArray(), ref.rmsNorm([1, 2, 4], 3, null, 1e-6), { atol: 1e-5 });
  });
});

describe('bad input', () => {
  it('names the op and the shapes', () => {
    const x = wg.zeros([2, 3, 5]);
    expect(() => wg.layerNorm(x, [4])).toThrowError(wg.ShapeError);
    expect(() => wg.layerNorm(x, [4])).toThrowError('layerNorm: input [2, 3, 5] does not end with normalizedShape [4]');
    expect(() => wg.rmsNorm(x, [2, 3, 5, 1])).toThrowError('rmsNorm: input [2, 3, 5] does not end with normalizedShape [2, 3, 5, 1]');
    expect(() => wg.layerNorm(x, [3, 5], wg.ones([5]))).toThrowError(
      'layerNorm: weight [5] does not match normalizedShape [3, 5] (input [2, 3, 5])',
    );
    expect(() => wg.layerNorm(x, 5, null, wg.ones([1, 5]))).toThrowError(wg.ShapeError);
    expect(() => wg.layerNorm(x, [])).toThrowError(/layerNorm: normalizedShape must be/);
    expect(() => wg.layerNorm(x, 5, null, null, -1)).toThrowError(/layerNorm: eps must be a finite number ≥ 0, got -1/);
    const ints = wg.tensor(new Int32Array([1, 2, 3]));
    expect(() => wg.layerNorm(ints, 3)).toThrowError(wg.DTypeError);
    expect(() => wg.rmsNorm(ints, 3)).toThrowError('rmsNorm: input [3] is int32, expected float32');
    expect(() => wg.layerNorm(wg.zeros([2, 3]), 3, wg.tensor(new Int32Array([1, 1, 1])))).toThrowError(
      'layerNorm: weight [3] is int32, expected float32',
    );
  });
});

describe('tensors over the binding cap', () => {
  it('are cut into blocks of rows, forward and backward, with the reference results', async () => {
    wg.shutdown();
    await gpu({ budget: { maxBindingBytes: 16 * 1024 } });
    const rng = new Rng();
    const shape = [70, 130]; // 36 KB: three blocks or more
    const x = rng.array(sizeOf(shape), -2, 2);
    const w = rng.array(130, 0.5, 1.5);
    const b = rng.array(130);
    const d0 = runtime().executor.dispatchCount;
    const y = wg.layerNorm(gpuTensor(x, shape), 130, gpuTensor(w, [130]), gpuTensor(b, [130]));
    expectClose(await y.toArray(), ref.layerNorm(x, 130, w, b), { seed: rng.seed, atol: 1e-5 });
    expect(runtime().executor.dispatchCount - d0).toBeGreaterThan(2);
    await gradCheck({
      rng,
      inputs: [{ data: x.slice(0, 40 * 130), shape: [40, 130] }, { data: w, shape: [130] }, { data: b, shape: [130] }],
      gpuFn: ([xt, wt, bt]) => wg.layerNorm(xt!, 130, wt, bt),
      refFn: ([xv, wv, bv]) => ref.layerNorm(xv!, 130, wv!, bv!),
      atol: 1e-3,
    });
  });
});
