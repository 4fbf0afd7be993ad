// Masks: comparisons, where, maskedFill, tril/triu and arange, against float64 references, with
// NaN and ±Inf as PyTorch treats them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gpu, gpuTensor, Rng, sizeOf, wg } from '../helpers';
import { broadcastShape, binary } from '../reference/elementwise';
import * as ref from '../reference/mask';
import { opTable, type OpCase } from './op-table';

beforeAll(() => gpu());
afterAll(() => wg.shutdown());

const OPS = ['eq', 'ne', 'lt', 'le', 'gt', 'ge'] as const;
const fns = { eq: wg.eq, ne: wg.ne, lt: wg.lt, le: wg.le, gt: wg.gt, ge: wg.ge };

/** Small integers (many ties) with NaN, ±Inf and −0 sprinkled in. */
const special = (rng: Rng, n: number) =>
  Float64Array.from({ length: n }, () => {
    const r = rng.uniform();
    if (r < 0.08) return NaN;
    if (r < 0.14) return Infinity;
    if (r < 0.2) return -Infinity;
    if (r < 0.25) return -0;
    return rng.int(5) - 2;
  });

const PAIRS: [number[], number[]][] = [
  [[1], [1]],
  [[3], [3]],
  [[17, 3], [3]],
  [[33, 1], [1, 65]],
  [[2, 17, 5], [17, 1]],
];

opTable(
  'comparisons (float32 0/1, NaN compares false except ne) broadcast and match the reference',
  OPS.flatMap((op): OpCase[] =>
    PAIRS.map(([sa, sb]) => ({
      name: `${op} ${JSON.stringify(sa)} ${JSON.stringify(sb)}`,
      inputs: [{ shape: sa, values: special }, { shape: sb, values: special }],
      run: ([a, b]) => fns[op](a!, b!),
      ref: ([a, b]) => binary(a!, sa, b!, sb, (x, y) => +ref.comparisons[op]!(x, y)).data,
      shape: broadcastShape(sa, sb),
      atol: 0,
      rtol: 0,
      grad: false,
    })),
  ),
);

opTable(
  'comparisons with a number as the second operand',
  OPS.flatMap((op): OpCase[] =>
    [1, NaN, Infinity, -Infinity, 0.5].map((s) => ({
      name: `${op} [33, 17] with ${s}`,
      inputs: [{ shape: [33, 17], values: special }],
      run: ([a]) => fns[op](a!, s),
      ref: ([a]) => a!.map((x) => +ref.comparisons[op]!(x, s)),
      shape: [33, 17],
      atol: 0,
      rtol: 0,
      grad: false,
    })),
  ),
);

describe('comparisons of int32 tensors', () => {
  it('are exact at any magnitude, tensor against tensor and against numbers (integers or not)', async () => {
    const big = 2 ** 24;
    const a = new Int32Array([big + 1, big, -5, 0, 2 ** 31 - 1, -(2 ** 31), 3, 7]);
    const b = new Int32Array([big, big, -5, 1, 2 ** 31 - 1, -(2 ** 31) + 1, 4, 7]);
    const ta = wg.tensor(a);
    const tb = wg.tensor(b);
    for (const op of OPS) {
      const f = ref.comparisons[op]!;
      const got = await fns[op](ta, tb).toArray();
      expect(got).toBeInstanceOf(Float32Array);
      expect(Array.from(got), `${op} tensor`).toEqual(Array.from(a, (x, i) => +f(x, b[i]!)));
      for (const s of [big, 3, 2.5, -2.5, NaN, Infinity, -Infinity, 2 ** 40, -(2 ** 40)]) {
        expect(Array.from(await fns[op](ta, s).toArray()), `${op} ${s}`).toEqual(Array.from(a, (x) => +f(x, s)));
      }
    }
  });

  it('float32 against int32 is a DTypeError naming the op and the shapes', () => {
    expect(() => wg.lt(wg.zeros([2, 3]), wg.tensor(new Int32Array(3)))).toThrowError(wg.DTypeError);
    expect(() => wg.lt(wg.zeros([2, 3]), wg.tensor(new Int32Array(3)))).toThrowError(/lt: second operand \[3\] is int32, expected float32/);
    expect(() => wg.eq(wg.zeros([2, 3]), wg.zeros([4]))).toThrowError(/eq: shapes \[2, 3\] and \[4\] cannot be broadcast/);
  });
});

it('comparisons are methods, not differentiable', async () => {
  const x = wg.tensor([1, 2, 3], undefined, { requiresGrad: true });
  const m = x.gt(1.5);
  expect(m.requiresGrad).toBe(false);
  expect(Array.from(await m.toArray())).toEqual([0, 1, 1]);
  expect(Array.from(await x.le(wg.tensor([1, 1, 4])).toArray())).toEqual([1, 0, 1]);
});

// where(c, a, b): three shapes broadcast together; c is 0/1 with NaN (true) here and there.
const WHERE: [number[], number[], number[]][] = [
  [[1], [1], [1]],
  [[3], [3], [3]],
  [[17, 1], [1, 33], [17, 33]],
  [[2, 1, 5], [3, 1], [5]],
  [[65], [1], [65]],
];
const cond = (rng: Rng, n: number) => Float64Array.from({ length: n }, () => (rng.uniform() < 0.1 ? NaN : rng.int(2)));

opTable(
  'where broadcasts condition and values, and sends the gradient to the chosen side',
  WHERE.map(([sc, sa, sb]): OpCase => ({
    name: `where ${JSON.stringify(sc)} ${JSON.stringify(sa)} ${JSON.stringify(sb)}`,
    inputs: [{ shape: sc, values: cond }, { shape: sa }, { shape: sb }],
    run: ([c, a, b]) => wg.where(c!, a!, b!),
    ref: ([c, a, b]) => ref.where(c!, sc, a!, sa, b!, sb),
    shape: broadcastShape(broadcastShape(sc, sa), sb),
    atol: 0,
    rtol: 0,
    grad: { wrt: [1, 2] },
  })),
);

opTable('where with numbers, maskedFill', [
  {
    name: 'where(c, a, number)',
    inputs: [{ shape: [17, 33], values: cond }, { shape: [33] }],
    run: ([c, a]) => wg.where(c!, a!, -3),
    ref: ([c, a]) => ref.where(c!, [17, 33], a!, [33], [-3], [1]),
    shape: [17, 33],
    grad: { wrt: [1] },
  },
  {
    name: 'where(c, number, b)',
    inputs: [{ shape: [3, 1], values: cond }, { shape: [3, 5] }],
    run: ([c, b]) => wg.where(c!, 9, b!),
    ref: ([c, b]) => ref.where(c!, [3, 1], [9], [1], b!, [3, 5]),
    shape: [3, 5],
    grad: { wrt: [1] },
  },
  {
    name: 'where(c, number, number)',
    inputs: [{ shape: [65], values: cond }],
    run: ([c]) => wg.where(c!, 1, 2),
    ref: ([c]) => ref.where(c!, [65], [1], [1], [2], [1]),
    shape: [65],
    grad: false,
  },
  ...[[[33, 17], [33, 17]], [[17, 33], [33]], [[3], [2, 3]], [[2, 17, 1], [1, 5]]].map(([sa, sm]): OpCase => ({
    name: `maskedFill ${JSON.stringify(sa)} ${JSON.stringify(sm)}`,
    inputs: [{ shape: sa! }, { shape: sm!, values: cond }],
    run: ([a, m]) => wg.maskedFill(a!, m!, -7),
    ref: ([a, m]) => ref.maskedFill(a!, sa!, m!, sm!, -7),
    shape: broadcastShape(sa!, sm!),
    grad: { wrt: [0] },
  })),
]);

describe('where and maskedFill at the edges', () => {
  it('int32 conditions and masks; NaN in the branch not taken gives a zero gradient', async () => {
    const a = wg.tensor([1, 2, 3, 4], undefined, { requiresGrad: true });
    const b = wg.tensor([NaN, Infinity, NaN, -Infinity], undefined, { requiresGrad: true });
    const c = wg.tensor(new Int32Array([1, 0, 1, -(2 ** 31)]));
    const y = wg.where(c, a, b);
    expect(Array.from(await y.toArray())).toEqual([1, Infinity, 3, 4]);
    y.backward(wg.tensor([10, 20, 30, 40]));
    expect(Array.from(await a.grad!.toArray())).toEqual([10, 0, 30, 40]);
    expect(Array.from(await b.grad!.toArray())).toEqual([0, 20, 0, 0]);
    expect(Array.from(await a.maskedFill(c, NaN).toArray())).toEqual([NaN, 2, NaN, NaN]);
    expect(Array.from(await a.maskedFill(c, -Infinity).toArray())).toEqual([-Infinity, 2, -Infinity, -Infinity]);
    expect(Array.from(await a.where(c, 0).toArray())).toEqual([1, 0, 3, 4]);
  });

  it('bad input names the op and the shapes', () => {
    const x = wg.zeros([2, 3]);
    expect(() => wg.where(wg.zeros([4]), x, x)).toThrowError(wg.ShapeError);
    expect(() => wg.where(wg.zeros([4]), x, x)).toThrowError(/where: condition \[4\] and values \[2, 3\], \[2, 3\] cannot be broadcast/);
    expect(() => wg.where(x, wg.tensor(new Int32Array(3)), x)).toThrowError(/where: first value operand \[3\] is int32, expected float32/);
    expect(() => wg.maskedFill(x, wg.zeros([2]), 0)).toThrowError(/maskedFill: shapes \[2, 3\] and \[2\] cannot be broadcast/);
    expect(() => wg.maskedFill(wg.tensor(new Int32Array(3)), wg.zeros([3]), 0)).toThrowError(wg.DTypeError);
  });
});

const TRI: [number[], number][] = [
  [[1, 1], 0],
  [[3, 17], 0],
  [[17, 3], -1],
  [[2, 33, 17], 2],
  [[65, 33], -40],
  [[5, 65], 40],
];

opTable(
  'tril and triu keep a triangle of each matrix (any diagonal k), and pass the gradient there',
  TRI.flatMap(([shape, k]): OpCase[] =>
    (['tril', 'triu'] as const).map((op) => ({
      name: `${op} ${JSON.stringify(shape)} k=${k}`,
      inputs: [{ shape }],
      run: ([a]) => (op === 'tril' ? wg.tril(a!, k) : a!.triu(k)),
      ref: ([a]) => ref.triangle(a!, shape, k, op === 'triu'),
      shape,
      atol: 0,
      rtol: 0,
      grad: sizeOf(shape) <= 120 ? {} : false,
    })),
  ),
);

describe('tril and triu', () => {
  it('read transposed views in place, zero NaN outside the triangle', async () => {
    const rng = new Rng();
    const x = rng.array(17 * 33);
    x[0 * 33 + 5] = NaN; // (row 5, column 0) of the transpose: kept by tril
    x[7 * 33 + 2] = NaN; // (row 2, column 7): dropped
    const t = gpuTensor(x, [17, 33]).transpose(); // [33, 17]
    const expected = ref.triangle(Float64Array.from({ length: 33 * 17 }, (_, i) => x[(i % 17) * 33 + Math.floor(i / 17)]!), [33, 17], 0, false);
    const got = await wg.tril(t).toArray();
    expect(Number.isNaN(got[5 * 17]!)).toBe(true);
    expect(got[2 * 17 + 7]).toBe(0);
    expect(Array.from(got)).toEqual(Array.from(expected, Math.fround));
  });

  it('need a matrix', () => {
    expect(() => wg.tril(wg.zeros([5]))).toThrowError(/tril: needs a tensor of at least 2 dimensions .*got \[5\]/);
    expect(() => wg.triu(wg.zeros([2, 2]), 0.5)).toThrowError(wg.ShapeError);
  });
});

describe('arange', () => {
  it('follows torch.arange: integers give int32, anything else float32', async () => {
    const a = wg.arange(5);
    expect(a.dtype).toBe('int32');
    expect(Array.from(await a.toArray())).toEqual([0, 1, 2, 3, 4]);
    expect(Array.from(await wg.arange(2, 11, 3).toArray())).toEqual([2, 5, 8]);
    expect(Array.from(await wg.arange(5, -1, -2).toArray())).toEqual([5, 3, 1]);
    const f = wg.arange(0, 1, 0.1);
    expect(f.dtype).toBe('float32');
    expect(f.shape).toEqual([10]);
    expect(Array.from(await f.toArray())).toEqual(Array.from({ length: 10 }, (_, i) => Math.fround(i * 0.1)));
    expect(Array.from(await wg.arange(3, undefined, undefined, { dtype: 'float32' }).toArray())).toEqual([0, 1, 2]);
    expect(wg.arange(0).shape).toEqual([0]);
    expect(wg.arange(3, 3).shape).toEqual([0]);
  });

  it('bad arguments', () => {
    expect(() => wg.arange(0, 5, 0)).toThrowError(/arange\(0, 5, 0\): step must not be zero/);
    expect(() => wg.arange(0, 5, -1)).toThrowError(/end is on the wrong side/);
    expect(() => wg.arange(0, Infinity)).toThrowError(wg.ShapeError);
    expect(() => wg.arange(0, 2, 0.5, { dtype: 'int32' })).toThrowError(wg.DTypeError);
  });
});
