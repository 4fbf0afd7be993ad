// The wasm row kernels against float64: reduce (sum with a scale, max with NaN), argmax (first
// maximum, NaN largest, and the MERGE of partials), scatter, softmax and log-softmax forward and
// backward along the last axis and along a strided axis, and fused cross-entropy (with the
// status code for a bad label). Outputs are poisoned with NaN first.

import { describe, expect, it } from 'vitest';
import type { WasmPool } from '../../src/runtime/wasm/pool';
import { expectNear, poisoned, randomArray, read, THREADS, upload, uploadI32, usePools } from './helpers';


/** A [A, B, C] tensor reduced over `axes`, as the host describes it (unmerged dimensions). */
function describeReduce(shape: number[], axes: number[]) {
  const strides = shape.map((_, d) => shape.slice(d + 1).reduce((x, y) => x * y, 1));
  const kept = shape.map((_, d) => d).filter((d) => !axes.includes(d));
  return {
    m: kept.reduce((x, d) => x * shape[d]!, 1),
    l: axes.reduce((x, d) => x * shape[d]!, 1),
    krank: kept.length, rrank: axes.length,
    kshape: kept.map((d) => shape[d]!), kstrides: kept.map((d) => strides[d]!),
    rshape: axes.map((d) => shape[d]!), rstrides: axes.map((d) => strides[d]!),
  };
}

function refReduce(x: ArrayLike<number>, d: ReturnType<typeof describeReduce>, f: (vals: number[]) => number): Float64Array {
  const at = (i: number, shape: number[], strides: number[]): number => {
    let rem = i, o = 0;
    for (let k = shape.length - 1; k >= 0; k--) {
      o += (rem % shape[k]!) * strides[k]!;
      rem = Math.floor(rem / shape[k]!);
    }
    return o;
  };
  return Float64Array.from({ length: d.m }, (_, i) => f(Array.from({ length: d.l }, (_, r) => x[at(i, d.kshape, d.kstrides) + at(r, d.rshape, d.rstrides)]!)));
}

const nanMax = (v: number[]): number => (v.some(Number.isNaN) ? NaN : Math.max(...v));

describe('wasm row kernels', () => {
  const pools = usePools();
  for (const threads of THREADS) {
    const label = `(${threads} thread${threads > 1 ? 's' : ''})`;

    it(`reduce: sum, mean and max over rows, columns and several axes ${label}`, () => {
      const pool = pools.get(threads)!;
      for (const [shape, axes] of [[[3, 17, 33], [2]], [[33, 17, 3], [0]], [[65, 130], [0]], [[5, 6, 7], [0, 2]], [[1, 1, 1], [1]], [[9, 130], [1]]] as [number[], number[]][]) {
        const n = shape.reduce((x, y) => x * y, 1);
        const x = randomArray(n, n);
        x[n >> 1] = NaN;
        const xAt = upload(pool, [0, 0, 0, ...x]);
        const d = describeReduce(shape, axes);
        for (const [op, scale, chunks] of [[0, 1, 1], [0, 1 / d.l, 1], [1, 1, 1], [0, 1, 3]] as const) {
          const chunkLen = Math.ceil(d.l / chunks);
          const outAt = poisoned(pool, d.m * chunks + 1);
          const { m, l, krank, rrank, ...dims } = d;
          pool.runSync('reduce', {
            bind: { src: xAt, out: outAt },
            params: { m, l, chunks, chunk_len: chunkLen, krank, rrank, scale, src_offset: 3, out_offset: 1, ...dims },
            constants: { OP: op },
          });
          // Partials [m, chunks] when chunks > 1: add them up for the check.
          const got = read(pool, outAt + 4, d.m * chunks);
          const total = Float64Array.from({ length: d.m }, (_, i) => got.slice(i * chunks, i * chunks + chunks).reduce((a, b) => a + b, 0));
          const want = refReduce(x, d, (v) => (op === 1 ? nanMax(v) : v.reduce((a, b) => a + b, 0) * scale));
          const tol = refReduce(x, d, (v) => (op === 1 ? 0 : v.reduce((a, b) => a + Math.abs(b), 0) * scale * (d.l + 2) * 1.2e-7));
          expectNear(total, want, tol, `reduce op ${op} ${shape} over ${axes} in ${chunks}`);
          pool.heap.release(outAt);
        }
        pool.heap.release(xAt);
      }
    });

    it(`argmax (first maximum, NaN largest, merged partials) and scatter ${label}`, () => {
      const pool = pools.get(threads)!;
      const shape = [17, 33];
      const x = randomArray(17 * 33, 3).map((v) => Math.round(v * 4));   // ties
      x[5 * 33 + 20] = NaN;
      const d = describeReduce(shape, [1]);
      const xAt = upload(pool, x);
      const valAt = poisoned(pool, d.m * 2), idxAt = poisoned(pool, d.m * 2);
      const offsets = { src_offset: 0, idx_in_offset: 0, val_offset: 0, idx_offset: 0 };
      pool.runSync('argmax', {
        bind: { src: xAt, idx_in: xAt, val: valAt, idx: idxAt },
        params: { ...d, chunks: 2, chunk_len: 17, ...offsets },
        constants: { MERGE: false },
      });
      const val2 = poisoned(pool, d.m + 1), idx2 = poisoned(pool, d.m + 1);
      // Merge the two partials of every row: [m, 2] values with their indices (written one element in).
      pool.runSync('argmax', {
        bind: { src: valAt, idx_in: idxAt, val: val2, idx: idx2 },
        params: { m: d.m, l: 2, chunks: 1, chunk_len: 2, krank: 1, rrank: 1, kshape: [d.m], kstrides: [2], rshape: [2], rstrides: [1], ...offsets, val_offset: 1, idx_offset: 1 },
        constants: { MERGE: true },
      });
      const want = Array.from({ length: 17 }, (_, i) => {
        const row = Array.from(x.slice(i * 33, i * 33 + 33));
        const nan = row.findIndex(Number.isNaN);
        return nan >= 0 ? nan : row.indexOf(Math.max(...row));
      });
      expect(Array.from(pool.i32(idx2 + 4, d.m))).toEqual(want);
      expectNear(read(pool, val2 + 4, d.m), want.map((j, i) => x[i * 33 + j]!), 0, 'argmax values');

      const g = randomArray(17, 4);
      const gAt = upload(pool, [9, ...g]);
      const outAt = upload(pool, new Float32Array(17 * 33));
      pool.runSync('scatter', {
        bind: { g: gAt, idx: idx2, out: outAt },
        params: { m: 17, krank: 1, rrank: 1, g_offset: 1, idx_offset: 1, out_offset: 0, kshape: [17], kstrides: [33], rshape: [33], rstrides: [1] },
      });
      const wantOut = new Float64Array(17 * 33);
      want.forEach((j, i) => (wantOut[i * 33 + j] = g[i]!));
      expectNear(read(pool, outAt, 17 * 33), wantOut, 0, 'scatter');
    });

    it(`softmax and log-softmax, forward and backward, contiguous and strided ${label}`, () => {
      const pool = pools.get(threads)!;
      for (const [rows, k, alongRows] of [[1, 1, false], [3, 17, false], [65, 130, false], [17, 33, true]] as const) {
        const n = rows * k;
        const x = randomArray(n, n + 7).map((v) => v * 10);
        const g = randomArray(n, n + 8);
        // alongRows: the axis is dim 0 of a [k, rows] tensor (stride rows), rows along dim 1.
        const inStride = alongRows ? rows : 1, rowStride = alongRows ? 1 : k;
        const geo = { m: rows, k, krank: 1, in_stride: inStride, out_stride: inStride, row_shape: [rows], in_rows: [rowStride], out_rows: [rowStride] };
        const idx = (r: number, j: number): number => r * rowStride + j * inStride;
        for (const log of [false, true]) {
          const xAt = upload(pool, [0, ...x]);
          const yAt = poisoned(pool, n);
          pool.runSync('softmax_forward', { bind: { x: xAt, out: yAt }, params: { ...geo, x_offset: 1, out_offset: 0 }, constants: { LOG: log } });
          const want = new Float64Array(n);
          for (let r = 0; r < rows; r++) {
            const v = Array.from({ length: k }, (_, j) => x[idx(r, j)]!);
            const mx = Math.max(...v);
            const s = v.reduce((a, b) => a + Math.exp(b - mx), 0);
            v.forEach((b, j) => (want[idx(r, j)] = log ? b - mx - Math.log(s) : Math.exp(b - mx) / s));
          }
          const y = read(pool, yAt, n);
          expectNear(y, want, Float64Array.from(want, (w) => Math.abs(w) * 4e-6 + (log ? 4e-6 : 1e-7)), `softmax ${log ? 'log ' : ''}${rows}x${k}${alongRows ? 'ᵀ' : ''}`);

          const gAt = upload(pool, [0, 0, ...g]);
          const dxAt = poisoned(pool, n + 3);
          pool.runSync('softmax_backward', { bind: { g: gAt, y: yAt, out: dxAt }, params: { ...geo, g_offset: 2, y_offset: 0, out_offset: 3 }, constants: { LOG: log } });
          const wantDx = new Float64Array(n), tolDx = new Float64Array(n);
          for (let r = 0; r < rows; r++) {
            let s = 0, sAbs = 0;
            for (let j = 0; j < k; j++) {
              const t = log ? g[idx(r, j)]! : g[idx(r, j)]! * y[idx(r, j)]!;
              s += t;
              sAbs += Math.abs(t);
            }
            for (let j = 0; j < k; j++) {
              const i = idx(r, j), gi = g[i]!, yi = y[i]!;
              wantDx[i] = log ? gi - Math.exp(yi) * s : yi * (gi - s);
              tolDx[i] = 4e-6 * (log ? Math.abs(gi) + Math.exp(yi) * sAbs : Math.abs(yi) * (Math.abs(gi) + sAbs)) + 1e-7;
            }
          }
          expectNear(read(pool, dxAt + 12, n), wantDx, tolDx, `softmax backward ${log ? 'log ' : ''}${rows}x${k}`);
          for (const at of [xAt, yAt, gAt, dxAt]) pool.heap.release(at);
        }
      }
    });

    it(`cross-entropy forward and backward; a bad label raises the status code ${label}`, () => {
      const pool = pools.get(threads)!;
      for (const [N, K, transposed] of [[1, 1, false], [17, 10, false], [33, 130, false], [17, 33, true]] as const) {
        const x = randomArray(N * K, N * K).map((v) => v * 8);
        const labels = Array.from({ length: N }, (_, i) => (i * 7) % K);
        const xRow = transposed ? 1 : K, xCol = transposed ? N : 1;
        const xAt = upload(pool, [0, ...x]), lAt = uploadI32(pool, [0, 0, ...labels]);
        const lossAt = poisoned(pool, 2 * N + 1), lseAt = poisoned(pool, N + 2), status = uploadI32(pool, [0]);
        const common = { n: N, k: K, x_offset: 1, x_row: xRow, x_col: xCol, labels_offset: 2, labels_stride: 1, ignore: -100, smoothing: 0 };
        const forward = {
          bind: { x: xAt, labels: lAt, loss: lossAt, lse: lseAt, status },
          params: { ...common, code: 7, loss_offset: 1, lse_offset: 2 },
          constants: { SMOOTH: false },
        };
        pool.runSync('cross_entropy_forward', forward);
        const lse = Array.from({ length: N }, (_, r) => {
          const v = Array.from({ length: K }, (_, c) => x[r * xRow + c * xCol]!);
          const mx = Math.max(...v);
          return mx + Math.log(v.reduce((a, b) => a + Math.exp(b - mx), 0));
        });
        expectNear(read(pool, lseAt + 8, N), lse, lse.map((v) => Math.abs(v) * 2e-6 + 1e-6), 'lse');
        // Per row (loss, 1): every row counts (none has the ignored label).
        const stats = read(pool, lossAt + 4, 2 * N);
        expectNear(stats.filter((_, i) => i % 2 === 0), lse.map((l, r) => l - x[r * xRow + labels[r]! * xCol]!), lse.map((v) => Math.abs(v) * 4e-6 + 1e-6), 'loss');
        expectNear(stats.filter((_, i) => i % 2 === 1), new Array(N).fill(1), 0, 'rows counted');
        expect(pool.i32(status, 1)[0]).toBe(0);

        const gAt = upload(pool, [0, 0.5]);
        const totalsAt = upload(pool, [0, 0, 123, N]);   // [Σ loss, rows counted] at offset 2
        const dxAt = poisoned(pool, N * K);
        // MEAN: divided by the rows counted (reduction 'mean'); without it the sum's gradient.
        for (const mean of [true, false]) {
          pool.runSync('cross_entropy_backward', {
            bind: { x: xAt, labels: lAt, lse: lseAt, g: gAt, totals: totalsAt, dx: dxAt },
            params: { ...common, lse_offset: 2, g_offset: 1, totals_offset: 2, dx_offset: 0 },
            constants: { MEAN: mean },
          });
          const scale = mean ? 0.5 / N : 0.5;
          const want = Float64Array.from({ length: N * K }, (_, i) => {
            const r = Math.floor(i / K), c = i % K;
            return (Math.exp(x[r * xRow + c * xCol]! - lse[r]!) - (labels[r] === c ? 1 : 0)) * scale;
          });
          expectNear(read(pool, dxAt, N * K), want, Float64Array.from(want, () => 4e-6 * scale), `ce backward ${N}x${K}, MEAN ${mean}`);
        }

        pool.i32(lAt, 3)[2] = K;   // label 0's row now out of range
        pool.runSync('cross_entropy_forward', forward);
        expect(pool.i32(status, 1)[0]).toBe(7);
        for (const at of [xAt, lAt, lossAt, lseAt, status, gAt, totalsAt, dxAt]) pool.heap.release(at);
      }
    });
  }
});
