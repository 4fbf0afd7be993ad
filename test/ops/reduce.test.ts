import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { argmax, setReduceProfile, sumToShape, type ReduceProfile } from '../../src/ops/reduce';
import { runtime } from '../../src/runtime/device';
import { expectClose, gpu, gpuTensor, gradCheck, relErr, Rng, sizeOf, wg } from '../helpers';
import * as ew from '../reference/elementwise';
import * as ref from '../reference/reduce';

beforeAll(() => gpu());
afterAll(() => wg.shutdown());

// Kernel layouts differ by adapter: run the reference comparisons under both profiles.
const profiles: [string, ReduceProfile][] = [
  ['many lanes per row (GPU profile)', { maxWorkgroup: 256, perLane: 4 }],
  ['few lanes per row (software profile)', { maxWorkgroup: 64, perLane: 128 }],
];

type Axes = number | number[] | undefined;
type ReduceFn = (a: wg.Tensor, axis?: number | number[], keepdim?: boolean) => wg.Tensor;
type RefFn = (d: ArrayLike<number>, s: readonly number[], axis?: number | number[], keepdim?: boolean) => ref.Dense;

const ops: [string, ReduceFn, RefFn][] = [
  ['sum', wg.sum, ref.sum],
  ['mean', wg.mean, ref.mean],
  ['max', wg.max, ref.max],
];

// Shapes that are not multiples of any tile, each with axis sets: single, several, negative, all.
const cases: [number[], Axes[]][] = [
  [[1], [undefined, 0]],
  [[3], [undefined, 0, -1]],
  [[130], [undefined, 0]],
  [[17, 33], [undefined, 0, 1, [0, 1]]],
  [[65, 3], [0, -1]],
  [[1, 17], [0, 1]],
  [[2, 3, 5], [0, 1, 2, [0, 2], [1, 2], [0, 1], -2]],
  [[3, 4, 5, 6], [[0, 2], [1, 3], [0, 3], [1, 2], [0, 1, 2], 3, undefined]],
  [[2, 1, 33, 3], [[1, 2], 2, [0, 3]]],
];

/** Inputs lie in [0, 1): sums have no cancellation, so a per-element rtol of 1e-4 is fair; max is exact. */
function checkReduce(name: string, actual: ArrayLike<number>, expected: ref.Dense, seed: number, what: string): void {
  if (name === 'max') expectClose(actual, expected.data, { seed, what, atol: 0, rtol: 0 });
  else expectClose(actual, expected.data, { seed, what, atol: 1e-5 });
}

describe.each(profiles)('%s', (_, profile) => {
  beforeAll(() => setReduceProfile(profile));
  afterAll(() => setReduceProfile(null));

  describe('sum, mean, max match the float64 reference', () => {
    for (const [name, op, refOp] of ops) {
      it(`${name} over every axis set, keepdim both ways`, async () => {
        for (const [shape, axesList] of cases) {
          for (const axis of axesList) {
            for (const keepdim of [false, true]) {
              const rng = new Rng();
              const x = rng.array(sizeOf(shape), 0, 1);
              const out = op(gpuTensor(x, shape), axis, keepdim);
              const expected = refOp(x, shape, axis, keepdim);
              const what = `${name} ${JSON.stringify(shape)} axis ${JSON.stringify(axis)} keepdim ${keepdim}`;
              expect(out.shape, what).toEqual(expected.shape);
              checkReduce(name, await out.toArray(), expected, rng.seed, what);
            }
          }
        }
      });
    }

    it('max is exact and propagates NaN; ties and negative values behave', async () => {
      const x = wg.tensor([[-5, -2, -2], [NaN, 1, 2], [-Infinity, -Infinity, -Infinity]]);
      const m = Array.from(await wg.max(x, 1).toArray());
      expect(m[0]).toBe(-2);
      expect(m[1]).toBeNaN();
      expect(m[2]).toBe(-Infinity);
    });

    it('reads transposed, broadcast and offset views without copying', async () => {
      const rng = new Rng();
      const x = rng.array(17 * 33);
      const xt = ref.permute(x, [17, 33], [1, 0]);
      for (const axis of [0, 1, undefined]) {
        const t = gpuTensor(x, [17, 33]).transpose();
        expectClose(await wg.sum(t, axis).toArray(), ref.sum(xt.data, xt.shape, axis).data, { seed: rng.seed, what: `sum of transpose, axis ${axis}` });
        expectClose(await wg.max(t, axis).toArray(), ref.max(xt.data, xt.shape, axis).data, { seed: rng.seed, what: `max of transpose, axis ${axis}` });
      }
      // A 4-D permutation mixes kept and reduced strides.
      const y = rng.array(2 * 3 * 5 * 7);
      const perm = [2, 0, 3, 1];
      const yp = ref.permute(y, [2, 3, 5, 7], perm);
      for (const axis of [[0, 2], [1, 3], 3, [0, 1, 2]]) {
        const t = gpuTensor(y, [2, 3, 5, 7]).transpose(perm);
        expectClose(await wg.mean(t, axis).toArray(), ref.mean(yp.data, yp.shape, axis).data, { seed: rng.seed, what: `mean of permuted, axis ${axis}` });
      }
      // Stride-0 (expanded) dimensions.
      const b = rng.array(33);
      const e = gpuTensor(b, [33]).expand([17, 33]);
      const eData = ew.broadcastTo(b, [33], [17, 33]);
      for (const axis of [0, 1, undefined]) {
        expectClose(await wg.sum(e, axis).toArray(), ref.sum(eData, [17, 33], axis).data, { seed: rng.seed, what: `sum of expand, axis ${axis}` });
      }
      // A narrowed view starts at an element offset.
      const n = wg.narrow(gpuTensor(x, [17, 33]), 0, 5, 7);
      const nData = x.slice(5 * 33, 12 * 33);
      expectClose(await wg.sum(n, 1).toArray(), ref.sum(nData, [7, 33], 1).data, { seed: rng.seed, what: 'sum of narrow' });
      expectClose(await argmax(n, 0).toArray(), ref.argmax(nData, [7, 33], 0).data, { what: 'argmax of narrow' });
    });

    it('long reductions take two passes and stay accurate', async () => {
      const ex = runtime().executor;
      const long: [number[], Axes][] = [
        [[100_000], undefined],
        [[3, 40_000], 1],
        [[40_000, 3], 0], // columns: the reduced dimension has the large stride
        [[2, 20_000, 3], [0, 1]],
      ];
      for (const [shape, axis] of long) {
        for (const [name, op, refOp] of ops) {
          const rng = new Rng();
          const x = rng.array(sizeOf(shape), 0, 1);
          const t = gpuTensor(x, shape);
          const before = ex.dispatchCount;
          const out = op(t, axis);
          expect(ex.dispatchCount - before, `${name} ${shape} dispatches`).toBe(2);
          const expected = refOp(x, shape, axis);
          const what = `${name} ${JSON.stringify(shape)} axis ${JSON.stringify(axis)}`;
          // 1e-5 of the sum: float32 pairwise-like accumulation over ≤ 2048-element pieces.
          if (name === 'max') expectClose(await out.toArray(), expected.data, { seed: rng.seed, what, atol: 0, rtol: 0 });
          else expect(relErr(await out.toArray(), expected.data), what + ` seed ${rng.seed}`).toBeLessThan(1e-5);
        }
      }
    });

    it('reductions over an empty dimension: sum 0, mean NaN, max an error', async () => {
      const z = wg.zeros([3, 0]);
      expect(Array.from(await wg.sum(z, 1).toArray())).toEqual([0, 0, 0]);
      expect(Array.from(await wg.mean(z, 1).toArray()).every(Number.isNaN)).toBe(true);
      expect(() => wg.max(z, 1)).toThrowError(/max: cannot reduce \[3, 0\] over axes \[1\]: no elements/);
      expect(wg.sum(z, 0).shape).toEqual([0]);
    });

    it('an empty axis list reduces nothing; scalars reduce to scalars', async () => {
      const rng = new Rng();
      const x = rng.array(6);
      expectClose(await wg.sum(gpuTensor(x, [2, 3]), []).toArray(), x, { seed: rng.seed });
      const s = wg.sum(wg.tensor(4));
      expect(s.shape).toEqual([]);
      expect(await s.item()).toBe(4);
      expect(await wg.max(wg.tensor(-4), 0).item()).toBe(-4);
    });
  });

  describe('argmax', () => {
    it('first index of the maximum, along any axis or over all elements', async () => {
      for (const [shape, axesList] of cases) {
        for (const axis of axesList) {
          if (Array.isArray(axis)) continue;
          for (const keepdim of [false, true]) {
            const rng = new Rng();
            // Few distinct values: ties are common and must resolve to the first index.
            const x = Float64Array.from(rng.array(sizeOf(shape)), (v) => Math.round(v * 2));
            const out = argmax(gpuTensor(x, shape), axis, keepdim);
            const expected = ref.argmax(x, shape, axis, keepdim);
            const what = `argmax ${JSON.stringify(shape)} axis ${axis} keepdim ${keepdim} seed ${rng.seed}`;
            expect(out.dtype).toBe('int32');
            expect(out.shape, what).toEqual(expected.shape);
            expect(Array.from(await out.toArray()), what).toEqual(Array.from(expected.data));
          }
        }
      }
    });

    it('long argmax (two passes) keeps the first of tied maxima in different pieces', async () => {
      const rng = new Rng();
      const x = rng.array(100_000, 0, 1);
      x[77_777] = 2;
      x[12_345] = 2;
      x[99_999] = 2;
      expect(await argmax(gpuTensor(x, [100_000])).item()).toBe(12_345);
      const cols = rng.array(3 * 40_000, 0, 1);
      for (const [r, c] of [[30_000, 0], [5_000, 0], [39_999, 1], [0, 2]]) cols[r! * 3 + c!] = 2;
      expect(Array.from(await argmax(gpuTensor(cols, [40_000, 3]), 0).toArray())).toEqual([5_000, 39_999, 0]);
    });

    it('NaN counts as the maximum', async () => {
      expect(await argmax(wg.tensor([1, NaN, 5, NaN])).item()).toBe(1);
    });
  });

});

describe('sumToShape', () => {
  const pairs: [number[], number[]][] = [
    [[3, 5], [5]],
    [[3, 5], [3, 1]],
    [[3, 5], [1, 5]],
    [[3, 5], [1]],
    [[3, 5], []],
    [[2, 3, 5], [3, 1]],
    [[4, 1, 6], [1, 1, 6]],
    [[1, 17], [17]],
    [[65, 33], [65, 1]],
  ];
  it('sums broadcast dimensions back', async () => {
    for (const [from, to] of pairs) {
      const rng = new Rng();
      const g = rng.array(sizeOf(from));
      const out = sumToShape(gpuTensor(g, from), to);
      expect(out.shape).toEqual(to);
      expectClose(await out.toArray(), ref.sumToShape(g, from, to), { seed: rng.seed, what: `${from} → ${to}` });
    }
  });
  it('returns the gradient itself when shapes match, and refuses shapes that do not broadcast', () => {
    const g = wg.zeros([3, 5]);
    expect(sumToShape(g, [3, 5])).toBe(g);
    expect(() => sumToShape(g, [4, 5])).toThrowError(/sumToShape: a gradient of shape \[3, 5\] does not broadcast from \[4, 5\]/);
    expect(() => sumToShape(g, [2, 3, 5])).toThrowError(wg.ShapeError);
  });
});

describe('errors name the op and the shapes', () => {
  it('bad axes', () => {
    const x = wg.zeros([2, 3]);
    expect(() => wg.sum(x, 2)).toThrowError(wg.ShapeError);
    expect(() => wg.sum(x, 2)).toThrowError(/sum: axis 2 is out of range for a tensor of rank 2/);
    expect(() => wg.mean(x, [0, -3])).toThrowError(/mean: axis -3 is out of range/);
    expect(() => wg.max(x, [1, -1])).toThrowError(/max: axis \[1, -1\] names a dimension twice \(tensor \[2, 3\]\)/);
    expect(() => argmax(x, 1.5)).toThrowError(/argmax: axis 1.5 is out of range/);
  });
  it('wrong dtype', () => {
    const labels = wg.tensor(new Int32Array([1, 2]));
    expect(() => wg.sum(labels)).toThrowError(wg.DTypeError);
    expect(() => wg.max(labels, 0)).toThrowError(/max: input \[2\] is int32, expected float32/);
    expect(() => argmax(labels)).toThrowError(/argmax: input \[2\] is int32/);
  });
});

describe('finite-difference gradients', () => {
  const gradCases: [number[], Axes, boolean][] = [
    [[17], undefined, false],
    [[3, 5], 0, false],
    [[3, 5], 1, true],
    [[2, 3, 4], [0, 2], false],
    [[2, 3, 4], -2, true],
  ];
  for (const [name, op, refOp] of ops) {
    for (const [shape, axis, keepdim] of gradCases) {
      it(`${name} ${JSON.stringify(shape)} axis ${JSON.stringify(axis)} keepdim ${keepdim}`, async () => {
        const rng = new Rng();
        const n = sizeOf(shape);
        // Distinct values 0.05 apart (shuffled), so a ±1e-3 step never changes which is largest.
        const data = Float64Array.from({ length: n }, (_, i) => i * 0.05 - 1);
        for (let i = n - 1; i > 0; i--) {
          const j = rng.int(i + 1);
          [data[i], data[j]] = [data[j]!, data[i]!];
        }
        await gradCheck({
          rng,
          inputs: [{ data, shape }],
          gpuFn: ([x]) => op(x!, axis, keepdim),
          refFn: ([x]) => refOp(x!, shape, axis, keepdim).data,
        });
      });
    }
  }

  it('max sends the gradient of tied maxima to the first one only', async () => {
    const x = wg.tensor([[1, 3, 3, 2], [4, 4, 4, 4]], undefined, { requiresGrad: true });
    wg.max(x, 1).sum().backward();
    expect(Array.from(await x.grad!.toArray())).toEqual([0, 1, 0, 0, 1, 0, 0, 0]);
    const y = wg.tensor([5, 1, 5], undefined, { requiresGrad: true });
    wg.max(y).backward();
    expect(Array.from(await y.grad!.toArray())).toEqual([1, 0, 0]);
  });

  it('frees its temporaries: forward leaves only the result, backward only the gradient', () => {
    const x = wg.zeros([3, 5], { requiresGrad: true });
    const long = wg.zeros([100_000]);
    const before = wg.memory().liveTensors;
    const makers = [() => wg.noGrad(() => wg.max(x, 1)), () => wg.mean(long), () => wg.max(long), () => argmax(long), () => wg.sum(x, 0)];
    for (const make of makers) {
      const out = make();
      expect(wg.memory().liveTensors).toBe(before + 1);
      out.dispose();
    }
    // tidy frees the intermediates; the graph keeps what backward needs until backward runs.
    const losses = wg.tidy(() => [wg.max(x, 1).sum(), wg.mean(x, 0).sum(), wg.max(x), wg.sum(x, [0, 1])]);
    for (const l of losses) {
      l.backward();
      l.dispose();
    }
    expect(wg.memory().liveTensors).toBe(before + 1); // x.grad
  });

  it('the gradient of a long mean is 1/n everywhere', async () => {
    const x = wg.tensor(new Float32Array(100_000).fill(0.5), undefined, { requiresGrad: true });
    wg.mean(x).backward();
    const g = await x.grad!.toArray();
    expect(g.every((v) => Math.abs(v - 1e-5) < 1e-12)).toBe(true);
  });
});

describe('broadcasting gradients of add, sub, mul, div (through sumToShape)', () => {
  const binary: [string, (a: wg.Tensor, b: wg.Tensor) => wg.Tensor, (x: number, y: number) => number][] = [
    ['add', wg.add, (x, y) => x + y],
    ['sub', wg.sub, (x, y) => x - y],
    ['mul', wg.mul, (x, y) => x * y],
    ['div', wg.div, (x, y) => x / y],
  ];
  const pairs: [number[], number[]][] = [
    [[3, 5], [5]],
    [[3, 5], [3, 1]],
    [[5], [3, 5]],
    [[1, 5], [3, 1]],
    [[2, 3, 5], [3, 1]],
  ];
  for (const [name, op, f] of binary) {
    it(name, async () => {
      for (const [sa, sb] of pairs) {
        const rng = new Rng();
        await gradCheck({
          rng,
          inputs: [
            { data: rng.array(sizeOf(sa), -2, 2), shape: sa },
            { data: rng.array(sizeOf(sb), 0.5, 2), shape: sb },
          ],
          gpuFn: ([a, b]) => op(a!, b!),
          refFn: ([a, b]) => ew.binary(a!, sa, b!, sb, f).data,
        });
      }
    });
  }
});
