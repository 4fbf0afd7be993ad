// The page of `bench/wasm-gflops.ts --browser`: webgrad's wasm kernels, jax-js's and TF.js's wasm
// backends in one cross-origin isolated page, so that all three may use threads.
import { WasmPool } from '../src/runtime/wasm/pool';
import type { WasmBenchOptions } from './wasm-gflops';
import { runWasmSuite, type Peer } from './harness/wasm';
import { workloads } from './harness/workloads';

const PEERS: Record<string, Peer> = {
  'jax-js-wasm': { name: 'jax-js-wasm', load: async () => (await import('./harness/jax')).createEngine('wasm') },
  'tfjs-wasm': {
    name: 'tfjs-wasm',
    load: async () => (await import('./harness/tfjs')).createEngine('wasm', '/node_modules/@tensorflow/tfjs-backend-wasm/dist/'),
  },
};

async function runWasmBench(o: WasmBenchOptions) {
  const pool = await WasmPool.create({ relaxed: o.relaxed, threads: navigator.hardwareConcurrency });
  try {
    const works = workloads(false).filter((w) => o.works.includes(w.name));
    const threads = o.threads ?? [...new Set([1, pool.threads])];
    const progress = (window as unknown as { wasmBenchProgress?: (w: string) => void }).wasmBenchProgress;
    const rows = await runWasmSuite(pool, works, threads, o.peers.map((p) => PEERS[p]!), o.runs, progress);
    const header = `webgrad-wasm ${pool.threads} threads${pool.reason ? ` (${pool.reason})` : ''}, ${pool.relaxed ? 'relaxed SIMD' : 'plain SIMD'}; ` +
      `helpers joined ${pool.stats.joins} times in ${pool.stats.parallelRuns} parallel runs; peers with navigator.hardwareConcurrency = ${navigator.hardwareConcurrency}`;
    return { header, rows };
  } finally {
    await pool.close();
  }
}

(window as unknown as { runWasmBench: typeof runWasmBench }).runWasmBench = runWasmBench;
