// cat, stack, split, chunk and narrow: values and gradients against float64 references, views
// where the layout allows, errors that name the op and the shapes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runtime } from '../../src/runtime/device';
import { gpu, gpuTensor, Rng, sizeOf, wg } from '../helpers';
import * as ref from '../reference/join';
import { opTable, type OpCase } from './op-table';

beforeAll(() => gpu());
afterAll(() => wg.shutdown());

/** Names of the kernels dispatched while fn runs. */
function kernelsUsed(fn: () => void): string[] {
  const ex = runtime().executor;
  const names: string[] = [];
  const prev = ex.observer;
  ex.observer = { onDispatch: (k) => void names.push(k.name) };
  try {
    fn();
  } finally {
    ex.observer = prev;
  }
  return names;
}

const CATS: [number[][], number][] = [
  [[[1], [1]], 0],
  [[[3, 17], [5, 17], [1, 17]], 0],
  [[[17, 3], [17, 1], [17, 33]], 1],
  [[[2, 3, 65], [2, 3, 1]], -1],
  [[[2, 0, 5], [2, 33, 5]], 1],
];

opTable('cat joins along an axis; each input gets its part of the gradient', [
  ...CATS.map(([shapes, axis]): OpCase => {
    const ax = axis < 0 ? axis + shapes[0]!.length : axis;
    const out = [...shapes[0]!];
    out[ax] = shapes.reduce((n, s) => n + s[ax]!, 0);
    return {
      name: `cat ${JSON.stringify(shapes)} axis ${axis}`,
      inputs: shapes.map((shape) => ({ shape })),
      run: (xs) => wg.cat(xs, axis),
      ref: (xs) => ref.cat(xs, shapes, ax),
      shape: out,
      atol: 0,
      rtol: 0,
    };
  }),
  {
    name: 'cat of transposed views',
    inputs: [{ shape: [17, 3] }, { shape: [17, 5] }],
    run: ([a, b]) => wg.cat([a!.transpose(), b!.transpose()], 0),
    ref: ([a, b]) => {
      const t = (x: Float64Array, r: number, c: number) => Float64Array.from({ length: r * c }, (_, i) => x[(i % r) * c + Math.floor(i / r)]!);
      return ref.cat([t(a!, 17, 3), t(b!, 17, 5)], [[3, 17], [5, 17]], 0);
    },
    shape: [8, 17],
    atol: 0,
    rtol: 0,
  },
  ...([[[3], 0], [[17, 5], 0], [[17, 5], 2], [[2, 33], -1]] as [number[], number][]).map(([shape, axis]): OpCase => {
    const out = [...shape];
    const ax = axis < 0 ? axis + shape.length + 1 : axis;
    out.splice(ax, 0, 3);
    return {
      name: `stack 3 × ${JSON.stringify(shape)} axis ${axis}`,
      inputs: [{ shape }, { shape }, { shape }],
      run: (xs) => wg.stack(xs, axis),
      // stack = cat of the inputs with a dimension of 1 inserted.
      ref: (xs) => ref.cat(xs, xs.map(() => { const s = [...shape]; s.splice(ax, 0, 1); return s; }), ax),
      shape: out,
      atol: 0,
      rtol: 0,
    };
  }),
]);

const CUTS: [number[], number, number, number][] = [
  [[1], 0, 0, 1],
  [[3, 17], 1, 5, 7],
  [[17, 3], 0, 16, 1],
  [[2, 33, 5], 1, 0, 33],
  [[2, 33, 5], -1, 2, 3],
  [[65], 0, 10, 0],
];

opTable(
  'narrow is a view with a gradient (zeros outside the slice)',
  CUTS.map(([shape, axis, start, len]): OpCase => {
    const ax = axis < 0 ? axis + shape.length : axis;
    const out = [...shape];
    out[ax] = len;
    return {
      name: `narrow ${JSON.stringify(shape)} axis ${axis} [${start}, ${start + len})`,
      inputs: [{ shape }],
      run: ([a]) => a!.narrow(axis, start, len),
      ref: ([a]) => ref.narrow(a!, shape, ax, start, len),
      shape: out,
      atol: 0,
      rtol: 0,
    };
  }),
);

describe('split and chunk', () => {
  it('follow torch.split and torch.chunk sizes, return views, and differentiate', async () => {
    const sizes = (ts: wg.Tensor[], axis: number) => ts.map((t) => t.shape[axis]);
    const x = wg.zeros([5, 7]);
    expect(sizes(wg.split(x, 2, 1), 1)).toEqual([2, 2, 2, 1]);
    expect(sizes(wg.split(x, [1, 4, 0, 2], 1), 1)).toEqual([1, 4, 0, 2]);
    expect(sizes(wg.split(x, 5), 0)).toEqual([5]);
    expect(sizes(wg.split(x, 9, -1), 1)).toEqual([7]);
    expect(sizes(wg.chunk(x, 3, 1), 1)).toEqual([3, 3, 1]);
    expect(sizes(wg.chunk(x, 4, 1), 1)).toEqual([2, 2, 2, 1]);
    expect(sizes(wg.chunk(wg.zeros([6]), 4), 0)).toEqual([2, 2, 2]); // fewer than asked, as torch.chunk
    expect(sizes(wg.chunk(wg.zeros([0, 2]), 3), 0)).toEqual([0, 0, 0]);
    expect(sizes(x.chunk(7, 1), 1)).toEqual([1, 1, 1, 1, 1, 1, 1]);
    expect(sizes(wg.split(wg.zeros([0]), 2), 0)).toEqual([0]);

    // The pieces are views: no kernel runs.
    const y = wg.randn([4, 9]);
    expect(kernelsUsed(() => wg.chunk(y, 3, 1))).toEqual([]);
    expect(kernelsUsed(() => y.split([2, 2], 0))).toEqual([]);

    // q, k, v = chunk(x, 3, -1); loss = Σ q·R1 + Σ v·R2: the gradient lands in the right thirds.
    const rng = new Rng();
    const data = rng.array(4 * 9);
    const leaf = gpuTensor(data, [4, 9], true);
    const [q, , v] = wg.chunk(leaf, 3, -1);
    const r1 = rng.array(12);
    const r2 = rng.array(12);
    wg.add(wg.mul(q!, gpuTensor(r1, [4, 3])).sum(), wg.mul(v!, gpuTensor(r2, [4, 3])).sum()).backward();
    const g = await leaf.grad!.toArray();
    const want = new Float64Array(36);
    for (let i = 0; i < 4; i++) for (let j = 0; j < 3; j++) {
      want[i * 9 + j] = r1[i * 3 + j]!;
      want[i * 9 + 6 + j] = r2[i * 3 + j]!;
    }
    expect(Array.from(g)).toEqual(Array.from(want, Math.fround));
  });

  it('split pieces reshape as views when their layout allows', () => {
    // [B, T, 3D] → q [B, T, D] (a slice) → [B, T, H, Dh]: splitting the last dim needs no copy.
    const qkv = wg.randn([2, 5, 3 * 12]);
    const [q] = wg.chunk(qkv, 3, -1);
    expect(kernelsUsed(() => q!.reshape([2, 5, 4, 3]).transpose([0, 2, 1, 3]))).toEqual([]);
    // Merging dims of a transposed view cannot be a view: a copy.
    expect(kernelsUsed(() => q!.reshape([2, 5, 4, 3]).transpose([0, 2, 1, 3]).reshape([2, 4, 15]))).toEqual(['copy']);
  });
});

describe('errors name the op and the shapes', () => {
  it('cat and stack', () => {
    const a = wg.zeros([2, 3]);
    expect(() => wg.cat([a, wg.zeros([2, 4])], 0)).toThrowError(wg.ShapeError);
    expect(() => wg.cat([a, wg.zeros([2, 4])], 0)).toThrowError(/cat: shapes \[2, 3\], \[2, 4\] differ outside axis 0/);
    expect(() => wg.cat([a, wg.zeros([2, 3, 1])], 0)).toThrowError(/cat: shapes \[2, 3\], \[2, 3, 1\]/);
    expect(() => wg.cat([a, a], 2)).toThrowError(/cat: axis 2 is out of range for a tensor of rank 2/);
    expect(() => wg.cat([], 0)).toThrowError(/cat: needs a non-empty list/);
    expect(() => wg.cat([a, wg.tensor(new Int32Array(6), [2, 3])], 0)).toThrowError(wg.DTypeError);
    expect(() => wg.cat([a, wg.tensor(new Int32Array(6), [2, 3])], 0)).toThrowError(/cat: tensors of dtypes \[2, 3\] float32, \[2, 3\] int32/);
    expect(() => wg.stack([a, wg.zeros([3, 2])])).toThrowError(/stack: shapes \[2, 3\], \[3, 2\] differ/);
    expect(() => wg.stack([a, a], 3)).toThrowError(/stack: axis 3 is out of range for a tensor of rank 3/);
  });

  it('split, chunk and narrow', () => {
    const a = wg.zeros([4, 6]);
    expect(() => wg.split(a, [2, 3], 1)).toThrowError(/split: sizes \[2, 3\] do not add up to dimension 1 of \[4, 6\] \(6\)/);
    expect(() => wg.split(a, 0, 1)).toThrowError(/split: size 0 must be a positive integer/);
    expect(() => wg.chunk(a, 0)).toThrowError(/chunk: the number of chunks must be a positive integer, got 0/);
    expect(() => wg.chunk(a, 2, -3)).toThrowError(/chunk: axis -3 is out of range for a tensor of rank 2/);
    expect(() => wg.narrow(a, 1, 4, 3)).toThrowError(/narrow: \[4, 7\) is outside dimension 1 of \[4, 6\]/);
  });
});

it('int32 tensors join too (token ids)', async () => {
  const a = wg.tensor(new Int32Array([1, 2, 3]), [1, 3]);
  const b = wg.tensor(new Int32Array([2 ** 31 - 1, -7, 0]), [1, 3]);
  const c = wg.cat([a, b], 1);
  expect(c.dtype).toBe('int32');
  expect(Array.from(await c.toArray())).toEqual([1, 2, 3, 2 ** 31 - 1, -7, 0]);
  expect(Array.from(await wg.stack([a, b], 2).toArray())).toEqual([1, 2 ** 31 - 1, 2, -7, 3, 0]);
  expect(sizeOf(wg.stack([a, b]).shape)).toBe(6);
});

describe('reshape of views', () => {
  it('is a view whenever the strides allow, a copy otherwise, with the values of the copy', async () => {
    const rng = new Rng();
    const data = rng.array(2 * 3 * 4 * 5);
    const base = gpuTensor(data, [2, 3, 4, 5]);
    const host = await base.toArray();
    // [view, its values read on the CPU, target shapes, whether each reshape is a view]
    const read = async (t: wg.Tensor) => Array.from(await wg.contiguous(t).toArray());
    const cases: [wg.Tensor, number[][], boolean[]][] = [
      [base.transpose([0, 2, 1, 3]), [[2, 4, 15], [8, 3, 5], [2, 4, 3, 5, 1], [120]], [false, false, true, false]],
      [base.narrow(3, 1, 3), [[6, 4, 3], [2, 12, 3], [24, 3], [2, 3, 2, 2, 3], [72]], [true, true, true, true, false]],
      [base.narrow(1, 1, 2), [[2, 40], [4, 20], [2, 2, 4, 5], [80]], [true, false, true, false]],
      [wg.expand(base.narrow(0, 0, 1).narrow(1, 0, 1).reshape([20]), [3, 20]), [[3, 4, 5], [60]], [true, false]],
    ];
    for (const [view, targets, isView] of cases) {
      const values = await read(view);
      for (const [i, target] of targets.entries()) {
        let out!: wg.Tensor;
        const kernels = kernelsUsed(() => (out = view.reshape(target)));
        expect(kernels, `${view.shape} → ${target}`).toEqual(isView[i] ? [] : ['copy']);
        expect(out.shape).toEqual(target);
        expect(await read(out), `${view.shape} → ${target}`).toEqual(values);
      }
    }
    expect(host.length).toBe(120);
  });
});
