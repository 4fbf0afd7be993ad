// The CPU backend's runtime: the heap (first fit, merging neighbours, growing the memory, a clear
// error at the limit) and the thread pool (async runs, a trap inside a kernel surfacing as an
// error, the pool usable afterwards).

import { describe, expect, it } from 'vitest';
import { Heap, RESERVED } from '../../src/runtime/wasm/heap';
import { WasmPool } from '../../src/runtime/wasm/pool';

describe('wasm heap', () => {
  it('allocates aligned blocks first-fit, merges freed neighbours and grows the memory', () => {
    const memory = new WebAssembly.Memory({ initial: 2, maximum: 16 });
    const heap = new Heap(memory, 16 * 65536);
    const a = heap.alloc(100), b = heap.alloc(1), c = heap.alloc(64);
    expect([a, b, c]).toEqual([RESERVED, RESERVED + 128, RESERVED + 192]);
    expect(heap.liveBytes).toBe(128 + 64 + 64);
    heap.release(b);
    expect(heap.alloc(64)).toBe(b);               // the hole is reused
    heap.release(a);
    heap.release(b);
    expect(heap.alloc(192)).toBe(a);              // a and b merged into one block
    const big = heap.alloc(200_000);              // past the initial memory: it grows
    expect(memory.buffer.byteLength).toBeGreaterThanOrEqual(big + 200_000);
    expect(() => heap.alloc(2 * 1024 * 1024)).toThrow(/cannot allocate 2097152 bytes.*limit is 1048576/);
    expect(() => heap.release(12345)).toThrow(/not an allocated block/);
    heap.release(big);
    heap.release(a);
    heap.release(c);
    expect(heap.liveBytes).toBe(0);
  });
});

describe('wasm thread pool', () => {
  it('runs kernels asynchronously, turns a trap into an error and stays usable', async () => {
    const pool = await WasmPool.create({ threads: 2 });
    try {
      expect([pool.threads, pool.reason]).toEqual([2, undefined]);
      const n = 100_000;
      const at = pool.heap.alloc(n * 4);
      const fill = (out: number, value: number, count = n) => pool.run('fill', { bind: { out }, params: { n: count, value, out_offset: 0 } });
      await fill(at, 0x3f800000);   // 1.0f
      expect(pool.f32(at, n).every((v) => v === 1)).toBe(true);
      // An address past the end of the memory traps in whichever thread claims that task.
      const beyond = pool.memory.buffer.byteLength;
      await expect(fill(beyond, 0)).rejects.toThrow(/out of bounds|failed in a helper thread/);
      await fill(at, 0);
      expect(pool.f32(at, n).every((v) => v === 0)).toBe(true);
    } finally {
      await pool.close();
    }
    await expect(pool.run('fill', { bind: { out: 0 }, params: { n: 0, value: 0, out_offset: 0 } })).rejects.toThrow(/closed/);
  });
});
