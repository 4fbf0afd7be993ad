import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectClose, gpu, gpuTensor, gradCheck, Rng, sizeOf, wg } from '../helpers';
import * as ref from '../reference/pool';
import type { PoolConfig } from '../reference/pool';

beforeAll(() => gpu());

type Pool = (x: wg.Tensor, k: number | [number, number], o?: wg.Pool2dOptions) => wg.Tensor;
const pools: [string, Pool, (x: ArrayLike<number>, c: PoolConfig) => Float64Array][] = [
  ['maxPool2d', wg.maxPool2d, ref.maxPool2d],
  ['avgPool2d', wg.avgPool2d, ref.avgPool2d],
];

// Odd sizes, remainders that the windows drop, overlapping windows (stride < k), padding,
// non-square kernels, and a case with many workgroups.
const configs: PoolConfig[] = [
  { shape: [1, 1, 1, 1], k: [1, 1], stride: [1, 1], padding: [0, 0] },
  { shape: [2, 3, 7, 9], k: [2, 2], stride: [2, 2], padding: [0, 0] },
  { shape: [1, 2, 5, 5], k: [3, 3], stride: [1, 1], padding: [0, 0] },
  { shape: [2, 1, 7, 6], k: [3, 3], stride: [2, 2], padding: [1, 1] },
  { shape: [1, 3, 9, 11], k: [2, 3], stride: [1, 2], padding: [1, 1] },
  { shape: [3, 2, 17, 13], k: [3, 2], stride: [2, 1], padding: [1, 0] },
  { shape: [1, 1, 4, 3], k: [4, 3], stride: [1, 1], padding: [2, 1] },
  { shape: [2, 17, 33, 33], k: [2, 2], stride: [2, 2], padding: [0, 0] },
  // Windows that tile the input exactly (max pooling's backward takes its one-per-window path).
  { shape: [2, 3, 8, 6], k: [2, 2], stride: [2, 2], padding: [0, 0] },
  { shape: [1, 2, 6, 9], k: [2, 3], stride: [2, 3], padding: [0, 0] },
];

const describeConfig = (c: PoolConfig): string => `x ${c.shape} k ${c.k} s ${c.stride} p ${c.padding}`;
const options = (c: PoolConfig): wg.Pool2dOptions => ({ stride: c.stride, padding: c.padding });

describe('forward matches the float64 reference', () => {
  for (const [name, op, refOp] of pools) {
    it(name, async () => {
      for (const cfg of configs) {
        const rng = new Rng();
        // All-negative inputs for max pooling: padding that read as 0 instead of -inf would show.
        const x = rng.array(sizeOf(cfg.shape), name === 'maxPool2d' ? -3 : -1, name === 'maxPool2d' ? -1 : 1);
        const out = op(gpuTensor(x, cfg.shape), cfg.k, options(cfg));
        expect(out.shape).toEqual(ref.outShape(cfg));
        expectClose(await out.toArray(), refOp(x, cfg), { seed: rng.seed, what: `${name} ${describeConfig(cfg)}` });
      }
    });

    it(`${name} reads strided and offset views`, async () => {
      const rng = new Rng();
      const cfg: PoolConfig = { shape: [2, 3, 5, 7], k: [3, 2], stride: [2, 1], padding: [1, 1] };
      const x = rng.array(sizeOf(cfg.shape));
      // Stored as [N, C, W, H] and viewed as [N, C, H, W].
      const stored = new Float64Array(x.length);
      for (let p = 0; p < 6; p++) for (let i = 0; i < 5; i++) for (let j = 0; j < 7; j++) stored[p * 35 + j * 5 + i] = x[p * 35 + i * 7 + j]!;
      const view = gpuTensor(stored, [2, 3, 7, 5]).transpose([0, 1, 3, 2]);
      expect(view.isContiguous).toBe(false);
      expectClose(await op(view, cfg.k, options(cfg)).toArray(), refOp(x, cfg), { seed: rng.seed, what: 'transposed' });
      // The second image of a batch of three: a view with an element offset.
      const batch = new Float64Array(3 * 105);
      batch.set(x.subarray(105, 210), 105);
      const second = wg.narrow(gpuTensor(batch, [3, 3, 5, 7]), 0, 1, 1);
      expect(second.offset).toBe(105);
      const one: PoolConfig = { ...cfg, shape: [1, 3, 5, 7] };
      expectClose(await op(second, cfg.k, options(cfg)).toArray(), refOp(x.subarray(105), one), { seed: rng.seed, what: 'offset' });
    });
  }

  it('stride defaults to the kernel size and k may be a pair; methods exist', async () => {
    const x = wg.randn([1, 2, 6, 9]);
    expect(wg.maxPool2d(x, 3).shape).toEqual([1, 2, 2, 3]);
    expect(wg.avgPool2d(x, [2, 3]).shape).toEqual([1, 2, 3, 3]);
    expect(x.maxPool2d(2, { padding: 1 }).shape).toEqual([1, 2, 4, 5]);
    expect(x.avgPool2d(3, { stride: 1 }).shape).toEqual([1, 2, 4, 7]);
  });

  it('avgPool2d counts padded zeros (count_include_pad=True)', async () => {
    const out = await wg.avgPool2d(wg.ones([1, 1, 2, 2]), 2, { stride: 1, padding: 1 }).toArray();
    expect(Array.from(out)).toEqual([0.25, 0.5, 0.25, 0.5, 1, 0.5, 0.25, 0.5, 0.25]);
  });

  it('maxPool2d propagates NaN', async () => {
    const out = await wg.maxPool2d(wg.tensor([1, NaN, 3, 2, 5, 6, 7, 8], [1, 1, 2, 4]), 2).toArray();
    expect(Number.isNaN(out[0])).toBe(true);
    expect(out[1]).toBe(8);
  });
});

/** Distinct values at least 0.01 apart in random order: no ties a finite difference could flip. */
// Values at least 0.008 apart, shuffled: no two in a window are within the finite-difference
// step (1e-3) of each other, so no difference crosses from one maximum to another.
function distinct(rng: Rng, n: number): Float64Array {
  const v = Float64Array.from({ length: n }, (_, i) => Math.fround((i - n / 2) * 0.01 + 2e-3 * rng.uniform()));
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [v[i], v[j]] = [v[j]!, v[i]!];
  }
  return v;
}

describe('backward matches finite differences', () => {
  const gradConfigs = [...configs.slice(0, 7), ...configs.slice(-2)];
  for (const [name, op, refOp] of pools) {
    it(name, async () => {
      for (const cfg of gradConfigs) {
        const rng = new Rng();
        await gradCheck({
          rng,
          inputs: [{ data: distinct(rng, sizeOf(cfg.shape)), shape: cfg.shape }],
          gpuFn: ([x]) => op(x!, cfg.k, options(cfg)),
          refFn: ([x]) => refOp(x!, cfg),
        });
      }
    });

    it(`${name} backward reads a strided output gradient`, async () => {
      const rng = new Rng();
      const cfg: PoolConfig = { shape: [1, 2, 6, 6], k: [3, 3], stride: [1, 1], padding: [1, 1] };
      const data = distinct(rng, sizeOf(cfg.shape));
      const x = gpuTensor(data, cfg.shape, true);
      const out = op(x, cfg.k, options(cfg));
      const gStored = rng.array(sizeOf(out.shape));
      // g is stored transposed; the reference gradient of Σ out·g is checked through the vjp below.
      const g = gpuTensor(gStored, [1, 2, 6, 6]).transpose([0, 1, 3, 2]);
      out.backward(g);
      const gLogical = await g.toArray();
      const expected = vjp(refOp, data, cfg, gLogical);
      expectClose(await x.grad!.toArray(), expected, { seed: rng.seed, what: `${name} strided g` });
    });
  }

  it('maxPool2d sends the gradient to the first maximum of a window, like PyTorch', async () => {
    const x = wg.ones([1, 1, 4, 4], { requiresGrad: true });
    wg.maxPool2d(x, 2).backward(wg.ones([1, 1, 2, 2]));
    expect(Array.from(await x.grad!.toArray())).toEqual([1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0]);
  });

  it('frees the argmax with the graph and leaks nothing', () => {
    const before = wg.memory().liveTensors;
    wg.tidy(() => {
      wg.maxPool2d(wg.randn([1, 2, 5, 5]), 2);
      const x = wg.randn([1, 2, 5, 5], { requiresGrad: true });
      wg.maxPool2d(x, 3, { stride: 1, padding: 1 }).backward(wg.ones([1, 2, 5, 5]));
    });
    expect(wg.memory().liveTensors).toBe(before);
  });
});

/** The exact vector-Jacobian product of a piecewise-linear pool, by unit perturbations. */
function vjp(f: (x: ArrayLike<number>, c: PoolConfig) => Float64Array, x: Float64Array, cfg: PoolConfig, g: ArrayLike<number>): Float64Array {
  const eps = 1e-4;
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const up = Float64Array.from(x);
    const down = Float64Array.from(x);
    up[i] += eps;
    down[i] -= eps;
    const a = f(up, cfg);
    const b = f(down, cfg);
    let s = 0;
    for (let k = 0; k < a.length; k++) s += ((a[k]! - b[k]!) / (2 * eps)) * g[k]!;
    out[i] = s;
  }
  return out;
}

describe('errors name the op and the shapes', () => {
  it('rank, dtype, kernel, stride and padding', () => {
    const x = wg.zeros([1, 1, 4, 4]);
    expect(() => wg.maxPool2d(wg.zeros([1, 4, 4]), 2)).toThrowError(wg.ShapeError);
    expect(() => wg.maxPool2d(wg.zeros([1, 4, 4]), 2)).toThrowError(/maxPool2d: input must be 4-D \[N, C, H, W\], got \[1, 4, 4\]/);
    expect(() => wg.avgPool2d(wg.zeros([1, 1, 4, 4], { dtype: 'int32' }), 2)).toThrowError(wg.DTypeError);
    expect(() => wg.avgPool2d(x, 2, { padding: 2 })).toThrowError(/avgPool2d: padding \[2, 2\] must be at most half the kernel size \[2, 2\]/);
    expect(() => wg.maxPool2d(x, [3, 1], { padding: [1, 1] })).toThrowError(/at most half the kernel size \[3, 1\]/);
    expect(() => wg.maxPool2d(x, 7, { padding: 1 })).toThrowError(/maxPool2d: kernel \[7, 7\] is larger than the padded input \(input \[1, 1, 4, 4\]/);
    expect(() => wg.maxPool2d(x, 0)).toThrowError(/maxPool2d: kernel size must be a positive integer/);
    expect(() => wg.maxPool2d(x, 1.5)).toThrowError(wg.ShapeError);
    expect(() => wg.avgPool2d(x, 2, { stride: 0 })).toThrowError(/avgPool2d: stride must be a positive integer/);
    expect(() => wg.avgPool2d(x, 2, { padding: -1 })).toThrowError(/avgPool2d: padding must be a non-negative integer/);
    expect(() => wg.maxPool2d(wg.zeros([1, 1, 0, 4]), 1)).toThrowError(/maxPool2d: input \[1, 1, 0, 4\] has an empty spatial dimension/);
  });
});

afterAll(() => wg.shutdown());
