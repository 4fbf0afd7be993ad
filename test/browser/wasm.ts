// Runs in the page: the CPU backend's thread pool (Web Workers when the page is cross-origin
// isolated, one thread otherwise) runs a matmul kernel; the test checks the numbers.
import { WasmPool } from '../../src/runtime/wasm/pool';

interface Inputs { a: number[]; b: number[]; M: number; N: number; K: number }

async function runWasm(inp: Inputs) {
  const pool = await WasmPool.create({ threads: 2 });
  try {
    const at = (data: number[]) => {
      const p = pool.heap.alloc(data.length * 4);
      pool.f32(p, data.length).set(data);
      return p;
    };
    const a = at(inp.a), b = at(inp.b), c = pool.heap.alloc(inp.M * inp.N * 4);
    pool.f32(c, inp.M * inp.N).fill(NaN);
    await pool.run('matmul', {
      bind: { a, b, c },
      params: { M: inp.M, N: inp.N, K: inp.K, batch_rank: 0, lda: inp.K, ldb: inp.N, a_offset: 0, b_offset: 0, batches: 1, ldc: inp.N, c_offset: 0,
        batch_shape: [], a_bstrides: [], b_bstrides: [] },
      constants: { TRANS_A: false, TRANS_B: false, ACCUMULATE: false },
    });
    return {
      c: Array.from(pool.f32(c, inp.M * inp.N)),
      threads: pool.threads,
      reason: pool.reason ?? null,
      relaxed: pool.relaxed,
      isolated: crossOriginIsolated,
    };
  } finally {
    await pool.close();
  }
}

(window as unknown as { runWasm: typeof runWasm }).runWasm = runWasm;
document.title = 'ready';
