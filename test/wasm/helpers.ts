// Shared by the wasm kernel tests: one pool per thread count, buffers in its memory poisoned with
// NaN (so an element a kernel forgets shows up), a seeded random source, and a float32 closeness
// check against float64 references.

import { afterAll, beforeAll, expect } from 'vitest';
import { WasmPool } from '../../src/runtime/wasm/pool';

/** Single-threaded and multi-threaded (more threads than this machine's cores: tiles interleave). */
export const THREADS = [1, 3] as const;

/** A pool per entry of THREADS, created before the file's tests and closed after. */
export function usePools(): Map<number, WasmPool> {
  const pools = new Map<number, WasmPool>();
  beforeAll(async () => {
    for (const t of THREADS) pools.set(t, await WasmPool.create({ threads: t }));
  });
  afterAll(async () => {
    for (const p of pools.values()) await p.close();
  });
  return pools;
}

/** Seeded uniform numbers in [-1, 1) (mulberry32). */
export function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 31 - 1;
  };
}

export function randomArray(n: number, seed: number): Float32Array {
  const r = random(seed);
  return Float32Array.from({ length: n }, r);
}

/** A buffer in the pool's memory holding `data`. */
export function upload(pool: WasmPool, data: ArrayLike<number>): number {
  const at = pool.heap.alloc(Math.max(4, data.length * 4));
  pool.f32(at, data.length).set(data);
  return at;
}

export function uploadI32(pool: WasmPool, data: ArrayLike<number>): number {
  const at = pool.heap.alloc(Math.max(4, data.length * 4));
  pool.i32(at, data.length).set(data);
  return at;
}

/** A buffer of n floats, all NaN. */
export function poisoned(pool: WasmPool, n: number): number {
  const at = pool.heap.alloc(Math.max(4, n * 4));
  pool.f32(at, n).fill(NaN);
  return at;
}

export function read(pool: WasmPool, at: number, n: number): Float32Array {
  return pool.f32(at, n).slice();
}

/**
 * Every element within `tol[i]` (or `tol` for all) of the reference; NaN only where the reference
 * is NaN. Reports the first few misses with their indices.
 */
export function expectNear(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number | ArrayLike<number>, what = ''): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  const misses: string[] = [];
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    const t = typeof tol === 'number' ? tol : tol[i]!;
    const ok = Number.isNaN(e) ? Number.isNaN(a) : a === e || Math.abs(a - e) <= t;
    if (!ok && misses.length < 5) misses.push(`[${i}] got ${a}, want ${e} ± ${t}`);
  }
  expect(misses, `${what}: ${misses.length} mismatches`).toEqual([]);
}
