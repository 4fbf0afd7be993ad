import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Conv2dOptions } from '../../src/ops/conv2d';
import { operandSharing, setOperandSharing, type OperandSharing } from '../../src/kernels/sharing';
import { expectClose, gpu, gpuTensor, gradCheck, Rng, sizeOf, wg } from '../helpers';
import * as ref from '../reference/conv2d';

let sharings: OperandSharing[] = [];

beforeAll(async () => {
  await gpu();
  // The reference comparisons run with the sharing this device picks and with the
  // workgroup-memory variant (the one for devices without subgroups).
  sharings = [...new Set([operandSharing(), 'workgroup' as const])];
});
afterAll(() => setOperandSharing(null));

async function withEachSharing(f: (s: OperandSharing) => Promise<void>): Promise<void> {
  try {
    for (const s of sharings) {
      setOperandSharing(s);
      await f(s);
    }
  } finally {
    setOperandSharing(null);
  }
}

interface Case {
  x: number[];
  w: number[];
  opts: Conv2dOptions;
  bias: boolean;
}

// Awkward sizes: not multiples of the 16-channel or 8-pixel tiles, single channels, one pixel
// row, strides larger than the kernel, dilation, non-square everything. Comments name what a
// case is there for. The kernels switch loop order at 8 channels (input channels for the forward
// pass, output channels for the input gradient): cases on both sides.
const cases: Case[] = [
  { x: [1, 1, 5, 5], w: [1, 1, 3, 3], opts: {}, bias: true },
  { x: [2, 3, 7, 7], w: [4, 3, 3, 3], opts: { padding: 1 }, bias: true },
  { x: [3, 3, 13, 17], w: [5, 3, 5, 5], opts: { padding: 2, stride: 2 }, bias: false },
  { x: [2, 1, 17, 13], w: [4, 1, 3, 5], opts: { padding: [1, 2], stride: [2, 1] }, bias: true },
  { x: [1, 3, 13, 13], w: [5, 3, 3, 3], opts: { dilation: 2, padding: 2 }, bias: true },
  { x: [2, 3, 17, 7], w: [4, 3, 1, 1], opts: { stride: 3 }, bias: false }, // most dx pixels get no tap
  { x: [1, 3, 5, 7], w: [17, 3, 3, 3], opts: { padding: 1 }, bias: true }, // two channel tiles, second nearly empty
  { x: [3, 33, 5, 5], w: [5, 33, 3, 3], opts: {}, bias: false }, // C = 33: two input-channel tiles for dx
  { x: [2, 3, 33, 33], w: [5, 3, 3, 3], opts: { padding: 1 }, bias: true }, // 2178 pixels: several pixel workgroups
  { x: [1, 3, 17, 17], w: [4, 3, 3, 3], opts: { stride: 3, padding: 2, dilation: 2 }, bias: false },
  { x: [1, 2, 2, 2], w: [3, 2, 1, 1], opts: { stride: 3 }, bias: true }, // fewer rows than stride phases
  { x: [4, 1, 17, 17], w: [3, 1, 3, 3], opts: { padding: 1 }, bias: true }, // weight gradient split over rows
  { x: [2, 2, 1, 9], w: [3, 2, 1, 3], opts: { padding: [0, 1], stride: [1, 2] }, bias: false }, // one row
  // More than 8 channels on both sides: the kernels' other loop order, with strides and dilation.
  { x: [2, 12, 9, 11], w: [10, 12, 3, 3], opts: { stride: 2, padding: 1, dilation: [1, 2] }, bias: true },
  // 512 weight columns: the weight gradient's widest workgroups (64 invocations).
  { x: [2, 512, 3, 2], w: [3, 512, 1, 1], opts: { padding: [0, 1] }, bias: false },
];

const name = (c: Case) => `x ${c.x.join('×')} w ${c.w.join('×')} ${JSON.stringify(c.opts)}${c.bias ? ' +bias' : ''}`;

/**
 * f32 sums of many products carry absolute errors that scale with the largest sums in the tensor,
 * not with each element (an element near zero can come from cancelling terms). The tolerance is
 * therefore 1e-4 relative per element plus 1e-5 of the largest expected magnitude.
 */
function close(actual: ArrayLike<number>, expected: Float64Array, seed: number, what: string): void {
  const scale = expected.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  expectClose(actual, expected, { rtol: 1e-4, atol: 1e-5 * Math.max(scale, 1), seed, what });
}

function inputs(rng: Rng, c: Case) {
  return {
    x: rng.array(sizeOf(c.x)),
    w: rng.array(sizeOf(c.w)),
    b: c.bias ? rng.array(c.w[0]!) : null,
  };
}

describe('conv2d forward matches the float64 reference', () => {
  for (const c of cases) {
    it(name(c), () =>
      withEachSharing(async (s) => {
        const rng = new Rng();
        const { x, w, b } = inputs(rng, c);
        const g = ref.geometry(c.x, c.w, c.opts);
        const out = wg.conv2d(gpuTensor(x, c.x), gpuTensor(w, c.w), b && gpuTensor(b, [c.w[0]!]), c.opts);
        expect(out.shape).toEqual([g.N, g.O, g.OH, g.OW]);
        close(await out.toArray(), ref.conv2d(x, w, b, g), rng.seed, `forward (${s})`);
      }));
  }

  it('reads strided views of input, weight and bias', async () => {
    const rng = new Rng();
    // x stored as [N, H, C, W] and viewed as [N, C, H, W]; w as [C, O, kH, kW]; b a slice with an offset.
    const [N, C, H, W, O, k] = [2, 3, 9, 11, 5, 3];
    const xStored = rng.array(N * H * C * W);
    const wStored = rng.array(C * O * k * k);
    const bStored = rng.array(O + 2);
    const xt = wg.transpose(gpuTensor(xStored, [N, H, C, W]), [0, 2, 1, 3]);
    const wt = wg.transpose(gpuTensor(wStored, [C, O, k, k]), [1, 0, 2, 3]);
    const bt = wg.narrow(gpuTensor(bStored, [O + 2]), 0, 2, O);
    const x = await xt.toArray();
    const w = await wt.toArray();
    const b = bStored.slice(2);
    const opts = { padding: 1, stride: 2 };
    const g = ref.geometry([N, C, H, W], [O, C, k, k], opts);
    const out = wg.conv2d(xt, wt, bt, opts);
    close(await out.toArray(), ref.conv2d(x, w, b, g), rng.seed, 'forward of views');
  });

  it('takes an empty batch', async () => {
    const x = wg.zeros([0, 3, 5, 5], { requiresGrad: true });
    const w = wg.ones([4, 3, 3, 3], { requiresGrad: true });
    const out = wg.conv2d(x, w, null, { padding: 1 });
    expect(out.shape).toEqual([0, 4, 5, 5]);
    out.backward(wg.zeros([0, 4, 5, 5]));
    expect(x.grad!.shape).toEqual([0, 3, 5, 5]);
    expect(Array.from(await w.grad!.toArray())).toEqual(new Array(4 * 3 * 3 * 3).fill(0));
  });

  it('is a method of Tensor', async () => {
    const x = wg.ones([1, 2, 3, 3]);
    const w = wg.ones([1, 2, 3, 3]);
    expect(Array.from(await x.conv2d(w, null, { padding: 1 }).toArray())).toEqual([8, 12, 8, 12, 18, 12, 8, 12, 8]);
  });
});

describe('conv2d backward matches the float64 reference', () => {
  for (const c of cases) {
    it(name(c), () =>
      withEachSharing(async (s) => {
        const rng = new Rng();
        const { x, w, b } = inputs(rng, c);
        const g = ref.geometry(c.x, c.w, c.opts);
        const xt = gpuTensor(x, c.x, true);
        const wt = gpuTensor(w, c.w, true);
        const bt = b && gpuTensor(b, [c.w[0]!], true);
        const out = wg.conv2d(xt, wt, bt, c.opts);
        const dy = rng.array(out.size);
        out.backward(gpuTensor(dy, out.shape));
        close(await xt.grad!.toArray(), ref.conv2dGradInput(dy, w, g), rng.seed, `dx (${s})`);
        close(await wt.grad!.toArray(), ref.conv2dGradWeight(dy, x, g), rng.seed, `dw (${s})`);
        if (bt) close(await bt.grad!.toArray(), ref.conv2dGradBias(dy, g), rng.seed, `db (${s})`);
      }));
  }

  it('computes only the gradients that are needed (a first layer: the input needs none)', async () => {
    const rng = new Rng();
    const c = cases[1]!;
    const { x, w, b } = inputs(rng, c);
    const g = ref.geometry(c.x, c.w, c.opts);
    const xt = gpuTensor(x, c.x);
    const wt = gpuTensor(w, c.w, true);
    const bt = gpuTensor(b!, [c.w[0]!]);
    const out = wg.conv2d(xt, wt, bt, c.opts);
    const dy = rng.array(out.size);
    out.backward(gpuTensor(dy, out.shape));
    expect(xt.grad).toBeNull();
    expect(bt.grad).toBeNull();
    close(await wt.grad!.toArray(), ref.conv2dGradWeight(dy, x, g), rng.seed, 'dw');
  });

  it('takes a non-contiguous output gradient', async () => {
    const rng = new Rng();
    const c = cases[2]!;
    const { x, w } = inputs(rng, c);
    const g = ref.geometry(c.x, c.w, c.opts);
    const xt = gpuTensor(x, c.x, true);
    const wt = gpuTensor(w, c.w, true);
    const out = wg.conv2d(xt, wt, null, c.opts);
    // dy stored as [N, OH, O, OW], handed over as a transposed view.
    const dyStored = rng.array(out.size);
    const dyView = wg.transpose(gpuTensor(dyStored, [g.N, g.OH, g.O, g.OW]), [0, 2, 1, 3]);
    const dy = await dyView.toArray();
    out.backward(dyView);
    close(await xt.grad!.toArray(), ref.conv2dGradInput(dy, w, g), rng.seed, 'dx');
    close(await wt.grad!.toArray(), ref.conv2dGradWeight(dy, x, g), rng.seed, 'dw');
  });

  it('frees its temporaries: forward leaves the output, backward the gradients', async () => {
    const c = cases[9]!;
    const rng = new Rng();
    const { x, w } = inputs(rng, c);
    const xt = wg.transpose(gpuTensor(x, c.x, true), [0, 1, 3, 2]); // a view: forces a gathered copy
    const wt = gpuTensor(w, c.w, true);
    const before = wg.memory().liveTensors;
    const out = wg.noGrad(() => wg.conv2d(xt, wt, null, c.opts));
    expect(wg.memory().liveTensors).toBe(before + 1);
    out.dispose();
    const y = wg.conv2d(xt, wt, null, c.opts);
    const dy = wg.ones(y.shape);
    y.backward(dy);
    // y, dy, and a .grad for each of the leaves (x under the view, and w); the graph is freed.
    expect(wg.memory().liveTensors).toBe(before + 4);
  });
});

describe('conv2d gradients match finite differences', () => {
  const small: Case[] = [
    { x: [2, 2, 5, 6], w: [3, 2, 3, 3], opts: { padding: 1 }, bias: true },
    { x: [1, 2, 7, 6], w: [3, 2, 3, 2], opts: { stride: 2, padding: [1, 0] }, bias: true },
    { x: [2, 1, 7, 7], w: [2, 1, 3, 3], opts: { dilation: 2, stride: [1, 2], padding: 2 }, bias: false },
  ];
  for (const c of small) {
    it(name(c), async () => {
      const rng = new Rng();
      const { x, w, b } = inputs(rng, c);
      const g = ref.geometry(c.x, c.w, c.opts);
      const data = [
        { data: x, shape: c.x },
        { data: w, shape: c.w },
        ...(b ? [{ data: b, shape: [c.w[0]!] }] : []),
      ];
      await gradCheck({
        inputs: data,
        gpuFn: ([xt, wt, bt]) => wg.conv2d(xt!, wt!, bt ?? null, c.opts),
        refFn: ([xv, wv, bv]) => ref.conv2d(xv!, wv!, bv ?? null, g),
        rng,
      });
    });
  }
});

describe('conv2d rejects bad arguments with clear errors', () => {
  const x = () => wg.zeros([2, 3, 8, 8]);
  const w = () => wg.zeros([4, 3, 3, 3]);

  it('wrong ranks', () => {
    expect(() => wg.conv2d(wg.zeros([3, 8, 8]), w())).toThrow(/conv2d: input must be 4-D \[N, C, H, W\], got \[3, 8, 8\]/);
    expect(() => wg.conv2d(x(), wg.zeros([4, 3, 3]))).toThrow(/conv2d: weight must be 4-D .*got \[4, 3, 3\]/);
  });

  it('channel mismatch', () => {
    expect(() => wg.conv2d(x(), wg.zeros([4, 2, 3, 3]))).toThrow(
      /conv2d: input \[2, 3, 8, 8\] has 3 channels but weight \[4, 2, 3, 3\] expects 2/,
    );
  });

  it('a kernel larger than the padded input', () => {
    expect(() => wg.conv2d(x(), wg.zeros([4, 3, 9, 3]))).toThrow(wg.ShapeError);
    expect(() => wg.conv2d(x(), wg.zeros([4, 3, 5, 5]), null, { dilation: 2 })).toThrow(
      /conv2d: kernel 5×5 \(dilation 2×2, spanning 9×9\) does not fit the padded input 8×8/,
    );
    // With padding the same kernel fits.
    expect(wg.conv2d(x(), wg.zeros([4, 3, 5, 5]), null, { dilation: 2, padding: 1 }).shape).toEqual([2, 4, 2, 2]);
  });

  it('non-positive stride or dilation, negative or fractional padding', () => {
    expect(() => wg.conv2d(x(), w(), null, { stride: 0 })).toThrow(/conv2d: stride must be a positive integer or a pair of them, got 0/);
    expect(() => wg.conv2d(x(), w(), null, { stride: [1, -2] })).toThrow(/conv2d: stride must be a positive integer/);
    expect(() => wg.conv2d(x(), w(), null, { dilation: 0 })).toThrow(/conv2d: dilation must be a positive integer/);
    expect(() => wg.conv2d(x(), w(), null, { padding: -1 })).toThrow(/conv2d: padding must be a non-negative integer/);
    expect(() => wg.conv2d(x(), w(), null, { padding: 1.5 })).toThrow(/conv2d: padding must be a non-negative integer/);
  });

  it('a bias of the wrong shape', () => {
    expect(() => wg.conv2d(x(), w(), wg.zeros([5]))).toThrow(
      /conv2d: bias \[5\] does not match the 4 output channels of weight \[4, 3, 3, 3\]/,
    );
    expect(() => wg.conv2d(x(), w(), wg.zeros([4, 1]))).toThrow(wg.ShapeError);
  });

  it('outputs too large to index', () => {
    expect(() => wg.conv2d(wg.zeros([1, 1, 1, 1]), wg.zeros([1, 1, 1, 1]), null, { padding: 30000 })).toThrow(
      /conv2d: the output \[1, 1, 60001, 60001\] has 2\^31 elements or more/,
    );
  });

  it('int32 operands', () => {
    const xi = wg.tensor(new Int32Array(2 * 3 * 8 * 8), [2, 3, 8, 8]);
    expect(() => wg.conv2d(xi, w())).toThrow(wg.DTypeError);
    expect(() => wg.conv2d(xi, w())).toThrow(/conv2d: input \[2, 3, 8, 8\] is int32, expected float32/);
  });
});
