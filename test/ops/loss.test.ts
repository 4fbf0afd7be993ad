import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runtime } from '../../src/runtime/device';
import type { Kernel } from '../../src/kernels/kernel';
import { setReduceProfile, type ReduceProfile } from '../../src/ops/reduce';
import { expectClose, gpu, gpuTensor, gradCheck, Rng, sizeOf, wg } from '../helpers';
import * as ref from '../reference/reduce';

beforeAll(() => gpu());
afterAll(() => wg.shutdown());

// Kernel layouts differ by adapter: run the reference comparisons under both profiles.
const profiles: [string, ReduceProfile][] = [
  ['many lanes per row (GPU profile)', { maxWorkgroup: 256, perLane: 4 }],
  ['few lanes per row (software profile)', { maxWorkgroup: 64, perLane: 128 }],
];

function randomLabels(rng: Rng, n: number, k: number): Int32Array {
  return Int32Array.from({ length: n }, () => rng.int(k));
}

const shapes: [number, number][] = [
  [1, 1],
  [1, 3],
  [3, 10],
  [17, 10],
  [33, 65],
  [65, 130],
  [130, 3],
  [4, 1000],
];

describe.each(profiles)('%s', (_, profile) => {
  beforeAll(() => setReduceProfile(profile));
  afterAll(() => setReduceProfile(null));

  describe('crossEntropy matches the float64 reference', () => {
    for (const form of ['Int32Array', 'int32 tensor'] as const) {
      it(`labels as ${form}`, async () => {
        for (const [n, k] of shapes) {
          const rng = new Rng();
          const x = rng.array(n * k, -5, 5);
          const labels = randomLabels(rng, n, k);
          const loss = wg.crossEntropy(gpuTensor(x, [n, k]), form === 'Int32Array' ? labels : wg.tensor(labels));
          expect(loss.shape).toEqual([]);
          expectClose([await loss.item()], [ref.crossEntropy(x, n, k, labels)], { seed: rng.seed, what: `[${n}, ${k}]` });
        }
      });
    }

    it('reads transposed logits and offset labels in place', async () => {
      const rng = new Rng();
      const [n, k] = [33, 10];
      const xt = rng.array(k * n, -5, 5); // stored [K, N]
      const x = ref.permute(xt, [k, n], [1, 0]).data;
      const all = randomLabels(rng, n + 7, k);
      const labels = wg.narrow(wg.tensor(all), 0, 7, n);
      const loss = wg.crossEntropy(gpuTensor(xt, [k, n]).transpose(), labels);
      expectClose([await loss.item()], [ref.crossEntropy(x, n, k, all.subarray(7))], { seed: rng.seed });
    });

    it('is stable for large logits', async () => {
      const loss = wg.crossEntropy(wg.tensor([[1000, 0, -1000], [-1000, -1000, -1000]]), new Int32Array([1, 2]));
      expectClose([await loss.item()], [(1000 + Math.log(3)) / 2], { rtol: 1e-6 });
    });
  });
});

describe('crossEntropy errors', () => {
  it('an out-of-range label in an Int32Array is caught at once, naming the label, row and K', () => {
    const logits = wg.zeros([3, 10]);
    expect(() => wg.crossEntropy(logits, new Int32Array([0, 9, 10]))).toThrowError(wg.ShapeError);
    expect(() => wg.crossEntropy(logits, new Int32Array([0, 9, 10]))).toThrowError(
      /crossEntropy: label 10 in row 2 is out of range for 10 classes \(logits \[3, 10\]\)/,
    );
    expect(() => wg.crossEntropy(logits, new Int32Array([0, -1, 3]))).toThrowError(/label -1 in row 1/);
  });

  it('an out-of-range label in a GPU tensor fails the next readback, then the engine goes on', async () => {
    const logits = wg.zeros([3, 10]);
    const loss = wg.crossEntropy(logits, wg.tensor(new Int32Array([0, 10, 3])));
    await expect(loss.item()).rejects.toThrowError(wg.ShapeError);
    const loss2 = wg.crossEntropy(logits, wg.tensor(new Int32Array([-4, 1, 3])));
    await expect(loss2.item()).rejects.toThrowError(/crossEntropy: a label is out of range for logits \[3, 10\] \(labels must be in \[0, 9\] or the ignored -100\)/);
    const ok = wg.crossEntropy(logits, wg.tensor(new Int32Array([0, 9, 3])));
    expectClose([await ok.item()], [Math.log(10)]);
  });

  it('wrong dtypes and shapes', () => {
    const logits = wg.zeros([4, 3]);
    expect(() => wg.crossEntropy(logits, wg.zeros([4]))).toThrowError(wg.DTypeError);
    expect(() => wg.crossEntropy(logits, wg.zeros([4]))).toThrowError(/crossEntropy: labels \[4\] are float32, expected int32/);
    expect(() => wg.crossEntropy(logits, wg.tensor(new Int32Array(5)))).toThrowError(
      /crossEntropy: labels \[5\] do not match logits \[4, 3\]/,
    );
    expect(() => wg.crossEntropy(logits, wg.tensor(new Int32Array(4), [4, 1]))).toThrowError(wg.ShapeError);
    expect(() => wg.crossEntropy(logits, new Int32Array(3))).toThrowError(/crossEntropy: 3 labels for logits \[4, 3\]/);
    expect(() => wg.crossEntropy(wg.zeros([12]), new Int32Array(12))).toThrowError(/crossEntropy: logits must be \[N, K\], got \[12\]/);
    expect(() => wg.crossEntropy(wg.tensor(new Int32Array(12), [4, 3]), new Int32Array(4))).toThrowError(/crossEntropy: logits \[4, 3\] is int32/);
    expect(() => wg.crossEntropy(wg.zeros([0, 3]), new Int32Array(0))).toThrowError(/crossEntropy: logits \[0, 3\] have no rows/);
  });
});

describe('crossEntropy labels of the wrong kind', () => {
  it('number[], Float32Array or anything else is a DTypeError that says what labels must be', () => {
    const logits = wg.zeros([4, 3]);
    const cases: [unknown, string][] = [
      [[0, 1, 2, 1], 'an array of numbers'],
      [new Float32Array(4), 'a Float32Array'],
      [new Uint8Array(4), 'a Uint8Array'],
      ['0,1,2,1', 'a string'],
      [undefined, 'undefined'],
    ];
    for (const [labels, what] of cases) {
      expect(() => wg.crossEntropy(logits, labels as Int32Array), what).toThrowError(wg.DTypeError);
      expect(() => wg.crossEntropy(logits, labels as Int32Array), what).toThrowError(
        new RegExp(`^crossEntropy: labels must be an int32 tensor or an Int32Array of class indices, got ${what}`),
      );
    }
    expect(() => wg.crossEntropy(logits, [0, 1, 2, 1] as unknown as Int32Array)).toThrowError(/Int32Array\.from\(labels\)/);
    logits.dispose();
  });
});

describe('crossEntropy gradient', () => {
  for (const [n, k] of [[1, 3], [5, 10], [17, 33]] as [number, number][]) {
    it(`[${n}, ${k}] against finite differences`, async () => {
      const rng = new Rng();
      const labels = randomLabels(rng, n, k);
      await gradCheck({
        rng,
        inputs: [{ data: rng.array(n * k, -3, 3), shape: [n, k] }],
        gpuFn: ([x]) => wg.crossEntropy(x!, labels),
        refFn: ([x]) => Float64Array.of(ref.crossEntropy(x!, n, k, labels)),
      });
    });
  }

  it('through transposed logits and GPU labels', async () => {
    const rng = new Rng();
    const [n, k] = [6, 4];
    const labels = randomLabels(rng, n, k);
    await gradCheck({
      rng,
      inputs: [{ data: rng.array(n * k, -3, 3), shape: [k, n] }],
      gpuFn: ([xt]) => wg.crossEntropy(xt!.transpose(), wg.tensor(labels)),
      refFn: ([xt]) => Float64Array.of(ref.crossEntropy(ref.permute(xt!, [k, n], [1, 0]).data, n, k, labels)),
    });
  });

  it('frees its temporaries: the forward leaves only the loss, backward only the gradient', () => {
    const x = wg.zeros([4, 3], { requiresGrad: true });
    const labels = wg.tensor(new Int32Array([0, 1, 2, 0]));
    const before = wg.memory().liveTensors;
    wg.noGrad(() => wg.crossEntropy(x, new Int32Array([0, 1, 2, 0]))).dispose();
    wg.noGrad(() => wg.crossEntropy(x, labels)).dispose();
    expect(wg.memory().liveTensors).toBe(before);
    for (const l of [labels, new Int32Array([0, 1, 2, 0])]) {
      const loss = wg.crossEntropy(x, l);
      loss.backward();
      loss.dispose();
    }
    expect(wg.memory().liveTensors).toBe(before + 1); // x.grad
  });

  it('backward runs one crossEntropy kernel', async () => {
    const rng = new Rng();
    const x = gpuTensor(rng.array(64 * 10), [64, 10], true);
    const loss = wg.crossEntropy(x, randomLabels(rng, 64, 10));
    const names: string[] = [];
    const ex = runtime().executor;
    ex.observer = { onDispatch: (k: Kernel) => void names.push(k.name) };
    try {
      loss.backward();
    } finally {
      ex.observer = null;
    }
    // Names carry the row-combining variant after a slash (crossEntropy.backward/subgroup).
    expect(names.filter((s) => s !== 'fill').map((s) => s.split('/')[0])).toEqual(['crossEntropy.backward']);
    expect(x.grad!.shape).toEqual([64, 10]);
  });
});

describe('crossEntropy options: ignoreIndex and labelSmoothing (as PyTorch)', () => {
  // Labels in [0, K) with some set to the ignored one (−100 by default, or an in-range class).
  const withIgnored = (rng: Rng, n: number, k: number, ignore: number) =>
    Int32Array.from({ length: n }, () => (rng.uniform() < 0.3 ? ignore : rng.int(k)));
  const cases: [number, number, wg.CrossEntropyOptions][] = [
    [1, 3, { labelSmoothing: 0.1 }],
    [17, 10, { reduction: 'sum' }],
    [33, 65, { ignoreIndex: 0, labelSmoothing: 0.1, reduction: 'sum' }],
    [17, 10, { labelSmoothing: 0.25 }],
    [33, 65, {}],
    [33, 65, { ignoreIndex: 0, labelSmoothing: 0.1 }],
    [65, 7, { ignoreIndex: 3 }],
    [8, 5, { labelSmoothing: 1 }],
  ];
  for (const [n, k, opts] of cases) {
    for (const form of ['Int32Array', 'int32 tensor'] as const) {
      it(`[${n}, ${k}] ${JSON.stringify(opts)}, labels as ${form}: value and gradient`, async () => {
        const rng = new Rng();
        const labels = withIgnored(rng, n, k, opts.ignoreIndex ?? -100);
        if (labels.every((l) => l === (opts.ignoreIndex ?? -100))) labels[0] = 1; // at least one row counts
        const x = rng.array(n * k, -4, 4);
        const lab = () => (form === 'Int32Array' ? labels : wg.tensor(labels));
        const loss = wg.crossEntropy(gpuTensor(x, [n, k]), lab(), opts);
        expectClose([await loss.item()], [ref.crossEntropyWith(x, n, k, labels, opts)], { seed: rng.seed });
        await gradCheck({
          rng,
          inputs: [{ data: x, shape: [n, k] }],
          gpuFn: ([t]) => t!.crossEntropy(lab(), opts),
          refFn: ([t]) => Float64Array.of(ref.crossEntropyWith(t!, n, k, labels, opts)),
        });
      });
    }
  }

  it('every row ignored: NaN loss (0/0, as PyTorch) and a zero gradient; the sum is 0', async () => {
    const x = wg.randn([3, 4], { seed: 3, requiresGrad: true });
    const loss = wg.crossEntropy(x, wg.tensor(new Int32Array([-100, -100, -100])));
    expect(Number.isNaN(await loss.item())).toBe(true);
    loss.backward();
    expect(Array.from(await x.grad!.toArray())).toEqual(new Array(12).fill(0));
    x.grad = null;
    const sum = wg.crossEntropy(x, wg.tensor(new Int32Array([-100, -100, -100])), { reduction: 'sum' });
    expect(await sum.item()).toBe(0);
    sum.backward();
    expect(Array.from(await x.grad!.toArray())).toEqual(new Array(12).fill(0));
    expect(() => wg.crossEntropy(x, new Int32Array(3), { reduction: 'none' as never })).toThrowError(/crossEntropy: reduction must be 'mean' or 'sum', got none/);
  });

  it('the ignored label passes the range check; others are still caught', async () => {
    const logits = wg.zeros([3, 4]);
    expect(() => wg.crossEntropy(logits, new Int32Array([0, -100, 9]))).toThrowError(/label 9 in row 2 is out of range/);
    expect(() => wg.crossEntropy(logits, new Int32Array([0, 7, 1]), { ignoreIndex: 7 })).not.toThrow();
    const bad = wg.crossEntropy(logits, wg.tensor(new Int32Array([0, -1, 1])));
    await expect(bad.item()).rejects.toThrowError(/crossEntropy: a label is out of range for logits \[3, 4\] \(labels must be in \[0, 3\] or the ignored -100\)/);
    expectClose([await wg.crossEntropy(logits, wg.tensor(new Int32Array([0, 5, 1])), { ignoreIndex: 5 }).item()], [Math.log(4)]);
    expect(() => wg.crossEntropy(logits, new Int32Array(3), { labelSmoothing: 1.5 })).toThrowError(/crossEntropy: labelSmoothing must be in \[0, 1\], got 1.5/);
    expect(() => wg.crossEntropy(logits, new Int32Array(3), { ignoreIndex: 0.5 })).toThrowError(/crossEntropy: ignoreIndex must be an int32/);
  });

  it('NaN and ±Inf logits propagate as in PyTorch', async () => {
    // A NaN anywhere in a counted row makes the loss NaN; +Inf in the label's column gives NaN
    // (Inf − Inf); a row that is ignored does not count, whatever it holds.
    const x = (rows: number[][]) => wg.tensor(rows);
    expect(Number.isNaN(await wg.crossEntropy(x([[0, NaN], [1, 2]]), new Int32Array([0, 1])).item())).toBe(true);
    expect(Number.isNaN(await wg.crossEntropy(x([[Infinity, 0], [1, 2]]), new Int32Array([0, 1])).item())).toBe(true);
    expect(Number.isNaN(await wg.crossEntropy(x([[Infinity, 0], [1, 2]]), new Int32Array([1, 1])).item())).toBe(true);
    expect(Number.isNaN(await wg.crossEntropy(x([[-Infinity, -Infinity], [1, 2]]), new Int32Array([1, 1])).item())).toBe(true);
    expect(await wg.crossEntropy(x([[-Infinity, 0], [1, 2]]), new Int32Array([0, 1])).item()).toBe(Infinity);
    // The gradient of a NaN row is NaN; the other rows' are what they would be alone (× 1/2).
    const t = wg.tensor([[0, NaN], [1, 2]], undefined, { requiresGrad: true });
    wg.crossEntropy(t, new Int32Array([0, 1])).backward();
    const g = await t.grad!.toArray();
    expect(Number.isNaN(g[0]!) && Number.isNaN(g[1]!)).toBe(true);
    const p1 = 1 / (1 + Math.E);
    expectClose(g.subarray(2), [p1 / 2, -p1 / 2]);
    expect(await wg.crossEntropy(x([[-Infinity, 0], [1, 2]]), new Int32Array([1, 1])).item()).toBeCloseTo(Math.log(1 + Math.exp(-1)) / 2, 6);
    expect(await wg.crossEntropy(x([[NaN, 0], [1, 2]]), new Int32Array([-100, 1])).item()).toBeCloseTo(Math.log(1 + Math.exp(-1)), 6);
  });
});

describe('mse', () => {
  it('matches the reference', async () => {
    for (const shape of [[1], [17, 33], [2, 3, 5], [100_000]]) {
      const rng = new Rng();
      const a = rng.array(sizeOf(shape), -2, 2);
      const b = rng.array(sizeOf(shape), -2, 2);
      const out = wg.mse(gpuTensor(a, shape), gpuTensor(b, shape));
      expect(out.shape).toEqual([]);
      expectClose([await out.item()], [ref.mse(a, b)], { seed: rng.seed, what: `mse ${shape}` });
    }
  });

  it('gradient with respect to both inputs', async () => {
    const rng = new Rng();
    await gradCheck({
      rng,
      inputs: [
        { data: rng.array(15, -2, 2), shape: [3, 5] },
        { data: rng.array(15, -2, 2), shape: [3, 5] },
      ],
      gpuFn: ([a, b]) => wg.mse(a!, b!),
      refFn: ([a, b]) => Float64Array.of(ref.mse(a!, b!)),
    });
  });

  it('errors', () => {
    expect(() => wg.mse(wg.zeros([3, 5]), wg.zeros([5]))).toThrowError(wg.ShapeError);
    expect(() => wg.mse(wg.zeros([3, 5]), wg.zeros([5]))).toThrowError(/mse: shapes \[3, 5\] and \[5\] differ/);
    expect(() => wg.mse(wg.zeros([2]), wg.tensor(new Int32Array(2)))).toThrowError(/mse: second operand \[2\] is int32, expected float32/);
  });

  it('leaves only the result alive', () => {
    const a = wg.ones([4]);
    const b = wg.zeros([4]);
    const before = wg.memory().liveTensors;
    const out = wg.mse(a, b);
    expect(wg.memory().liveTensors).toBe(before + 1);
    out.dispose();
  });
});
