// The wasm elementwise kernels against float64: every unary and binary op (OP numbers of
// elementwise.wgsl) on contiguous, strided (transposed) and broadcast operands of awkward sizes,
// special values (NaN, ±inf, ±0, large magnitudes) included; dropout's mask against the WGSL hash;
// axpy. Outputs are poisoned with NaN first.

import { describe, it } from 'vitest';
import type { WasmPool } from '../../src/runtime/wasm/pool';
import { gelu, erfc } from '../reference/elementwise';
import { expectNear, poisoned, randomArray, read, THREADS, upload, usePools } from './helpers';

const sigmoid = (x: number): number => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));
// As pow_ in elementwise.wgsl: −0 counts as +0 (so (−0) ** −1 is +inf).
const pow = (x: number, y: number): number => (x < 0 && y !== Math.floor(y) ? NaN : (x === 0 ? 0 : x) ** y);
// gelu as the WGSL computes it at infinities: x/2 · erfc(−x/√2) is inf at +inf, NaN (−inf · 0) at −inf.
const geluWgsl = (x: number): number => (x === Infinity ? Infinity : x === -Infinity ? NaN : gelu(x));
const f32 = Math.fround;

// [OP, reference, relative tolerance, input scale, magnitude the tolerance is relative to (default
// the result: ops that cancel are judged against their terms)]
type Unary = (x: number, alpha: number, beta: number) => number;
const UNARY: [number, Unary, number, number, Unary?][] = [
  [0, (x) => -x, 0, 3],
  [1, Math.exp, 2e-6, 30],
  [2, Math.log, 2e-6, 3],
  [3, Math.sqrt, 1e-6, 3],
  [4, (x) => Math.max(x, 0), 0, 3],
  [5, geluWgsl, 4e-6, 6],
  [6, Math.tanh, 4e-6, 6],
  [7, sigmoid, 4e-6, 30],
  [8, (x, a, b) => a * x + b, 1e-6, 3, (x, a, b) => Math.abs(a * x) + Math.abs(b)],
  [9, (x, a) => pow(x, a), 4e-6, 3],
  [10, (x) => 1 / x, 1e-6, 3],
  [11, Math.abs, 0, 3],
  [12, (x, a, b) => Math.min(Math.max(x, a), b), 0, 3],
  [14, (x) => (Number.isNaN(x) ? 1 : 0), 0, 3],
  [19, (x) => x / (1 + Math.exp(-x)), 4e-6, 30, (x) => Math.abs(x)],
  // OP = 64 + a binary op: that op with the number alpha (1.5) as its second operand.
  [64 + 18, (x, a) => (x > a ? 1 : 0), 0, 3],
  [64 + 3, (x, a) => x / a, 1e-7, 3],
];
/** The unary kernel's fields that only tril/triu and int32 comparisons read. */
const UNARY_UNUSED = { cols: 0, rows: 0, diag: 0, int_scalar: 0 };

// [OP, reference, relative tolerance, magnitude the tolerance is relative to (default the result)]
const BINARY: [number, (a: number, b: number) => number, number, ((a: number, b: number) => number)?][] = [
  [0, (a, b) => a + b, 1e-7], [1, (a, b) => a - b, 1e-7], [2, (a, b) => a * b, 1e-7], [3, (a, b) => a / b, 1e-7],
  [4, (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.max(a, b)), 0],
  // Comparisons: 0/1, false at NaN (ne true).
  [7, (a, b) => (a === b ? 1 : 0), 0], [15, (a, b) => (a !== b ? 1 : 0), 0], [16, (a, b) => (a < b ? 1 : 0), 0],
  [17, (a, b) => (a <= b ? 1 : 0), 0], [18, (a, b) => (a > b ? 1 : 0), 0], [19, (a, b) => (a >= b ? 1 : 0), 0],
  // maskedFill / maskedKeep with alpha = -2: b is the mask (nonzero, NaN included, is true).
  [20, (a, m) => (m !== 0 ? -2 : a), 0], [21, (a, m) => (m !== 0 ? a : -2), 0],
  [8, (g, x) => (x > 0 || Number.isNaN(x) ? g : 0), 0],
  // cdf + x·pdf cancels for negative x: the error is relative to the terms.
  [9, (g, x) => g * (0.5 * erfc(-x / Math.SQRT2) + x * Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI)), 4e-6,
    (g, x) => Math.abs(g) * (0.5 * erfc(-x / Math.SQRT2) + Math.abs(x) * Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI))],
  [10, (g, y) => g * (1 - y * y), 2e-7, (g, y) => Math.abs(g) * (1 + y * y)],
  [11, (g, y) => g * y * (1 - y), 2e-7, (g, y) => Math.abs(g * y) * (1 + Math.abs(y))],
  [13, (g, x) => g * (Number.isNaN(x) ? NaN : Math.sign(x)), 0],
];

const SPECIAL = [NaN, Infinity, -Infinity, 0, -0, 1e-30, -1e-30, 88, -88, 100, -100, 1e30];

/** Inputs: random values times `scale`, with the special values spread in. */
function inputs(n: number, seed: number, scale: number): Float32Array {
  const x = randomArray(n, seed).map((v) => v * scale);
  for (let i = 0; i < n; i += 7) x[i] = SPECIAL[(i / 7) % SPECIAL.length]!;
  return x;
}

function tol(want: ArrayLike<number>, rel: number): Float64Array {
  return Float64Array.from(want, (w) => (Number.isFinite(w) ? Math.abs(w) * rel + (rel ? 1e-37 : 0) : 0));
}

describe('wasm elementwise', () => {
  const pools = usePools();
  for (const threads of THREADS) {
    const label = `(${threads} thread${threads > 1 ? 's' : ''})`;

    it(`unary ops, contiguous and through transposed strides ${label}`, () => {
      const pool = pools.get(threads)!;
      for (const [op, f, rel, inputScale, magnitude] of UNARY) {
        const [alpha, beta] = op === 9 ? [3, 0] : op === 12 ? [-0.5, 0.7] : [1.5, -0.25];
        for (const [rows, cols, transposed] of [[1, 1, false], [3, 17, false], [65, 130, false], [33, 17, true]] as const) {
          const n = rows * cols;
          const x = inputs(n, op * 31 + n, inputScale);
          const xAt = upload(pool, [NaN, ...x]);
          const outAt = poisoned(pool, n + 2);
          // Transposed: output [rows, cols] reads x stored as [cols, rows]; otherwise CONTIG.
          pool.runSync('unary', {
            bind: { a: xAt, out: outAt },
            params: { n, alpha, beta, seed: 0, base: 0, a_offset: 1, out_offset: 2, shape: transposed ? [rows, cols] : [n], a_strides: transposed ? [1, rows] : [1], ...UNARY_UNUSED },
            constants: { OP: op, CONTIG: !transposed, RANK: transposed ? 2 : 1, INT_OPERANDS: false },
          });
          const input = (i: number): number => x[transposed ? (i % cols) * rows + Math.floor(i / cols) : i]!;
          // float32 results: the reference rounded to float32 (overflow to inf, denormals kept).
          const want = Float64Array.from({ length: n }, (_, i) => f32(f(input(i), alpha, beta)));
          const scale = magnitude ? Float64Array.from({ length: n }, (_, i) => magnitude(input(i), alpha, beta)) : want;
          expectNear(read(pool, outAt + 8, n), want, tol(scale, rel + (rel ? 1.2e-7 : 0)), `unary op ${op} ${rows}x${cols}${transposed ? 'ᵀ' : ''}`);
          pool.heap.release(xAt);
          pool.heap.release(outAt);
        }
      }
    });

    it(`binary ops with broadcasting ${label}`, () => {
      const pool = pools.get(threads)!;
      for (const [op, f, rel, magnitude] of BINARY) {
        // [output shape, a strides, b strides, a length, b length, mode]
        type Mode = 'contig' | 'periodic' | 'strided';
        const layouts: [number[], number[], number[], number, number, Mode][] = [
          [[130], [1], [1], 130, 130, 'contig'],
          [[33, 17], [17, 1], [0, 1], 33 * 17, 17, 'periodic'],   // b a row vector (bias)
          [[33, 17], [17, 1], [0, 1], 33 * 17, 17, 'strided'],    // the same through the strides
          [[17, 33], [33, 1], [1, 0], 17 * 33, 17, 'strided'],    // b a column vector
          [[3, 5, 7], [1, 3, 15], [0, 7, 1], 105, 35, 'strided'], // a transposed, b broadcast along dim 0
          [[1], [0], [0], 1, 1, 'strided'],
        ];
        for (const [shape, as, bs, an, bn, mode] of layouts) {
          const n = shape.reduce((x, y) => x * y, 1);
          const a = inputs(an, op * 7 + an, 3);
          // Comparisons meet equal values too.
          const b = op >= 7 && op <= 19 ? Float32Array.from(inputs(bn, op * 11 + bn + 1, 3), (v, i) => (i % 3 === 0 ? a[i] ?? v : v)) : inputs(bn, op * 11 + bn + 1, 3);
          const aAt = upload(pool, [NaN, NaN, ...a]);
          const bAt = upload(pool, [NaN, ...b]);
          const outAt = poisoned(pool, n + 1);
          pool.runSync('binary', {
            bind: { a: aAt, b: bAt, out: outAt },
            params: { n, alpha: -2, a_offset: 2, b_offset: 1, out_offset: 1, a_period: an, b_period: bn, shape, a_strides: as, b_strides: bs },
            constants: { OP: op, CONTIG: mode === 'contig', PERIODIC: mode === 'periodic', RANK: mode === 'strided' ? shape.length : 1, MASK_INT: false, INT_OPERANDS: false },
          });
          const at = (i: number): [number, number] => {
            let rem = i, ia = 0, ib = 0;
            for (let d = shape.length - 1; d >= 0; d--) {
              const c = rem % shape[d]!;
              rem = Math.floor(rem / shape[d]!);
              ia += c * as[d]!;
              ib += c * bs[d]!;
            }
            return [a[ia]!, b[ib]!];
          };
          const want = Float64Array.from({ length: n }, (_, i) => f32(f(...at(i))));
          const scale = magnitude ? Float64Array.from({ length: n }, (_, i) => magnitude(...at(i))) : want;
          expectNear(read(pool, outAt + 4, n), want, tol(scale, rel + (rel ? 1.2e-7 : 0)), `binary op ${op} ${shape} ${mode}`);
          for (const at of [aAt, bAt, outAt]) pool.heap.release(at);
        }
      }
    });

    it(`dropout keeps the WGSL hash's mask; axpy ${label}`, () => {
      const pool = pools.get(threads)!;
      const n = 10007, p = 0.3, seed = 1234, base = 99;
      const x = randomArray(n, 5);
      const xAt = upload(pool, x);
      const outAt = poisoned(pool, n);
      pool.runSync('unary', {
        bind: { a: xAt, out: outAt },
        params: { n, alpha: p, beta: 1 / (1 - p), seed, base, a_offset: 0, out_offset: 0, shape: [n], a_strides: [1], ...UNARY_UNUSED },
        constants: { OP: 16, CONTIG: true, RANK: 1, INT_OPERANDS: false },
      });
      const hash = (v: number): number => {
        let h = v >>> 0;
        h ^= h >>> 16; h = Math.imul(h, 0x7feb352d) >>> 0;
        h ^= h >>> 15; h = Math.imul(h, 0x846ca68b) >>> 0;
        return (h ^ (h >>> 16)) >>> 0;
      };
      const want = Float64Array.from(x, (v, i) => ((hash(((base + i) ^ hash(seed)) >>> 0) >>> 8) / 16777216 >= p ? f32(v * f32(1 / (1 - p))) : 0));
      expectNear(read(pool, outAt, n), want, tol(want, 1.2e-7), 'dropout');

      const y = randomArray(n + 3, 6);
      const yAt = upload(pool, y);
      pool.runSync('axpy', { bind: { x: xAt, y: yAt }, params: { n: n - 2, alpha: 0.75, x_offset: 2, y_offset: 3 } });
      const inRange = (i: number): boolean => i >= 3 && i - 3 < n - 2;
      const wantY = Float64Array.from(y, (v, i) => (inRange(i) ? v + 0.75 * x[i - 3 + 2]! : v));
      const tolY = Float64Array.from(y, (v, i) => (inRange(i) ? 1.2e-7 * (Math.abs(v) + Math.abs(0.75 * x[i - 1]!)) : 0));
      expectNear(read(pool, yAt, n + 3), wantY, tolY, 'axpy');
      for (const at of [xAt, outAt, yAt]) pool.heap.release(at);
    });
  }
});
