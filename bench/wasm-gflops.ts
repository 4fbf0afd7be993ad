// The CPU backend's kernels (wasm/, phase 1 of issue 19) beside the peers' WebAssembly backends,
// in one process, one work item after another:
//   node scripts/run.mjs bench/wasm-gflops.ts [--browser] [--runs 5] [--threads 1,2]
//        [--only matmul-1024,conv2d-fwd-bwd,mlp-step,cnn-step] [--peers jax-js-wasm,tfjs-wasm] [--no-relaxed] [--profile]
// webgrad-wasm runs the kernels straight through the thread pool (src/runtime/wasm/) at each
// thread count of --threads; the training steps are composed from the kernels (bench/harness/wasm.ts)
// and their loss before the update is printed beside the peers' for the same seeded data.
//
// In Node (the default) jax-js 0.1.25 runs its wasm backend through the browser benchmark's
// preparers (bench/harness/jax.ts) on one thread (it starts workers only where a global Worker
// exists), and TF.js 4.22's wasm backend only the matmul items (its gradients do not load in Node).
// With --browser the same runs happen in headless Chromium, in a cross-origin isolated page
// (COOP/COEP headers): there webgrad's pool and jax-js both use two threads (Web Workers), relaxed
// SIMD is available, and TF.js runs every item its wasm backend has kernels for (it has no
// Conv2DBackpropFilter). Figures are medians of --runs runs after a warm-up; other programs on
// the machine move them, so compare within one run. --profile adds the time per kernel of the
// composed steps (Node only).

import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { createServer } from 'vite';
import { WasmPool } from '../src/runtime/wasm/pool';
import { collectErrors, launchChromium } from '../test/browser/harness';
import { engine, type Engine } from './harness/engine';
import { profile, runWasmSuite, table, type Peer, type Row } from './harness/wasm';
import { workloads } from './harness/workloads';
import { option } from './harness/args';

export interface WasmBenchOptions {
  runs: number;
  /** Thread counts for webgrad-wasm (default: 1 and all). */
  threads?: number[];
  works: string[];
  peers: string[];
  relaxed: boolean;
}

// ---- TF.js wasm, matmul only ----------------------------------------------------------------------

/**
 * TF.js's wasm backend for the matmul items. bench/harness/tfjs.ts cannot load in Node (tfjs-core's
 * gradient registrations are extensionless ES modules), and without gradients TF.js has no
 * training step to time; its wasm backend lacks Conv2DBackpropFilter anyway.
 */
async function tfjsWasm(): Promise<Engine> {
  const require = createRequire(import.meta.url);
  const tf = require('@tensorflow/tfjs-core') as typeof import('@tensorflow/tfjs-core');
  const wasm = require('@tensorflow/tfjs-backend-wasm') as typeof import('@tensorflow/tfjs-backend-wasm');
  wasm.setWasmPaths(`${dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm'))}/`);
  if (!(await tf.setBackend('wasm'))) throw new Error('TensorFlow.js could not start its wasm backend');
  const unsupported = (): never => {
    throw new Error('not run: no gradients in Node');
  };
  return engine('tfjs-wasm', undefined, {
    matmul(w, d) {
      const a = tf.tensor2d(d.a, [w.n, w.n]), b = tf.tensor2d(d.b, [w.n, w.n]);
      return {
        async run() {
          const c = tf.matMul(a, b);
          const v = (await c.data())[0]!;
          c.dispose();
          return v;
        },
        dispose: () => tf.dispose([a, b]),
      };
    },
    conv2d: unsupported,
    mlp: unsupported,
    layernorm: unsupported,
    attention: unsupported,
    cnn: unsupported,
    gpt: unsupported,
  });
}

// ---- the run ---------------------------------------------------------------------------------------

function nodePeer(name: string): Peer {
  if (name === 'jax-js-wasm') return { name: 'jax-js-wasm ×1', load: async () => (await import('./harness/jax')).createEngine('wasm') };
  if (name === 'tfjs-wasm') return { name: 'tfjs-wasm ×1', load: tfjsWasm };
  throw new Error(`unknown peer ${name} (jax-js-wasm, tfjs-wasm)`);
}

async function runNode(o: WasmBenchOptions, withProfile: boolean): Promise<{ header: string; rows: Row[] }> {
  const pool = await WasmPool.create({ relaxed: o.relaxed });
  try {
    if (withProfile) profile.kernels = new Map();
    const works = workloads(false).filter((w) => o.works.includes(w.name));
    const threads = o.threads ?? [...new Set([1, pool.threads])];
    const rows = await runWasmSuite(pool, works, threads, o.peers.map(nodePeer), o.runs, (w) => console.log(`${w} done`));
    const header = `Node ${process.versions.node}: webgrad-wasm ${pool.threads} threads available${pool.reason ? ` (${pool.reason})` : ''}, ` +
      `${pool.relaxed ? 'relaxed SIMD' : 'SIMD without relaxed SIMD'}; helpers joined ${pool.stats.joins} times in ${pool.stats.parallelRuns} parallel runs`;
    return { header, rows };
  } finally {
    await pool.close();
  }
}

async function runBrowser(o: WasmBenchOptions): Promise<{ header: string; rows: Row[] }> {
  const headers = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };
  const server = await createServer({ logLevel: 'error', server: { host: '127.0.0.1', port: 0, hmr: false, headers } });
  await server.listen();
  const url = `http://127.0.0.1:${(server.httpServer!.address() as AddressInfo).port}`;
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    const errors = collectErrors(page);
    await page.exposeFunction('wasmBenchProgress', (w: string) => console.log(`${w} done`));
    await page.goto(`${url}/bench/wasm-gflops.html`);
    await page.waitForFunction(() => typeof (window as unknown as { runWasmBench?: unknown }).runWasmBench === 'function', null, { timeout: 60_000 });
    const out = await page.evaluate((opts) => (window as unknown as { runWasmBench(x: typeof opts): Promise<{ header: string; rows: Row[] }> }).runWasmBench(opts), o);
    if (errors.length) console.warn(`the page logged errors:\n${errors.join('\n')}`);
    return { header: `Chromium ${browser.version()} (headless, cross-origin isolated): ${out.header}`, rows: out.rows };
  } finally {
    await browser.close();
    await server.close();
  }
}

export async function main(args: string[]): Promise<void> {
  const only = option(args, '--only')?.split(',');
  const o: WasmBenchOptions = {
    runs: Number(option(args, '--runs') ?? 5),
    threads: option(args, '--threads')?.split(',').map(Number),
    works: only ?? ['matmul-256', 'matmul-1024', 'conv2d-fwd-bwd', 'mlp-step', 'cnn-step'],
    peers: (option(args, '--peers') ?? 'jax-js-wasm,tfjs-wasm').split(',').filter(Boolean),
    relaxed: !args.includes('--no-relaxed'),
  };
  const { header, rows } = args.includes('--browser') ? await runBrowser(o) : await runNode(o, args.includes('--profile'));
  console.log(`\n${header}; median of ${o.runs} runs after a warm-up\n\n${table(rows)}`);
  if (profile.kernels) {
    console.log('\nkernel time in the composed steps (ms, summed over the warm-up and the timed runs):');
    for (const [k, ms] of [...profile.kernels].sort((a, b) => a[0].localeCompare(b[0]) || b[1] - a[1])) console.log(`  ${k.padEnd(44)} ${ms.toFixed(1)}`);
  }
}
