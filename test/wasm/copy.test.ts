// The wasm word kernels: fill with a bit pattern (a float and an integer), and strided copies
// (a transpose, a broadcast source, a block written into a wider destination) word for word.

import { describe, expect, it } from 'vitest';
import { poisoned, randomArray, THREADS, upload, usePools } from './helpers';

describe('wasm fill and copy', () => {
  const pools = usePools();
  for (const threads of THREADS) {
    it(`fills and copies strided views (${threads} thread${threads > 1 ? 's' : ''})`, () => {
      const pool = pools.get(threads)!;
      const at = poisoned(pool, 20003);
      pool.runSync('fill', { bind: { out: at }, params: { n: 20001, value: new Uint32Array(new Float32Array([1.5]).buffer)[0]!, out_offset: 1 } });
      const f = pool.f32(at, 20003);
      expect([Number.isNaN(f[0]), f[1], f[20001], Number.isNaN(f[20002])]).toEqual([true, 1.5, 1.5, true]);
      pool.runSync('fill', { bind: { out: at }, params: { n: 3, value: 0xffffffff, out_offset: 0 } });
      expect(Array.from(pool.i32(at, 3))).toEqual([-1, -1, -1]);

      // [rows, cols] views of a [cols, rows] source (transpose), a row broadcast, and a block.
      const rows = 33, cols = 17;
      const src = randomArray(rows * cols + 2, 1);
      const srcAt = upload(pool, src);
      const cases: [string, number[], number[], number[], number, (r: number, c: number) => number, number, number][] = [
        ['transpose', [rows, cols], [1, rows], [cols, 1], 2, (r, c) => src[2 + c * rows + r]!, rows * cols, 0],
        ['broadcast', [rows, cols], [0, 1], [cols, 1], 0, (_, c) => src[c]!, rows * cols, 0],
        ['block', [rows, cols], [cols, 1], [cols + 4, 1], 1, (r, c) => src[1 + r * cols + c]!, rows * (cols + 4) + 3, 3],
      ];
      for (const [name, shape, strides, dst, offset, want, len, dstOffset] of cases) {
        const outAt = poisoned(pool, len);
        pool.runSync('copy', {
          bind: { src: srcAt, out: outAt },
          params: { n: rows * cols, src_offset: offset, out_offset: dstOffset, shape, src_strides: strides, out_strides: dst },
          constants: { RANK: 2 },
        });
        const out = pool.f32(outAt, len);
        const misses: string[] = [];
        for (let i = 0; i < len; i++) {
          const j = i - dstOffset, r = Math.floor(j / dst[0]!), c = j % dst[0]!;
          const written = j >= 0 && c < cols && r < rows;
          const ok = written ? out[i] === want(r, c) : Number.isNaN(out[i]);
          if (!ok && misses.length < 3) misses.push(`${name}[${i}] = ${out[i]}`);
        }
        expect(misses).toEqual([]);
        pool.heap.release(outAt);
      }
    });
  }
});
