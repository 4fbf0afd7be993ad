import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectClose, gpu, gpuTensor, gradCheck, Rng, sizeOf, wg } from '../helpers';
import * as ref from '../reference/elementwise';
import { opTable, type OpCase } from './op-table';

beforeAll(() => gpu());

const unaryCases: [string, (t: wg.Tensor) => wg.Tensor, (x: number) => number, [number, number]][] = [
  ['neg', wg.neg, (x) => -x, [-3, 3]],
  ['exp', wg.exp, Math.exp, [-5, 5]],
  ['log', wg.log, Math.log, [0.01, 10]],
  ['sqrt', wg.sqrt, Math.sqrt, [0.01, 10]],
  ['relu', wg.relu, (x) => Math.max(x, 0), [-3, 3]],
  ['gelu', wg.gelu, ref.gelu, [-6, 6]],
  ['gelu tanh', (t) => wg.gelu(t, { approximate: 'tanh' }), ref.geluTanh, [-6, 6]],
  ['tanh', wg.tanh, Math.tanh, [-6, 6]],
  ['sigmoid', wg.sigmoid, ref.sigmoid, [-12, 12]],
  ['silu', wg.silu, ref.silu, [-12, 12]],
];

const shapes = [[1], [3], [17, 3], [2, 33, 5], [65, 130]];

// Gradients are checked at [37] on ranges of their own (relu's values kept away from its kink).
const gradRanges: Record<string, [number, number]> = {
  neg: [-2, 2], exp: [-2, 2], log: [0.5, 3], sqrt: [0.5, 3], relu: [-2, 2], gelu: [-3, 3], 'gelu tanh': [-3, 3], tanh: [-2, 2], sigmoid: [-4, 4],
  silu: [-4, 4],
};
const awayFromKink = (rng: Rng, n: number) => rng.array(n, -2, 2).map((v) => (Math.abs(v) < 0.01 ? 0.5 : v));

opTable(
  'unary ops match the float64 reference, and their gradients finite differences',
  unaryCases.flatMap(([name, op, f, range]): OpCase[] => [
    ...shapes.map((shape) => ({
      name: `${name} ${shape}`,
      inputs: [{ shape, range }],
      run: ([x]: wg.Tensor[]) => op(x!),
      ref: ([x]: Float64Array[]) => ref.unary(x!, f),
      shape,
      atol: 1e-6,
      grad: false as const,
    })),
    {
      name: `${name} [37]`,
      inputs: [name === 'relu' ? { shape: [37], values: awayFromKink } : { shape: [37], range: gradRanges[name] }],
      run: ([x]) => op(x!),
      ref: ([x]) => ref.unary(x!, f),
      shape: [37],
      atol: 1e-6,
    },
  ]),
);

describe('unary ops at the edges', () => {
  it('gelu keeps relative accuracy in the far negative tail', async () => {
    const x = [-9, -7, -5, -3];
    const out = await wg.gelu(wg.tensor(x)).toArray();
    expectClose(out, x.map(ref.gelu), { rtol: 1e-4, atol: 0 });
  });

  it('gelu tanh keeps relative accuracy in the negative tail, is nn.GELU({ approximate }), and refuses other names', async () => {
    const x = [-9, -7, -5, -3, -1e-3, 1e-3, 30];
    const out = await wg.gelu(wg.tensor(x), { approximate: 'tanh' }).toArray();
    expectClose(out, x.map(ref.geluTanh), { rtol: 1e-5, atol: 0 });
    const layer = await new wg.nn.GELU({ approximate: 'tanh' }).forward(wg.tensor(x)).toArray();
    expect(Array.from(layer)).toEqual(Array.from(out));
    expect(() => wg.gelu(wg.tensor(x), { approximate: 'erf' as 'none' })).toThrowError(/approximate must be 'none' or 'tanh', got "erf"/);
  });

  it('isnan finds NaN (and only NaN) among ±Inf, ±0 and numbers', async () => {
    const out = await wg.isnan(wg.tensor(new Float32Array([NaN, 1, -0, Infinity, -Infinity, NaN, 3e-45]))).toArray();
    expect(Array.from(out)).toEqual([1, 0, 0, 0, 0, 1, 0]);
  });

  it('silu and its gradient give what PyTorch gives at ±Inf, NaN and large |x|', async () => {
    // x / (1 + exp(−x)): silu(−Inf) = −Inf/Inf = NaN, silu(Inf) = Inf; the gradient
    // s·(1 + x·(1 − s)) is NaN at both infinities (0·−Inf, Inf·0), as in PyTorch.
    const x = [-Infinity, -200, -80, 0, 80, Infinity, NaN];
    const t = wg.tensor(x, undefined, { requiresGrad: true });
    const y = wg.silu(t);
    const same = (got: ArrayLike<number>, want: number[]) =>
      want.forEach((w, i) => expect(Number.isNaN(w) ? Number.isNaN(got[i]!) : got[i] === w || Math.abs(got[i]! - w) <= 1e-6 * Math.abs(w), `element ${i}: ${got[i]} vs ${w}`).toBe(true));
    same(await y.toArray(), [NaN, 0, ref.silu(-80), 0, 80, Infinity, NaN]);
    y.backward(wg.ones([x.length]));
    same(await t.grad!.toArray(), [NaN, 0, ref.siluGrad(-80), 0.5, 1, NaN, NaN]);
  });

  it('tanh and sigmoid saturate without NaN for large inputs', async () => {
    const x = [-1000, -100, 100, 1000];
    expect(Array.from(await wg.tanh(wg.tensor(x)).toArray())).toEqual([-1, -1, 1, 1]);
    // sigmoid(−100) = e^−100 ≈ 3.8e-44, a float32 subnormal: a CPU keeps it, GPUs flush it to 0.
    const s = Array.from(await wg.sigmoid(wg.tensor(x)).toArray());
    expect([s[0], s[2], s[3]]).toEqual([0, 1, 1]);
    expect(s[1] === 0 || Math.abs(s[1]! - 3.7835e-44) < 2e-45, `sigmoid(-100) = ${s[1]}`).toBe(true);
  });
});

const binaryCases: [string, (a: wg.Tensor, b: wg.Tensor) => wg.Tensor, (x: number, y: number) => number][] = [
  ['add', wg.add, (x, y) => x + y],
  ['sub', wg.sub, (x, y) => x - y],
  ['mul', wg.mul, (x, y) => x * y],
  ['div', wg.div, (x, y) => x / y],
];

const broadcastPairs: [number[], number[]][] = [
  [[1], [1]],
  [[17], [17]],
  [[3, 17], [17]],
  [[33, 1], [1, 65]],
  [[2, 3, 5], [3, 1]],
  [[5, 1, 7, 1], [1, 3, 1, 2]],
  [[130], [1]],
];

describe('binary ops broadcast like NumPy and match the reference', () => {
  for (const [name, op, f] of binaryCases) {
    it(name, async () => {
      for (const [sa, sb] of broadcastPairs) {
        const rng = new Rng();
        const a = rng.array(sizeOf(sa), -2, 2);
        const b = rng.array(sizeOf(sb), 0.5, 2); // away from 0 for div
        const out = op(gpuTensor(a, sa), gpuTensor(b, sb));
        const expected = ref.binary(a, sa, b, sb, f);
        expect(out.shape).toEqual(expected.shape);
        expectClose(await out.toArray(), expected.data, { seed: rng.seed, what: `${name} ${sa}·${sb}` });
      }
    });
  }

  it('reads transposed views without copying', async () => {
    const rng = new Rng();
    const a = rng.array(17 * 33);
    const t = gpuTensor(a, [17, 33]).transpose();
    expect(t.isContiguous).toBe(false);
    const out = await wg.add(t, wg.zeros([33, 17])).toArray();
    const expected = new Float64Array(33 * 17);
    for (let i = 0; i < 33; i++) for (let j = 0; j < 17; j++) expected[i * 17 + j] = a[j * 33 + i]!;
    expectClose(out, expected, { seed: rng.seed });
  });

  it('accepts numbers as operands', async () => {
    const x = wg.tensor([1, 2, 3]);
    expect(Array.from(await x.mul(2).add(1).toArray())).toEqual([3, 5, 7]);
    expect(Array.from(await wg.sub(1, x).toArray())).toEqual([0, -1, -2]);
    expect(Array.from(await wg.div(6, x).toArray())).toEqual([6, 3, 2]);
  });
});

describe('shape errors name the op and the shapes', () => {
  it('mismatched broadcast', () => {
    expect(() => wg.add(wg.zeros([2, 3]), wg.zeros([4]))).toThrowError(wg.ShapeError);
    expect(() => wg.add(wg.zeros([2, 3]), wg.zeros([4]))).toThrowError(/add: shapes \[2, 3\] and \[4\]/);
  });
  it('wrong dtype', () => {
    const labels = wg.tensor(new Int32Array([1, 2]));
    expect(() => wg.exp(labels)).toThrowError(wg.DTypeError);
    expect(() => wg.exp(labels)).toThrowError(/exp: input \[2\] is int32, expected float32/);
  });
  it('use after dispose', () => {
    const x = wg.ones([3]);
    x.dispose();
    expect(() => wg.relu(x)).toThrowError(wg.DisposedError);
    expect(() => wg.relu(x)).toThrowError(/relu: tensor \[3\]/);
  });
  it('bad reshape', () => {
    expect(() => wg.zeros([2, 3]).reshape([4, 2])).toThrowError(/reshape: cannot view \[2, 3\]/);
  });
});

describe('creation and views', () => {
  it('tensor, zeros, ones, full, int32 round trip', async () => {
    expect(Array.from(await wg.tensor([[1, 2], [3, 4]]).toArray())).toEqual([1, 2, 3, 4]);
    expect(wg.tensor([[1, 2], [3, 4]]).shape).toEqual([2, 2]);
    expect(Array.from(await wg.zeros([3]).toArray())).toEqual([0, 0, 0]);
    expect(Array.from(await wg.ones([2]).toArray())).toEqual([1, 1]);
    expect(Array.from(await wg.full([2], -2.5).toArray())).toEqual([-2.5, -2.5]);
    const ints = await wg.tensor(new Int32Array([-7, 0, 2 ** 31 - 1])).toArray();
    expect(ints).toBeInstanceOf(Int32Array);
    expect(Array.from(ints)).toEqual([-7, 0, 2 ** 31 - 1]);
    expect(Array.from(await wg.full([2], -3, { dtype: 'int32' }).toArray())).toEqual([-3, -3]);
    expect(await wg.tensor([42]).item()).toBe(42);
  });

  it('randn and rand are seeded', async () => {
    const a = await wg.randn([100], { seed: 7 }).toArray();
    const b = await wg.randn([100], { seed: 7 }).toArray();
    const c = await wg.randn([100], { seed: 8 }).toArray();
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(a)).not.toEqual(Array.from(c));
    const u = await wg.rand([1000], { seed: 1 }).toArray();
    expect(Math.min(...u)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...u)).toBeLessThan(1);
    const mean = Array.from(u).reduce((s, v) => s + v, 0) / u.length;
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.05);
  });

  it('transpose is a view; toArray of a view reads it in logical order', async () => {
    const x = wg.tensor([[1, 2, 3], [4, 5, 6]]);
    const t = x.transpose();
    expect(t.shape).toEqual([3, 2]);
    expect(Array.from(await t.toArray())).toEqual([1, 4, 2, 5, 3, 6]);
    expect(Array.from(await t.reshape([6]).toArray())).toEqual([1, 4, 2, 5, 3, 6]);
    expect(Array.from(await x.reshape([3, -1]).toArray())).toEqual([1, 2, 3, 4, 5, 6]);
  });
});

describe('tidy and memory', () => {
  it('tidy frees what it created except the result', () => {
    const before = wg.memory().liveTensors;
    const kept = wg.tidy(() => {
      const a = wg.ones([1000]);
      const b = a.mul(3);
      return b.add(1);
    });
    expect(wg.memory().liveTensors).toBe(before + 1);
    kept.dispose();
    expect(wg.memory().liveTensors).toBe(before);
  });
});

describe('dropout', () => {
  it('drops about p of the elements, scales the rest, and backward reuses the same mask', async () => {
    const rng = new Rng();
    const n = 4000;
    const x = rng.array(n, 0.5, 1.5);
    const xt = gpuTensor(x, [40, 100], true);
    const y = wg.dropout(xt, 0.3, 1234);
    const out = await y.toArray();
    const dropped = out.filter((v) => v === 0).length / n;
    expect(Math.abs(dropped - 0.3)).toBeLessThan(0.03);
    out.forEach((v, i) => v !== 0 && expect(Math.abs(v - x[i]! / 0.7)).toBeLessThan(1e-5 * (1 + Math.abs(v))));
    y.backward(wg.ones([40, 100]));
    const g = await xt.grad!.toArray();
    g.forEach((v, i) => expect(v).toBeCloseTo(out[i] === 0 ? 0 : 1 / 0.7, 5));
    // Same seed, same mask; another seed, another mask.
    const again = await wg.dropout(gpuTensor(x, [40, 100]), 0.3, 1234).toArray();
    expect(Array.from(again)).toEqual(Array.from(out));
    const other = await wg.dropout(gpuTensor(x, [40, 100]), 0.3, 99).toArray();
    expect(Array.from(other)).not.toEqual(Array.from(out));
  });
});

describe('finite-difference gradients', () => {
  for (const [name, op, f] of binaryCases) {
    it(name + ' (same shapes)', async () => {
      const rng = new Rng();
      await gradCheck({
        rng,
        inputs: [{ data: rng.array(15, -2, 2), shape: [3, 5] }, { data: rng.array(15, 0.5, 2), shape: [3, 5] }],
        gpuFn: ([a, b]) => op(a!, b!),
        refFn: ([a, b]) => ref.binary(a!, [3, 5], b!, [3, 5], f).data,
      });
    });
  }
});

afterAll(() => wg.shutdown());
