// Row reductions with subgroup operations (shaders/rows_subgroup.wgsl) against the workgroup-memory
// tree (rows_workgroup.wgsl) on the same inputs, and both against the float64 reference: sum, max,
// mean (rows and columns), softmax and log-softmax with their backward passes, cross-entropy with
// its backward, the gradient norm of clipGradNorm and loss scaling's non-finite count. SwiftShader
// runs subgroups of 4; rows are of awkward lengths (not multiples of 4, or of any lane count),
// long (many lanes per row, several subgroups meeting in workgroup memory) and many.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectGrads, gradStat } from '../../src/optim/grad-stats';
import { setReduceProfile, type ReduceProfile } from '../../src/ops/reduce';
import { rowCombine, setRowCombine, type RowCombine } from '../../src/kernels/rows';
import { runtime } from '../../src/runtime/device';
import { gpu, gpuTensor, relErr, Rng, wg } from '../helpers';
import * as ref from '../reference/reduce';

beforeAll(() => gpu());
afterAll(() => {
  setRowCombine(null);
  setReduceProfile(null);
  wg.shutdown();
});

const VARIANTS: RowCombine[] = ['subgroup', 'workgroup'];
const profiles: [string, ReduceProfile][] = [
  ['many lanes per row', { maxWorkgroup: 256, perLane: 4 }],
  ['few lanes per row', { maxWorkgroup: 64, perLane: 128 }],
];

/** Run `fn` once per variant; returns its results, checking that the variant's kernels ran. */
async function eachVariant(fn: () => Promise<Float32Array[]>): Promise<Record<RowCombine, Float32Array[]>> {
  const out = {} as Record<RowCombine, Float32Array[]>;
  for (const v of VARIANTS) {
    setRowCombine(v);
    const names: string[] = [];
    runtime().executor.observer = { onDispatch: (k) => void names.push(k.name) };
    try {
      out[v] = await fn();
    } finally {
      runtime().executor.observer = null;
      setRowCombine(null);
    }
    expect(names.some((n) => n.endsWith(`/${v}`)), `${v} kernels ran`).toBe(true);
  }
  return out;
}

/**
 * The variants agree within rounding (sums in another order), and each matches the reference.
 * `floors[i]`: the scale of result i below which |expected| does not shrink the tolerance — a sum
 * of n random-sign terms of size ≤ 1 is typically √n however close to 0 it happens to land.
 */
function agree(r: Record<RowCombine, Float32Array[]>, expected: ArrayLike<number>[], what: string, seed: number, tol = 1e-5, floors: number[] = []): void {
  expected.forEach((e, i) => {
    const floor = floors[i] ?? 1e-6;
    for (const v of VARIANTS) expect(relErr(r[v][i]!, e, floor), `${what} [${i}] ${v} vs float64 (seed ${seed})`).toBeLessThan(tol);
    expect(relErr(r.subgroup[i]!, r.workgroup[i]!, floor), `${what} [${i}] subgroup vs workgroup (seed ${seed})`).toBeLessThan(tol);
  });
}

const f32 = async (t: wg.Tensor) => Float32Array.from(await t.toArray());

it('this device runs the subgroup variant by default', () => {
  expect(runtime().hasFeature('subgroups')).toBe(true);
  expect(rowCombine()).toBe('subgroup');
});

describe.each(profiles)('%s', (_, profile) => {
  beforeAll(() => setReduceProfile(profile));
  afterAll(() => setReduceProfile(null));

  // [rows, row length]: short, odd, one lane's worth, several subgroups, long, and many rows.
  const shapes: [number, number][] = [[1, 1], [3, 5], [7, 130], [2, 1031], [1, 5000], [300, 37], [65, 259]];

  it('sum, max and mean over rows and over columns, NaN propagating through max', async () => {
    for (const [m, l] of shapes) {
      const rng = new Rng();
      const x = rng.array(m * l, -1, 1);
      if (m * l > 10) x[rng.int(m * l)] = NaN; // max must return NaN for that row (and column)
      const t = gpuTensor(x, [m, l]);
      const clean = Float64Array.from(x, (v) => (Number.isNaN(v) ? 0 : v));
      const c = gpuTensor(clean, [m, l]);
      const r = await eachVariant(async () =>
        Promise.all([wg.sum(c, 1), wg.mean(c, 1), wg.sum(c, 0), wg.max(t, 1), wg.max(t, 0)].map(f32)),
      );
      const what = `[${m}, ${l}]`;
      agree({ subgroup: r.subgroup.slice(0, 3), workgroup: r.workgroup.slice(0, 3) },
        [ref.sum(clean, [m, l], 1).data, ref.mean(clean, [m, l], 1).data, ref.sum(clean, [m, l], 0).data], `${what} sum/mean`, rng.seed,
        1e-5, [Math.sqrt(l), Math.sqrt(l) / l, Math.sqrt(m)]);
      // max is exact; a NaN in the input must come out as NaN.
      for (const v of VARIANTS) {
        for (const [i, axis] of [[3, 1], [4, 0]] as const) {
          const want = Array.from(ref.max(x, [m, l], axis).data, (e) => (Number.isNaN(e) ? 'NaN' : e));
          const got = Array.from(r[v][i]!, (e) => (Number.isNaN(e) ? 'NaN' : e));
          expect(got, `${what} max over axis ${axis}, ${v} (seed ${rng.seed})`).toEqual(want);
        }
      }
      t.dispose();
      c.dispose();
    }
  });

  it('softmax and logSoftmax, forward and backward', async () => {
    for (const [m, l] of shapes) {
      const rng = new Rng();
      const x = rng.array(m * l, -4, 4);
      const g = rng.array(m * l, -1, 1);
      const r = await eachVariant(async () => {
        const outs: Float32Array[] = [];
        for (const op of [wg.softmax, wg.logSoftmax]) {
          const t = gpuTensor(x, [m, l], true);
          const y = op(t, 1);
          y.backward(gpuTensor(g, [m, l]));
          outs.push(await f32(y), await f32(t.grad!));
          t.dispose();
          y.dispose();
        }
        return outs;
      });
      const sm = ref.softmax(x, [m, l], 1);
      const lsm = ref.logSoftmax(x, [m, l], 1);
      const dsm = new Float64Array(m * l);
      const dlsm = new Float64Array(m * l);
      for (let i = 0; i < m; i++) {
        let gy = 0;
        let gs = 0;
        for (let k = 0; k < l; k++) {
          gy += g[i * l + k]! * sm[i * l + k]!;
          gs += g[i * l + k]!;
        }
        for (let k = 0; k < l; k++) {
          dsm[i * l + k] = sm[i * l + k]! * (g[i * l + k]! - gy);
          dlsm[i * l + k] = g[i * l + k]! - sm[i * l + k]! * gs;
        }
      }
      agree(r, [sm, dsm, lsm, dlsm], `softmax [${m}, ${l}]`, rng.seed, 1e-4);
    }
  });

  it('crossEntropy, forward and backward', async () => {
    for (const [m, l] of shapes) {
      const rng = new Rng();
      const x = rng.array(m * l, -3, 3);
      const labels = Int32Array.from({ length: m }, () => rng.int(l));
      const r = await eachVariant(async () => {
        const t = gpuTensor(x, [m, l], true);
        const loss = wg.crossEntropy(t, labels);
        loss.backward();
        const out = [await f32(loss), await f32(t.grad!)];
        t.dispose();
        loss.dispose();
        return out;
      });
      const sm = ref.softmax(x, [m, l], 1);
      const dx = Float64Array.from(sm, (p, i) => (p - (labels[Math.floor(i / l)] === i % l ? 1 : 0)) / m);
      agree(r, [[ref.crossEntropy(x, m, l, labels)], dx], `crossEntropy [${m}, ${l}]`, rng.seed, 1e-4);
    }
  });
});

describe('gradient statistics', () => {
  it("clipGradNorm's norm and loss scaling's non-finite count, over tensors of awkward sizes", async () => {
    const rng = new Rng();
    // Around a workgroup's share of elements: 256 lanes × 8 (GPUs), 64 lanes × 128 (software adapters).
    const sizes = [1, 3, 2047, 2049, 8193, 5000];
    const data = sizes.map((n) => rng.array(n, -2, 2));
    data[3]![7] = Infinity;
    data[5]![4999] = NaN;
    data[5]![0] = -Infinity;
    data[4]![8192] = NaN;
    for (const [name, profile] of profiles) {
      setReduceProfile(profile);
      try {
        await gradientStats(rng, data, sizes, name);
      } finally {
        setReduceProfile(null);
      }
    }
  });
});

/** The gradient statistics of `data` under each row-combining variant, against each other and float64. */
async function gradientStats(rng: Rng, data: Float64Array[], sizes: number[], name: string): Promise<void> {
  const r = await eachVariant(async () => {
    const params = sizes.map((n, i) => {
      const p = wg.zeros([n]);
      p.grad = gpuTensor(data[i]!, [n]);
      return p;
    });
    const finite = params.slice(0, 3);
    const norm = wg.optim.clipGradNorm(finite, 1e9); // large: nothing is scaled
    const count = wg.zeros([1]);
    gradStat('unscaleCheck', collectGrads('test', params), count, { factor: 0.25 });
    const out = [await f32(norm), await f32(count), await f32(params[2]!.grad!)];
    for (const p of params) p.dispose();
    norm.dispose();
    count.dispose();
    return out;
  });
  const norm = Math.sqrt(data.slice(0, 3).reduce((s, d) => s + d.reduce((a, v) => a + v * v, 0), 0));
  agree(r, [[norm], [4], Float64Array.from(data[2]!, (v) => v * 0.25)], `gradient statistics (${name})`, rng.seed);
}
