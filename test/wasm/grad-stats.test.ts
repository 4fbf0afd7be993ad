// The wasm gradient statistics of grad_stats.wgsl: the norm over several tensors (sum_squares
// into slots of one partials list, then grad_total with ROOT) and clip_scale against float64;
// unscale_check scales in place and counts inf and NaN elements per chunk.

import { describe, expect, it } from 'vitest';
import { expectNear, poisoned, randomArray, read, THREADS, upload, usePools } from './helpers';

const WG = 256, ITEMS = 8, CHUNK = WG * ITEMS;

describe('wasm gradient statistics', () => {
  const pools = usePools();
  for (const threads of THREADS) {
    it(`norm, clipping and the unscale check (${threads} thread${threads > 1 ? 's' : ''})`, () => {
      const pool = pools.get(threads)!;
      const sizes = [1, 17, 5000, CHUNK, CHUNK + 3];
      const grads = sizes.map((n, i) => randomArray(n, 50 + i));
      const groups = sizes.map((n) => Math.ceil(n / CHUNK));
      const total = groups.reduce((a, b) => a + b, 0);
      const partials = poisoned(pool, total + 1), norm = poisoned(pool, 2);
      const at = grads.map((g) => upload(pool, [0, 0, ...g]));
      const base = { factor: 0, g_offset: 2, partials_offset: 1, out_offset: 1, norm_offset: 1 };
      let slot = 0;
      sizes.forEach((n, i) => {
        pool.runSync('sum_squares', { bind: { g: at[i]!, partials }, params: { ...base, n, slot, groups: groups[i]! }, constants: { WG, ITEMS } });
        slot += groups[i]!;
      });
      pool.runSync('grad_total', { bind: { partials, out: norm }, params: { ...base, n: total, slot: 0, groups: 1 }, constants: { ROOT: true } });
      const want = Math.sqrt(grads.reduce((s, g) => s + g.reduce((a, v) => a + v * v, 0), 0));
      expectNear(read(pool, norm + 4, 1), [want], want * 1e-6, 'norm');

      const maxNorm = want / 3;
      pool.runSync('clip_scale', { bind: { norm, g: at[2]! }, params: { ...base, n: sizes[2]!, slot: 0, groups: 0, factor: maxNorm } });
      const coef = Math.min(maxNorm / (read(pool, norm + 4, 1)[0]! + 1e-6), 1);
      expectNear(read(pool, at[2]! + 8, sizes[2]!), Float64Array.from(grads[2]!, (v) => v * coef), Float64Array.from(grads[2]!, (v) => Math.abs(v * coef) * 3e-7), 'clip');

      // Two chunks; the second holds an inf and two NaNs.
      const n = CHUNK + 100;
      const g = randomArray(n, 9);
      g[CHUNK + 1] = Infinity;
      g[CHUNK + 50] = NaN;
      g[n - 1] = NaN;
      const gAt = upload(pool, [0, 0, ...g]);
      const counts = poisoned(pool, 3);
      pool.runSync('unscale_check', { bind: { g: gAt, partials: counts }, params: { ...base, n, slot: 1, groups: 2, factor: 0.5, partials_offset: 0 }, constants: { WG, ITEMS } });
      expect(Array.from(read(pool, counts, 3)).map((v, i) => (i === 0 ? Number.isNaN(v) : v))).toEqual([true, 0, 3]);
      expectNear(read(pool, gAt + 8, n), Float64Array.from(g, (v) => v * 0.5), 0, 'unscaled');
      for (const a of [partials, norm, gAt, counts, ...at]) pool.heap.release(a);
    });
  }
});
