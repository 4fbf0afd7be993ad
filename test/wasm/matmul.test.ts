// The wasm matmul kernel against a float64 reference that reads the operands through the same
// layout as shaders/matmul_layout.wgsl: strided and transposed operands, offsets, a C block
// narrower than its rows (ldc > N), broadcast batch dimensions, ACCUMULATE. The whole C buffer
// is poisoned with NaN first: elements outside the block must stay NaN.

import { describe, expect, it } from 'vitest';
import type { WasmPool } from '../../src/runtime/wasm/pool';
import { expectNear, poisoned, random, randomArray, read, THREADS, upload, usePools } from './helpers';

interface Case {
  M: number; N: number; K: number;
  transA?: boolean; transB?: boolean; accumulate?: boolean;
  /** Output batch shape, and per-dimension strides in matrices (0 broadcasts). */
  batch?: number[]; aBatch?: number[]; bBatch?: number[];
  pad?: number;   // extra elements per stored row (lda, ldb, ldc larger than needed)
  off?: number;   // element offsets of A, B and C
}

function run(pool: WasmPool, c: Case, seed: number): void {
  const { M, N, K, transA = false, transB = false, accumulate = false, batch = [], pad = 0, off = 0 } = c;
  const aRows = transA ? K : M, aCols = transA ? M : K;
  const bRows = transB ? N : K, bCols = transB ? K : N;
  const lda = aCols + pad, ldb = bCols + pad, ldc = N + pad;
  const batches = batch.reduce((x, y) => x * y, 1);
  const aMats = (c.aBatch ?? []).reduce((x, y, i) => x + (batch[i]! - 1) * y, 0) + 1;
  const bMats = (c.bBatch ?? []).reduce((x, y, i) => x + (batch[i]! - 1) * y, 0) + 1;
  const aData = randomArray(off + aMats * aRows * lda, seed);
  const bData = randomArray(off + bMats * bRows * ldb, seed + 1);
  const cLen = off + batches * M * ldc;
  const cInit = accumulate ? randomArray(cLen, seed + 2) : new Float32Array(cLen).fill(NaN);
  const a = upload(pool, aData), b = upload(pool, bData);
  const cAt = poisoned(pool, cLen);
  pool.f32(cAt, cLen).set(cInit);

  pool.runSync('matmul', {
    bind: { a, b, c: cAt },
    params: {
      M, N, K, batch_rank: batch.length, lda, ldb, a_offset: off, b_offset: off, batches, ldc, c_offset: off, batch_shape: batch,
      a_bstrides: (c.aBatch ?? []).map((s) => s * aRows * lda), b_bstrides: (c.bBatch ?? []).map((s) => s * bRows * ldb),
    },
    constants: { TRANS_A: transA, TRANS_B: transB, ACCUMULATE: accumulate },
  });

  const want = Float64Array.from(cInit);
  const tol = new Float64Array(cLen);
  for (let t = 0; t < batches; t++) {
    let rem = t, ao = off, bo = off;
    for (let d = batch.length - 1; d >= 0; d--) {
      const i = rem % batch[d]!;
      rem = Math.floor(rem / batch[d]!);
      ao += i * (c.aBatch?.[d] ?? 0) * aRows * lda;
      bo += i * (c.bBatch?.[d] ?? 0) * bRows * ldb;
    }
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let s = 0, abs = 0;
        for (let k = 0; k < K; k++) {
          const x = aData[ao + (transA ? k * lda + m : m * lda + k)]! * bData[bo + (transB ? n * ldb + k : k * ldb + n)]!;
          s += x;
          abs += Math.abs(x);
        }
        const i = off + t * M * ldc + m * ldc + n;
        want[i] = accumulate ? want[i]! + s : s;
        tol[i] = (K + 2) * 1.2e-7 * (abs + (accumulate ? Math.abs(cInit[i]!) : 0)) + 1e-7;
      }
    }
  }
  expectNear(read(pool, cAt, cLen), want, tol, JSON.stringify(c));
  for (const at of [a, b, cAt]) pool.heap.release(at);
}

const SIZES = [1, 3, 17, 33, 65, 130];

const CASES: Case[] = [
  ...SIZES.map((n) => ({ M: n, N: n, K: n })),
  { M: 1, N: 130, K: 3 }, { M: 130, N: 1, K: 17 }, { M: 17, N: 65, K: 1 }, { M: 65, N: 17, K: 300 },
  { M: 100, N: 270, K: 520 },   // more than one block along every dimension (MC 96, NC 256, KC 256)
  ...[[false, true], [true, false], [true, true]].flatMap(([ta, tb]) => [
    { M: 33, N: 17, K: 65, transA: ta, transB: tb },
    { M: 130, N: 33, K: 3, transA: ta, transB: tb, pad: 5, off: 7 },
  ]),
  { M: 17, N: 33, K: 65, pad: 3, off: 11 },
  { M: 17, N: 33, K: 65, accumulate: true, pad: 2, off: 1 },
  { M: 33, N: 3, K: 0 },
  { M: 33, N: 3, K: 0, accumulate: true },
  { M: 17, N: 9, K: 33, batch: [3], aBatch: [1], bBatch: [1] },
  { M: 17, N: 9, K: 33, batch: [2, 3], aBatch: [3, 1], bBatch: [0, 1], transB: true },   // B broadcast along dim 0
  { M: 5, N: 65, K: 17, batch: [3, 2], aBatch: [0, 0], bBatch: [2, 1], accumulate: true, transA: true, pad: 1, off: 3 },
];

describe('wasm matmul', () => {
  const pools = usePools();
  for (const threads of THREADS) {
    it(`matches float64 on awkward shapes, layouts and batches (${threads} thread${threads > 1 ? 's' : ''})`, () => {
      const pool = pools.get(threads)!;
      CASES.forEach((c, i) => run(pool, c, 100 * i + threads));
      expect(pool.heap.liveBytes).toBeGreaterThan(0);
    });
  }

  it('rejects arguments it does not know or misses', () => {
    const pool = pools.get(1)!;
    expect(() => pool.runSync('matmul', { bind: {}, params: { M: 1 } })).toThrow(/bind\.a is missing/);
    expect(() => pool.runSync('fill', { bind: { out: 0 }, params: { n: 1, value: 0, out_offset: 0, offset: 1 } })).toThrow(/unknown params\.offset/);
    expect(() => pool.runSync('fill', { bind: { out: 0 }, params: { n: 1.5, value: 0, out_offset: 0 } })).toThrow(/params\.n must be a 32-bit integer/);
    expect(() => pool.runSync('nope', { bind: {} })).toThrow(/unknown wasm kernel nope/);
    void random;
  });
});
