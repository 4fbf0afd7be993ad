// NaN and ±inf through every public op, against float64 references that follow PyTorch's semantics
// (test/reference/): NaN propagates through relu, clamp, maximum, max pooling, reductions, softmax,
// the losses and normalisation; infinities follow IEEE arithmetic (inf · 0 and inf − inf are NaN);
// nothing turns a NaN into 0 or into a finite number. Every input holds rows of each kind a row op
// meets: finite (with a 0), one NaN, one +inf, one −inf, only −inf, +inf with −inf, NaN with +inf.
// Row ops run with both ways of combining a row's lanes (subgroups, the workgroup-memory tree) and
// with few and many lanes per row.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setRowCombine, type RowCombine } from '../../src/kernels/rows';
import { setReduceProfile, type ReduceProfile } from '../../src/ops/reduce';
import { runtime } from '../../src/runtime/device';
import { gpu, gpuTensor, Rng, sizeOf, wg } from '../helpers';
import * as conv from '../reference/conv2d';
import * as ew from '../reference/elementwise';
import * as mm from '../reference/matmul';
import * as norm from '../reference/norm';
import * as pool from '../reference/pool';
import * as red from '../reference/reduce';

beforeAll(() => gpu());
afterAll(() => {
  setRowCombine(null);
  setReduceProfile(null);
});

// ---- inputs and comparison ---------------------------------------------------------------------

type Pattern = (row: Float64Array, rng: Rng) => void;

/** What each row of an input holds besides finite numbers (row r gets pattern r mod 7). */
const PATTERNS: Pattern[] = [
  (r, g) => void (r[g.int(r.length)] = 0),
  (r, g) => void (r[g.int(r.length)] = NaN),
  (r, g) => void (r[g.int(r.length)] = Infinity),
  (r, g) => void (r[g.int(r.length)] = -Infinity),
  (r) => void r.fill(-Infinity),
  (r, g) => {
    r[g.int(r.length)] = Infinity;
    r[g.int(r.length)] = -Infinity;
  },
  (r, g) => {
    r[g.int(r.length)] = NaN;
    r[g.int(r.length)] = Infinity;
  },
];

/** Values in [lo, hi) of `shape`, its rows (along the last axis) patterned with NaN and ±inf. */
function patterned(rng: Rng, shape: readonly number[], [lo, hi]: [number, number] = [-3, 3]): Float64Array {
  const data = rng.array(sizeOf(shape), lo, hi);
  const k = shape[shape.length - 1] ?? 1;
  for (let r = 0; r * k < data.length; r++) PATTERNS[r % PATTERNS.length]!(data.subarray(r * k, (r + 1) * k), rng);
  return data;
}

/** NaN where expected is NaN, the same infinity where it is infinite, else within tolerance. */
function expectSame(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, { rtol = 1e-4, atol = 1e-5 } = {}): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  const bad: string[] = [];
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    const ok = Number.isNaN(e)
      ? Number.isNaN(a)
      : !Number.isFinite(e)
        ? a === e
        : Number.isFinite(a) && Math.abs(a - e) <= atol + rtol * Math.abs(e);
    if (!ok) bad.push(`[${i}] ${a} (expected ${e})`);
  }
  if (bad.length) expect.fail(`${what}: ${bad.length} of ${expected.length} elements differ: ${bad.slice(0, 6).join(', ')}`);
}

// ---- the table -----------------------------------------------------------------------------------

interface Case {
  name: string;
  /** Shapes of the inputs, each patterned with NaN and ±inf unless listed in `finite`. */
  shapes: number[][];
  finite?: number[];
  run: (xs: wg.Tensor[]) => wg.Tensor;
  ref: (xs: Float64Array[]) => ArrayLike<number>;
  /** A row op: run it with each row-combining variant and lane count. */
  rows?: boolean;
  tol?: { rtol?: number; atol?: number };
}

const unary = (name: string, op: (t: wg.Tensor) => wg.Tensor, f: (x: number) => number, tol?: Case['tol']): Case => ({
  name,
  shapes: [[7, 9]],
  run: ([x]) => op(x!),
  ref: ([x]) => ew.unary(x!, f),
  tol,
});

const binary = (name: string, op: (a: wg.Tensor, b: wg.Tensor) => wg.Tensor, f: (x: number, y: number) => number): Case[] =>
  [[7, 5], [7, 1]].map((bShape) => ({
    name: `${name} [7, 5]·${formatShape(bShape)}`,
    shapes: [[7, 5], bShape],
    run: ([a, b]) => op(a!, b!),
    ref: ([a, b]) => ew.binary(a!, [7, 5], b!, bShape, f).data,
  }));

const formatShape = (s: readonly number[]): string => `[${s.join(', ')}]`;
const t2 = (x: Float64Array, rows: number, cols: number): Float64Array => mm.transpose(x, rows, cols);

const CASES: Case[] = [
  unary('neg', wg.neg, (x) => -x),
  unary('exp', wg.exp, Math.exp),
  unary('log', wg.log, Math.log),
  unary('sqrt', wg.sqrt, Math.sqrt),
  unary('relu', wg.relu, ew.relu),
  unary('gelu', wg.gelu, ew.gelu, { atol: 1e-6 }),
  unary('gelu tanh', (t) => wg.gelu(t, { approximate: 'tanh' }), ew.geluTanh, { atol: 1e-6 }),
  unary('silu', wg.silu, ew.silu, { atol: 1e-6 }),
  unary('tanh', wg.tanh, Math.tanh, { atol: 1e-6 }),
  unary('sigmoid', wg.sigmoid, ew.sigmoid, { atol: 1e-6 }),
  unary('abs', wg.abs, Math.abs),
  ...[0, 1, 0.5, 2, 3, -0.5, -1, -2, 1.5, 4, -3].map((p) => unary(`pow ${p}`, (t) => wg.pow(t, p), (x) => ew.pow(x, p))),
  unary('clamp [-1, 2]', (t) => wg.clamp(t, -1, 2), (x) => ew.clamp(x, -1, 2)),
  unary('isnan', wg.isnan, (x) => (Number.isNaN(x) ? 1 : 0)),
  unary('x + 1', (t) => wg.add(t, 1), (x) => x + 1),
  unary('2 − x', (t) => wg.sub(2, t), (x) => 2 - x),
  unary('x · 0', (t) => wg.mul(t, 0), (x) => x * 0),
  unary('x / 0', (t) => wg.div(t, 0), (x) => x / 0),
  unary('1 / x', (t) => wg.div(1, t), (x) => 1 / x),
  ...binary('add', wg.add, (x, y) => x + y),
  ...binary('sub', wg.sub, (x, y) => x - y),
  ...binary('mul', wg.mul, (x, y) => x * y),
  ...binary('div', wg.div, (x, y) => x / y),
  ...binary('maximum', wg.maximum, Math.max),
  // Comparisons: NaN is unequal to everything and neither less nor greater (ne is 1).
  ...binary('eq', wg.eq, (x, y) => Number(x === y)),
  ...binary('ne', wg.ne, (x, y) => Number(x !== y)),
  ...binary('lt', wg.lt, (x, y) => Number(x < y)),
  ...binary('le', wg.le, (x, y) => Number(x <= y)),
  ...binary('gt', wg.gt, (x, y) => Number(x > y)),
  ...binary('ge', wg.ge, (x, y) => Number(x >= y)),
  unary('x > 0 (a number operand)', (t) => wg.gt(t, 0), (x) => Number(x > 0)),
  {
    name: 'where(a > 0, a, b) and maskedFill(a, b < 0, -inf)',
    shapes: [[7, 5], [7, 5]],
    run: ([a, b]) => wg.add(wg.where(wg.gt(a!, 0), a!, b!), wg.maskedFill(a!, wg.lt(b!, 0), -Infinity)),
    ref: ([a, b]) => Float64Array.from(a!, (x, i) => (x > 0 ? x : b![i]!) + (b![i]! < 0 ? -Infinity : x)),
  },
  {
    name: 'tril and triu keep NaN and ±inf on their side, 0 on the other',
    shapes: [[7, 7]],
    run: ([x]) => wg.add(wg.tril(x!, -1), wg.triu(x!)),
    ref: ([x]) => x!,
  },
  {
    name: 'cat, stack, split',
    shapes: [[7, 5], [7, 3]],
    run: ([a, b]) => wg.contiguous(wg.split(wg.stack([wg.cat([a!, b!], 1), wg.cat([b!, a!], 1)], 0), 1, 0)[1]!),
    ref: ([a, b]) => Float64Array.from({ length: 56 }, (_, i) => {
      const [r, c] = [Math.floor(i / 8), i % 8];
      return c < 3 ? b![r * 3 + c]! : a![r * 5 + c - 3]!;
    }),
  },
  {
    name: 'embedding, indexSelect, gather copy NaN and ±inf',
    shapes: [[7, 5]],
    run: ([w]) => {
      const ids = wg.tensor(Int32Array.of(6, 1, 4, 4, 2), [5]);
      const index = wg.tensor(Int32Array.from({ length: 35 }, (_, i) => (i * 3) % 5), [7, 5]);
      return wg.cat([wg.reshape(wg.embedding(ids, w!), [25]), wg.reshape(wg.indexSelect(w!, 0, ids), [25]), wg.reshape(wg.gather(w!, 1, index), [35])], 0);
    },
    ref: ([w]) => {
      const rows = [6, 1, 4, 4, 2].flatMap((r) => Array.from(w!.subarray(r * 5, r * 5 + 5)));
      return [...rows, ...rows, ...Array.from({ length: 35 }, (_, i) => w![Math.floor(i / 5) * 5 + ((i * 3) % 5)]!)];
    },
  },
  {
    name: 'contiguous(transpose)',
    shapes: [[7, 5]],
    run: ([x]) => wg.contiguous(wg.transpose(x!)),
    ref: ([x]) => t2(x!, 7, 5),
  },
  {
    name: 'narrow, unsqueeze, reshape',
    shapes: [[7, 5]],
    run: ([x]) => wg.reshape(wg.unsqueeze(wg.narrow(x!, 1, 1, 3), 0), [21]),
    ref: ([x]) => Float64Array.from({ length: 21 }, (_, i) => x![Math.floor(i / 3) * 5 + 1 + (i % 3)]!),
  },
  {
    name: 'expand',
    shapes: [[7, 1]],
    run: ([x]) => wg.contiguous(wg.expand(x!, [7, 4])),
    ref: ([x]) => Float64Array.from({ length: 28 }, (_, i) => x![Math.floor(i / 4)]!),
  },
  {
    name: 'matmul [7, 5] @ [5, 3]',
    shapes: [[7, 5], [5, 3]],
    finite: [1],
    run: ([a, b]) => wg.matmul(a!, b!),
    ref: ([a, b]) => mm.matmul(a!, [7, 5], b!, [5, 3]).data,
  },
  {
    name: 'matmul [3, 7] @ [7, 5]',
    shapes: [[3, 7], [7, 5]],
    finite: [0],
    run: ([a, b]) => wg.matmul(a!, b!),
    ref: ([a, b]) => mm.matmul(a!, [3, 7], b!, [7, 5]).data,
  },
  {
    name: 'matmul [7, 33] @ [4, 33]ᵀ (a Linear layer)',
    shapes: [[7, 33], [4, 33]],
    finite: [1],
    run: ([a, w]) => wg.matmul(a!, wg.transpose(w!)),
    ref: ([a, w]) => mm.matmul(a!, [7, 33], t2(w!, 4, 33), [33, 4]).data,
  },
  ...[
    { stride: 1, padding: 1 },
    { stride: 2, padding: 0 },
  ].map(
    (o): Case => ({
      name: `conv2d stride ${o.stride} padding ${o.padding}`,
      shapes: [[1, 2, 7, 6], [3, 2, 3, 3], [3]],
      finite: [1, 2],
      run: ([x, w, b]) => wg.conv2d(x!, w!, b!, o),
      ref: ([x, w, b]) => conv.conv2d(x!, w!, b!, conv.geometry([1, 2, 7, 6], [3, 2, 3, 3], o)),
    }),
  ),
  ...[
    { k: [2, 2], stride: [2, 2], padding: [0, 0] },
    { k: [3, 3], stride: [2, 2], padding: [1, 1] },
  ].flatMap((c) =>
    (['maxPool2d', 'avgPool2d'] as const).map(
      (name): Case => ({
        name: `${name} k ${c.k} stride ${c.stride} padding ${c.padding}`,
        shapes: [[2, 2, 7, 6]],
        run: ([x]) => wg[name](x!, c.k as [number, number], { stride: c.stride as [number, number], padding: c.padding as [number, number] }),
        ref: ([x]) => pool[name](x!, { shape: [2, 2, 7, 6], ...c } as pool.PoolConfig),
      }),
    ),
  ),
  ...[5, 130].flatMap((k): Case[] => [
    { name: `sum [7, ${k}] over the rows`, shapes: [[7, k]], rows: true, run: ([x]) => wg.sum(x!, -1), ref: ([x]) => red.sum(x!, [7, k], -1).data },
    { name: `mean [7, ${k}] over the rows`, shapes: [[7, k]], rows: true, run: ([x]) => wg.mean(x!, -1), ref: ([x]) => red.mean(x!, [7, k], -1).data },
    { name: `max [7, ${k}] over the rows`, shapes: [[7, k]], rows: true, run: ([x]) => wg.max(x!, -1), ref: ([x]) => red.max(x!, [7, k], -1).data },
    { name: `argmax [7, ${k}] over the rows`, shapes: [[7, k]], rows: true, run: ([x]) => wg.argmax(x!, -1), ref: ([x]) => red.argmax(x!, [7, k], -1).data },
    { name: `softmax [7, ${k}]`, shapes: [[7, k]], rows: true, run: ([x]) => wg.softmax(x!, -1), ref: ([x]) => red.softmax(x!, [7, k], -1) },
    { name: `logSoftmax [7, ${k}]`, shapes: [[7, k]], rows: true, run: ([x]) => wg.logSoftmax(x!, -1), ref: ([x]) => red.logSoftmax(x!, [7, k], -1) },
    // Columns of a transposed view: adjacent invocations take adjacent outputs.
    { name: `sum over axis 0 of [7, ${k}]ᵀ`, shapes: [[7, k]], rows: true, run: ([x]) => wg.sum(wg.transpose(x!), 0), ref: ([x]) => red.sum(x!, [7, k], -1).data },
    { name: `max over axis 0 of [7, ${k}]ᵀ`, shapes: [[7, k]], rows: true, run: ([x]) => wg.max(wg.transpose(x!), 0), ref: ([x]) => red.max(x!, [7, k], -1).data },
    {
      name: `softmax over axis 0 of [7, ${k}]ᵀ`,
      shapes: [[7, k]],
      rows: true,
      run: ([x]) => wg.contiguous(wg.transpose(wg.softmax(wg.transpose(x!), 0))),
      ref: ([x]) => red.softmax(x!, [7, k], -1),
    },
  ]),
  { name: 'sum of everything', shapes: [[7, 5]], rows: true, run: ([x]) => wg.sum(x!), ref: ([x]) => red.sum(x!, [7, 5]).data },
  { name: 'max of everything', shapes: [[7, 5]], rows: true, run: ([x]) => wg.max(x!), ref: ([x]) => red.max(x!, [7, 5]).data },
  { name: 'argmax of everything', shapes: [[7, 5]], rows: true, run: ([x]) => wg.argmax(x!), ref: ([x]) => red.argmax(x!, [7, 5]).data },
  {
    name: 'nn.LayerNorm(5)',
    shapes: [[7, 5]],
    rows: true,
    run: ([x]) => new wg.nn.LayerNorm(5, { elementwiseAffine: false }).forward(x!),
    ref: ([x]) => norm.layerNorm(x!, 5, null, null),
  },
  {
    name: 'nn.LayerNorm(33)',
    shapes: [[7, 33]],
    rows: true,
    run: ([x]) => new wg.nn.LayerNorm(33, { elementwiseAffine: false }).forward(x!),
    ref: ([x]) => norm.layerNorm(x!, 33, null, null),
  },
];

const VARIANTS: RowCombine[] = ['subgroup', 'workgroup'];
const PROFILES: ReduceProfile[] = [
  { maxWorkgroup: 64, perLane: 128 },
  { maxWorkgroup: 256, perLane: 4 },
];

/** Run `fn` once per way of combining a row's lanes that this device has, and lane count. */
async function eachRowVariant(fn: (label: string) => Promise<void>): Promise<void> {
  const variants = runtime().hasFeature('subgroups') ? VARIANTS : VARIANTS.filter((v) => v !== 'subgroup');
  for (const v of variants) {
    for (const p of PROFILES) {
      setRowCombine(v);
      setReduceProfile(p);
      try {
        await fn(` (${v}, ${p.maxWorkgroup} lanes at most, ${p.perLane} per lane)`);
      } finally {
        setRowCombine(null);
        setReduceProfile(null);
      }
    }
  }
}

describe('every op on NaN and ±inf matches PyTorch', () => {
  for (const c of CASES) {
    it(c.name, async () => {
      const rng = new Rng();
      const data = c.shapes.map((s, i) => (c.finite?.includes(i) ? rng.array(sizeOf(s), -1, 1) : patterned(rng, s)));
      const expected = c.ref(data);
      const check = async (label: string) => {
        await wg.tidy(async () => {
          const out = c.run(data.map((d, i) => gpuTensor(d, c.shapes[i]!)));
          expectSame(await out.toArray(), expected, `${c.name}${label} (seed ${rng.seed})`, c.tol);
        });
      };
      if (c.rows) await eachRowVariant(check);
      else await check('');
    });
  }

  it('crossEntropy: each row alone, with the label on every class (a −inf logit picked gives +inf)', async () => {
    const rng = new Rng();
    const x = patterned(rng, [7, 5]);
    await eachRowVariant(async (label) => {
      const actual: number[] = [];
      const expected: number[] = [];
      await wg.tidy(async () => {
        const logits = gpuTensor(x, [7, 5]);
        for (let r = 0; r < 7; r++) {
          for (let k = 0; k < 5; k++) {
            actual.push(await wg.crossEntropy(wg.narrow(logits, 0, r, 1), Int32Array.of(k)).item());
            expected.push(red.crossEntropy(x.subarray(r * 5, r * 5 + 5), 1, 5, [k]));
          }
        }
      });
      expectSame(actual, expected, `crossEntropy${label} (seed ${rng.seed})`);
    });
  });

  it('crossEntropy with label smoothing and an ignored row: a NaN row is NaN, an ignored one does not count', async () => {
    const rng = new Rng();
    const x = patterned(rng, [7, 5]);
    const labels = Int32Array.from({ length: 7 }, (_, r) => (r === 3 ? -100 : r % 5));
    const opts = { labelSmoothing: 0.1, ignoreIndex: -100 };
    await eachRowVariant(async (label) => {
      const actual: number[] = [];
      const expected: number[] = [];
      await wg.tidy(async () => {
        const logits = gpuTensor(x, [7, 5]);
        for (let r = 0; r < 7; r++) {
          if (r === 3) continue; // alone, an ignored row leaves nothing to average (NaN, as PyTorch)
          const both = wg.cat([wg.narrow(logits, 0, r, 1), wg.narrow(logits, 0, 3, 1)], 0);
          actual.push(await wg.crossEntropy(both, Int32Array.of(labels[r]!, labels[3]!), opts).item());
          expected.push(red.crossEntropyWith(Float64Array.from([...x.subarray(r * 5, r * 5 + 5), ...x.subarray(15, 20)]), 2, 5, [labels[r]!, -100], opts));
        }
      });
      expectSame(actual, expected, `crossEntropy with options${label} (seed ${rng.seed})`);
    });
  });

  it('mse: each row alone', async () => {
    const rng = new Rng();
    const a = patterned(rng, [7, 5]);
    const b = rng.array(35, -1, 1);
    const actual: number[] = [];
    await wg.tidy(async () => {
      for (let r = 0; r < 7; r++) actual.push(await wg.mse(gpuTensor(a.subarray(r * 5, r * 5 + 5), [5]), gpuTensor(b.subarray(r * 5, r * 5 + 5), [5])).item());
    });
    const expected = Array.from({ length: 7 }, (_, r) => red.mse(a.subarray(r * 5, r * 5 + 5), b.subarray(r * 5, r * 5 + 5)));
    expectSame(actual, expected, `mse (seed ${rng.seed})`);
  });

  it('dropout keeps NaN and turns ±inf into NaN where it drops (x · 0), as PyTorch', async () => {
    const rng = new Rng();
    const x = patterned(rng, [7, 9]);
    const p = 0.5;
    await wg.tidy(async () => {
      // The mask is a function of (seed, index): read it from a run on ones.
      const kept = Array.from(await wg.dropout(wg.ones([7, 9]), p, 42).toArray(), (v) => v !== 0);
      expect(kept.some((k) => !k) && kept.some((k) => k)).toBe(true);
      const out = await wg.dropout(gpuTensor(x, [7, 9]), p, 42).toArray();
      expectSame(out, Float64Array.from(x, (v, i) => ew.dropout(v, kept[i]!, p)), `dropout (seed ${rng.seed})`);
    });
  });

  it('nn.BatchNorm2d: a channel holding NaN or ±inf is NaN, the others are normalised (training and eval)', async () => {
    const rng = new Rng();
    const shape = [2, 2, 7, 3];
    // Channel 0 patterned, channel 1 finite.
    const x = rng.array(sizeOf(shape), -3, 3);
    const plane = 7 * 3;
    for (const b of [0, 1]) x.set(patterned(rng, [7, 3]), b * 2 * plane);
    const bn = new wg.nn.BatchNorm2d(2, { affine: false });
    await wg.tidy(async () => {
      expectSame(await bn.forward(gpuTensor(x, shape)).toArray(), norm.batchNorm2d(x, shape), `BatchNorm2d training (seed ${rng.seed})`);
    });
    // Eval with fresh running statistics (mean 0, variance 1): x / sqrt(1 + eps) element by element.
    const fresh = new wg.nn.BatchNorm2d(2, { affine: false });
    fresh.eval();
    await wg.tidy(async () => {
      expectSame(await fresh.forward(gpuTensor(x, shape)).toArray(), Float64Array.from(x, (v) => v / Math.sqrt(1 + 1e-5)), `BatchNorm2d eval (seed ${rng.seed})`);
    });
    bn.dispose();
    fresh.dispose();
  });
});

// ---- gradients -----------------------------------------------------------------------------------

/** Unary ops and their backward rules as PyTorch evaluates them (g: upstream gradient, x: input). */
const GRADS: [string, (t: wg.Tensor) => wg.Tensor, (g: number, x: number) => number][] = [
  ['relu', wg.relu, ew.reluGrad],
  ['exp', wg.exp, (g, x) => g * Math.exp(x)],
  ['log', wg.log, (g, x) => g / x],
  ['sqrt', wg.sqrt, (g, x) => g / (2 * Math.sqrt(x))],
  ['tanh', wg.tanh, (g, x) => g * (1 - Math.tanh(x) ** 2)],
  ['sigmoid', wg.sigmoid, (g, x) => g * ew.sigmoid(x) * (1 - ew.sigmoid(x))],
  ['gelu', wg.gelu, (g, x) => g * (0.5 * (1 + ew.erf(x / Math.SQRT2)) + (x * Math.exp(-0.5 * x * x)) / Math.sqrt(2 * Math.PI))],
  ['gelu tanh', (t) => wg.gelu(t, { approximate: 'tanh' }), (g, x) => g * ew.geluTanhGrad(x)],
  ['clamp [-1, 2]', (t) => wg.clamp(t, -1, 2), (g, x) => ew.clampGrad(g, x, -1, 2)],
  ['pow 2', (t) => wg.pow(t, 2), (g, x) => g * 2 * x],
  ['pow 3', (t) => wg.pow(t, 3), (g, x) => g * 3 * x * x],
];

describe('gradients through NaN and ±inf match PyTorch', () => {
  for (const [name, op, grad] of GRADS) {
    it(name, async () => {
      const rng = new Rng();
      const x = patterned(rng, [7, 9]);
      const g = rng.array(63, -1, 1);
      const xt = gpuTensor(x, [7, 9], true);
      wg.tidy(() => op(xt).backward(gpuTensor(g, [7, 9])));
      expectSame(await xt.grad!.toArray(), Float64Array.from(x, (v, i) => grad(g[i]!, v)), `${name}' (seed ${rng.seed})`, { rtol: 1e-3, atol: 1e-5 });
      xt.dispose();
    });
  }

  it('max over rows and maxPool2d send the gradient to the NaN (their argmax)', async () => {
    const rng = new Rng();
    const x = patterned(rng, [7, 4]);
    const xt = gpuTensor(x, [7, 4], true);
    wg.tidy(() => wg.max(xt, -1).backward(wg.ones([7])));
    const best = red.argmax(x, [7, 4], -1).data;
    expectSame(await xt.grad!.toArray(), Float64Array.from(x, (_, i) => (best[Math.floor(i / 4)] === i % 4 ? 1 : 0)), `max' (seed ${rng.seed})`);
    xt.dispose();

    // 2×2 windows tiling [1, 1, 4, 4]; one window holds a NaN, another +inf and a NaN.
    const p = Float64Array.from({ length: 16 }, (_, i) => i);
    p[5] = NaN;
    p[10] = Infinity;
    p[15] = NaN;
    const pt = gpuTensor(p, [1, 1, 4, 4], true);
    wg.tidy(() => wg.maxPool2d(pt, 2).backward(wg.ones([1, 1, 2, 2])));
    const expected = new Float64Array(16);
    for (const i of [5, 7, 13, 15]) expected[i] = 1;
    expectSame(await pt.grad!.toArray(), expected, 'maxPool2d\'');
    pt.dispose();
  });
});
