// embedding, indexSelect and gather: values against float64 references at awkward shapes, the
// scatter-add backward against finite differences, the same bits on every run (repeated ids,
// every id the same, all different), out-of-range ids caught at the next readback, bad input.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectClose, gpu, gpuTensor, Rng, settleGarbage, sizeOf, wg } from '../helpers';
import * as ref from '../reference/indexing';
import { opTable, type OpCase } from './op-table';

beforeAll(() => gpu());
afterAll(() => wg.shutdown());

const EMBED: [number[], number, number][] = [
  [[1], 3, 1],
  [[17], 5, 33], // many repeats
  [[3, 17], 65, 3],
  [[2, 3, 5], 1, 17], // every id the same
  [[], 4, 5], // one id (0-d)
  [[65], 33, 2],
];

opTable('embedding picks weight rows; the gradient adds each output row into its row', [
  ...EMBED.map(([ids, v, d]): OpCase => ({
    name: `embedding ids ${JSON.stringify(ids)}, weight [${v}, ${d}]`,
    inputs: [{ shape: ids, ints: v }, { shape: [v, d] }],
    run: ([i, w]) => wg.embedding(i!, w!),
    ref: ([i, w]) => ref.embedding(i!, w!, d),
    shape: [...ids, d],
    atol: 0,
    rtol: 0,
  })),
  {
    name: 'embedding through transposed ids and a transposed weight',
    inputs: [{ shape: [17, 3], ints: 33 }, { shape: [5, 33] }],
    run: ([i, w]) => wg.embedding(i!.transpose(), w!.transpose()),
    ref: ([i, w]) => {
      const ids = Float64Array.from({ length: 51 }, (_, e) => i![(e % 17) * 3 + Math.floor(e / 17)]!);
      const wt = Float64Array.from({ length: 165 }, (_, e) => w![(e % 5) * 33 + Math.floor(e / 5)]!);
      return ref.embedding(ids, wt, 5);
    },
    shape: [3, 17, 5],
    atol: 0,
    rtol: 0,
  },
]);

const SELECT: [number[], number, number][] = [
  [[65], 0, 1],
  [[17, 33], 0, 65],
  [[17, 33], 1, 3],
  [[2, 33, 5], 1, 17],
  [[2, 3, 17], -1, 33],
];

opTable(
  'indexSelect picks slices along an axis (torch.index_select)',
  SELECT.map(([shape, axis, n]): OpCase => {
    const ax = axis < 0 ? axis + shape.length : axis;
    const out = [...shape];
    out[ax] = n;
    return {
      name: `indexSelect ${JSON.stringify(shape)} axis ${axis}, ${n} ids`,
      inputs: [{ shape }, { shape: [n], ints: shape[ax]! }],
      run: ([a, i]) => a!.indexSelect(axis, i!),
      ref: ([a, i]) => ref.indexSelect(a!, shape, ax, i!),
      shape: out,
      atol: 0,
      rtol: 0,
    };
  }),
);

const GATHER: [number[], number, number[]][] = [
  [[1], 0, [1]],
  [[17, 33], 1, [17, 5]],
  [[17, 33], 0, [65, 33]], // index longer than the input along the axis
  [[2, 17, 5], 1, [2, 3, 5]],
  [[2, 17, 5], 2, [1, 17, 1]], // index smaller outside the axis
  [[3, 4, 65], -1, [3, 4, 1]], // the log-probability of each label
];

opTable(
  'gather reads along an axis element by element (torch.gather)',
  GATHER.map(([shape, axis, index]): OpCase => {
    const ax = axis < 0 ? axis + shape.length : axis;
    return {
      name: `gather ${JSON.stringify(shape)} axis ${axis}, index ${JSON.stringify(index)}`,
      inputs: [{ shape }, { shape: index, ints: shape[ax]! }],
      run: ([a, i]) => wg.gather(a!, axis, i!),
      ref: ([a, i]) => ref.gather(a!, shape, ax, i!, index),
      shape: index,
      atol: 0,
      rtol: 0,
    };
  }),
);

describe('the scatter-add backward is deterministic', () => {
  /** Five runs of forward + backward: the weight gradient's bits each time. */
  async function gradients(ids: Int32Array, idsShape: number[], v: number, d: number, g: Float64Array): Promise<Float32Array[]> {
    const rng = new Rng(5);
    const w = rng.array(v * d);
    const runs: Float32Array[] = [];
    for (let r = 0; r < 5; r++) {
      const weight = gpuTensor(w, [v, d], true);
      const out = wg.embedding(wg.tensor(ids, idsShape), weight);
      out.backward(gpuTensor(g, out.shape));
      runs.push((await weight.grad!.toArray()) as Float32Array);
      weight.dispose();
      out.dispose();
    }
    return runs;
  }

  /** The weight gradient in float64: each row the sum of its ids' output rows. */
  function expected(ids: Int32Array, v: number, d: number, g: Float64Array): Float64Array {
    const out = new Float64Array(v * d);
    ids.forEach((id, e) => {
      for (let c = 0; c < d; c++) out[id * d + c] += g[e * d + c]!;
    });
    return out;
  }

  const cases: [string, (rng: Rng, n: number, v: number) => Int32Array, number, number, number][] = [
    ['every id the same', (_, n) => new Int32Array(n).fill(3), 1500, 7, 17],
    ['all different', (rng, n) => Int32Array.from(shuffle(rng, n)), 1500, 1500, 3],
    ['heavily repeated', (rng, n) => Int32Array.from({ length: n }, () => (rng.uniform() < 0.5 ? 2 : rng.int(9))), 1021, 9, 33],
  ];
  for (const [name, make, n, v, d] of cases) {
    it(`${name}: ${n} ids into [${v}, ${d}], the same bits on 5 runs, within rounding of float64`, async () => {
      const rng = new Rng();
      const ids = make(rng, n, v);
      // Large and small magnitudes mixed: a different summation order would change the bits.
      const g = Float64Array.from({ length: n * d }, () => Math.fround(rng.normal() * 10 ** rng.int(6)));
      const runs = await gradients(ids, [n], v, d, g);
      for (const r of runs.slice(1)) expect(r).toEqual(runs[0]);
      const want = expected(ids, v, d, g);
      const scale = Math.max(...Array.from(g, Math.abs));
      expectClose(runs[0]!, want, { rtol: 1e-5, atol: 1e-6 * scale * Math.sqrt(n), seed: rng.seed });
    });
  }

  it('gather and indexSelect gradients are deterministic too', async () => {
    const rng = new Rng();
    const a = rng.array(4 * 300);
    const idx = Int32Array.from({ length: 4 * 700 }, () => rng.int(3));
    const g = Float64Array.from({ length: 4 * 700 }, () => Math.fround(rng.normal() * 10 ** rng.int(6)));
    const once = async (op: 'gather' | 'indexSelect') => {
      const x = gpuTensor(a, [4, 300], true);
      const out = op === 'gather' ? wg.gather(x, 1, wg.tensor(idx, [4, 700])) : wg.indexSelect(x, 1, wg.tensor(idx.subarray(0, 700)));
      out.backward(gpuTensor(op === 'gather' ? g : g.subarray(0, 4 * 700), out.shape));
      return Array.from(await x.grad!.toArray());
    };
    for (const op of ['gather', 'indexSelect'] as const) {
      const first = await once(op);
      for (let r = 0; r < 4; r++) expect(await once(op)).toEqual(first);
    }
  });
});

function shuffle(rng: Rng, n: number): number[] {
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [p[i], p[j]] = [p[j]!, p[i]!];
  }
  return p;
}

describe('ids out of range and bad input', () => {
  it('an id out of range fails the next readback with a clear error; then the engine goes on', async () => {
    const w = wg.randn([10, 4]);
    for (const bad of [10, -1]) {
      const out = wg.embedding(wg.tensor(new Int32Array([0, bad, 3])), w);
      await expect(out.toArray()).rejects.toThrowError(wg.ShapeError);
    }
    const out = wg.embedding(wg.tensor(new Int32Array([12, 1])), w);
    await expect(out.toArray()).rejects.toThrowError(/embedding: an id is out of range: ids \[2\] for weight \[10, 4\] \(ids must be in \[0, 9\]\)/);
    const g = wg.gather(wg.zeros([3, 4]), 1, wg.tensor(new Int32Array([0, 4, 1]), [3, 1]));
    await expect(g.toArray()).rejects.toThrowError(/gather: an id is out of range: index \[3, 1\] for dimension 1 of input \[3, 4\] \(indices must be in \[0, 3\]\)/);
    const s = wg.indexSelect(wg.zeros([3, 4]), 0, wg.tensor(new Int32Array([3])));
    await expect(s.toArray()).rejects.toThrowError(/indexSelect: an id is out of range: ids \[1\] for dimension 0 of input \[3, 4\]/);
    const ok = wg.embedding(wg.tensor(new Int32Array([9, 0])), w);
    expect(ok.shape).toEqual([2, 4]);
    expect((await ok.toArray()).length).toBe(8);
  });

  it('float ids are a DTypeError naming the op', () => {
    const w = wg.zeros([5, 3]);
    expect(() => wg.embedding(wg.zeros([4]), w)).toThrowError(wg.DTypeError);
    expect(() => wg.embedding(wg.zeros([4]), w)).toThrowError(/embedding: ids \[4\] are float32, expected int32/);
    expect(() => wg.indexSelect(w, 0, wg.zeros([2]))).toThrowError(/indexSelect: ids \[2\] are float32, expected int32/);
    expect(() => wg.gather(w, 0, wg.zeros([2, 3]))).toThrowError(/gather: index \[2, 3\] are float32, expected int32/);
  });

  it('shapes that do not fit name the op and the shapes', () => {
    const ids = wg.tensor(new Int32Array([0, 1]));
    expect(() => wg.embedding(ids, wg.zeros([5]))).toThrowError(/embedding: weight must be \[V, D\], got \[5\] \(ids \[2\]\)/);
    expect(() => wg.indexSelect(wg.zeros([5, 3]), 2, ids)).toThrowError(/indexSelect: axis 2 is out of range for a tensor of rank 2/);
    expect(() => wg.indexSelect(wg.zeros([5, 3]), 0, wg.tensor(new Int32Array(4), [2, 2]))).toThrowError(/indexSelect: ids must be 1-D, got \[2, 2\]/);
    expect(() => wg.gather(wg.zeros([5, 3]), 1, wg.tensor(new Int32Array(2), [2]))).toThrowError(
      /gather: index \[2\] does not fit input \[5, 3\] along axis 1/,
    );
    expect(() => wg.gather(wg.zeros([5, 3]), 1, wg.tensor(new Int32Array(24), [6, 4]))).toThrowError(/gather: index \[6, 4\] does not fit input \[5, 3\]/);
  });
});

it('int32 tables are read too (no gradient)', async () => {
  const table = wg.tensor(new Int32Array([7, -8, 2 ** 31 - 1, 0x7fc00001]), [4, 1]);
  const out = wg.embedding(wg.tensor(new Int32Array([3, 2, 0, 1]), [2, 2]), table);
  expect(out.dtype).toBe('int32');
  expect(Array.from(await out.toArray())).toEqual([0x7fc00001, 2 ** 31 - 1, 7, -8]);
  expect(sizeOf(out.shape)).toBe(4);
});

it('a training step through the sequence ops leaves live memory flat', async () => {
  const weight = wg.randn([50, 8], { seed: 1, requiresGrad: true });
  const ids = wg.tensor(Int32Array.from({ length: 24 }, (_, i) => (i * 7) % 50), [2, 12]);
  const labels = wg.tensor(Int32Array.from({ length: 24 }, (_, i) => (i % 5 === 0 ? -100 : i % 50)));
  const step = () => {
    wg.tidy(() => {
      const x = wg.embedding(ids, weight); // [2, 12, 8]
      const [a, b] = wg.chunk(x, 2, -1);
      const h = wg.cat([wg.silu(b!), a!], -1);
      const masked = wg.maskedFill(h, wg.tril(wg.ones([12, 8])).eq(0), 0);
      const logits = wg.matmul(wg.where(masked.gt(0), masked, wg.mul(masked, 0.1)), weight.transpose()); // [2, 12, 50]
      wg.crossEntropy(logits.reshape([24, 50]), labels, { labelSmoothing: 0.1 }).backward();
    });
    weight.grad!.dispose();
    weight.grad = null;
  };
  step();
  await wg.sync();
  await settleGarbage();
  const before = wg.memory();
  for (let i = 0; i < 3; i++) step();
  await wg.sync();
  await settleGarbage();
  const after = wg.memory();
  expect(after.liveTensors).toBe(before.liveTensors);
  expect(after.liveBytes).toBe(before.liveBytes);
});
