// The wasm convolutions (forward with and without bias, input and weight gradients, the split
// reduction and the bias gradient) against the float64 references of test/reference/conv2d.ts,
// at awkward geometries: non-square kernels, strides, padding, dilation, more channels than one
// register block, a reduction longer than one packed slice, and the weight read through strides
// of a permuted layout; both routes of the forward and input-gradient kernels (row-aligned with
// unit strides, general otherwise). Outputs are poisoned with NaN first.

import { describe, it } from 'vitest';
import type { WasmPool } from '../../src/runtime/wasm/pool';
import { conv2d, conv2dGradBias, conv2dGradInput, conv2dGradWeight, geometry, type ConvGeometry, type Pair } from '../reference/conv2d';
import { expectNear, poisoned, randomArray, read, THREADS, upload, usePools } from './helpers';

interface Case {
  x: [number, number, number, number];
  w: [number, number, number, number];
  stride?: Pair; padding?: Pair; dilation?: Pair;
  /** Store the weight as [kH, kW, C, O] and read it through strides. */
  permuted?: boolean;
  bias?: boolean;
  /** grad_weight: rows (n, oh) per split. */
  rowsPerSplit?: number;
}

const CASES: Case[] = [
  { x: [2, 3, 9, 9], w: [4, 3, 5, 5], padding: 2, bias: true },
  { x: [1, 1, 17, 33], w: [17, 1, 3, 3], padding: 1 },
  { x: [3, 17, 13, 13], w: [33, 17, 3, 3], stride: 2, padding: 1, bias: true, rowsPerSplit: 7 },
  { x: [2, 5, 12, 11], w: [7, 5, 3, 2], stride: [2, 3], padding: [2, 1], dilation: [2, 1], permuted: true },
  { x: [1, 40, 17, 17], w: [100, 40, 3, 3], padding: 1, bias: true, rowsPerSplit: 13 },
  { x: [1, 3, 5, 5], w: [2, 3, 5, 5] },                                  // one output pixel
  { x: [4, 2, 8, 8], w: [3, 2, 1, 1], stride: 3, permuted: true },       // 1×1 kernel, stride skips pixels
  // Unit stride along w (the row-aligned route forward), dilated, stride 2 along h.
  { x: [2, 4, 11, 13], w: [5, 4, 3, 3], stride: [2, 1], padding: [1, 2], dilation: [2, 2], bias: true },
  // Unit strides, dilated taps reaching past the padding (both row-aligned routes).
  { x: [1, 3, 10, 9], w: [4, 3, 2, 3], padding: [2, 1], dilation: [3, 2], permuted: true },
  // Rows wider than one packed block (the general route again).
  { x: [1, 2, 3, 300], w: [3, 2, 1, 3], padding: [0, 1] },
];

function abs(a: Float32Array): Float64Array {
  return Float64Array.from(a, Math.abs);
}

function tolerance(absRef: Float64Array, terms: number): Float64Array {
  return absRef.map((v) => (terms + 2) * 1.2e-7 * v + 1e-6);
}

function run(pool: WasmPool, c: Case, seed: number): void {
  const g: ConvGeometry = geometry(c.x, c.w, c);
  const { N, C, H, W, O, kH, kW, OH, OW } = g;
  const x = randomArray(N * C * H * W, seed);
  const w = randomArray(O * C * kH * kW, seed + 1);
  const b = randomArray(O, seed + 2);
  const dy = randomArray(N * O * OH * OW, seed + 3);
  // The weight as stored, and its strides along (o, c, kh, kw).
  let stored = w;
  let strides = [C * kH * kW, kH * kW, kW, 1];
  if (c.permuted) {
    stored = new Float32Array(w.length);
    for (let o = 0; o < O; o++) for (let ch = 0; ch < C; ch++) for (let i = 0; i < kH; i++) for (let j = 0; j < kW; j++) {
      stored[((i * kW + j) * C + ch) * O + o] = w[((o * C + ch) * kH + i) * kW + j]!;
    }
    strides = [1, O, kW * C * O, C * O];
  }
  const off = 5;   // element offsets of the inputs within their buffers
  const xAt = upload(pool, [...new Array(off).fill(NaN), ...x]);
  const wAt = upload(pool, [...new Array(off).fill(NaN), ...stored]);
  const bAt = upload(pool, [...new Array(off).fill(NaN), ...b]);
  const dyAt = upload(pool, [...new Array(off).fill(NaN), ...dy]);
  const geo = { n: N, c: C, h: H, w: W, o: O, oh: OH, ow: OW, kh: kH, kw: kW, stride_h: g.sh, stride_w: g.sw, pad_h: g.ph, pad_w: g.pw, dil_h: g.dh, dil_w: g.dw };
  const wView = { w_offset: off, w_stride_o: strides[0]!, w_stride_c: strides[1]!, w_stride_kh: strides[2]!, w_stride_kw: strides[3]! };
  const what = JSON.stringify(c);
  const oo = 3;   // element offsets of the outputs within theirs
  const out = (at: number, n: number) => read(pool, at + 4 * oo, n);

  const yLen = N * O * OH * OW;
  const yAt = poisoned(pool, yLen + oo);
  pool.runSync('conv2d', {
    bind: { x: xAt, w: wAt, bias: bAt, out: yAt },
    params: { ...geo, x_offset: off, bias_offset: off, out_offset: oo, ...wView },
    constants: { HAS_BIAS: !!c.bias },
  });
  const absY = conv2d(abs(x), abs(w), c.bias ? abs(b) : null, g);
  expectNear(out(yAt, yLen), conv2d(x, w, c.bias ? b : null, g), tolerance(absY, C * kH * kW), `forward ${what}`);

  const dxLen = N * C * H * W;
  const dxAt = poisoned(pool, dxLen + oo);
  pool.runSync('conv2d_grad_input', { bind: { dy: dyAt, w: wAt, dx: dxAt }, params: { ...geo, dy_offset: off, dx_offset: oo, ...wView } });
  expectNear(out(dxAt, dxLen), conv2dGradInput(dy, w, g), tolerance(conv2dGradInput(abs(dy), abs(w), g), O * kH * kW), `grad_input ${what}`);

  const cols = C * kH * kW;
  const rowsPerSplit = c.rowsPerSplit ?? N * OH;
  const splits = Math.ceil((N * OH) / rowsPerSplit);
  const partAt = poisoned(pool, splits * O * cols + oo);
  pool.runSync('conv2d_grad_weight', { bind: { dy: dyAt, x: xAt, dw: partAt }, params: { ...geo, dy_offset: off, x_offset: off, dw_offset: oo, rows_per_split: rowsPerSplit } });
  const dwAt = poisoned(pool, O * cols + oo);
  pool.runSync('conv2d_reduce_partials', { bind: { src: partAt, sum: dwAt }, params: { m: O * cols, splits, src_offset: oo, sum_offset: oo } });
  const dwTol = tolerance(conv2dGradWeight(abs(dy), abs(x), g), N * OH * OW);
  expectNear(out(dwAt, O * cols), conv2dGradWeight(dy, x, g), dwTol, `grad_weight ${what}`);

  const dbAt = poisoned(pool, O + oo);
  pool.runSync('conv2d_grad_bias', { bind: { src: dyAt, sum: dbAt }, params: { m: O, splits: N, inner: OH * OW, src_offset: off, sum_offset: oo } });
  expectNear(out(dbAt, O), conv2dGradBias(dy, g), tolerance(conv2dGradBias(abs(dy), g), N * OH * OW), `grad_bias ${what}`);

  for (const at of [xAt, wAt, bAt, dyAt, yAt, dxAt, partAt, dwAt, dbAt]) pool.heap.release(at);
}

describe('wasm conv2d', () => {
  const pools = usePools();
  for (const threads of THREADS) {
    it(`forward and gradients match float64 (${threads} thread${threads > 1 ? 's' : ''})`, () => {
      const pool = pools.get(threads)!;
      CASES.forEach((c, i) => run(pool, c, 1000 * i + threads));
    });
  }
});
