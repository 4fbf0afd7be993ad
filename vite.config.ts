// One config for the library build, the demo build, the dev server (`npm start`) and the tests
// (vitest). WGSL files are imported with `?raw`, so every build inlines them as strings.
//
// `npm run build` runs Vite twice, one build per mode, because a library build and an app build
// differ in everything that matters here (entries, output layout, what is external):
//   - default mode: the ESM library, dist/webgrad.js (browsers) and dist/node.js (Node, Dawn);
//   - `--mode demo`: the demo page as a static app in dist/demo/ (its Worker and the MNIST file
//     included), whose URLs are all relative, so any static server can serve it from any path.
// The library build goes first: it empties dist/, the demo build then adds dist/demo/.

import { resolve } from 'node:path';
import { defineConfig, type Plugin, type ViteUserConfig } from 'vitest/config';

const repo = import.meta.dirname;

/**
 * Cross-origin isolation: with these two headers a page may use SharedArrayBuffer, which the CPU
 * backend's threads share (without them it runs on one thread and says so). The dev server
 * (`npm start`, the browser tests) and `vite preview` send them; the demo build writes them in
 * `_headers` for static hosts that read that file (Netlify, Cloudflare Pages) — others must be
 * configured to send them.
 */
const ISOLATION_HEADERS = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };

/** Writes dist/demo/_headers: the isolation headers for every path of the built demo. */
function isolationHeadersFile(): Plugin {
  return {
    name: 'webgrad-isolation-headers',
    apply: 'build',
    generateBundle() {
      const lines = ['/*', ...Object.entries(ISOLATION_HEADERS).map(([k, v]) => `  ${k}: ${v}`), ''];
      this.emitFile({ type: 'asset', fileName: '_headers', source: lines.join('\n') });
    },
  };
}

/**
 * The training tests that compare numbers, run on the CPU backend too: the Trainer and its memory
 * plan, checkpoints, nn.checkpoint, the GPT (training step, generate), LoRA, frozen weights (their
 * f16 storage is WebGPU's: skipped there), GPT-2 import (its F16 file is made with toHalf, which the
 * CPU backend refuses: that part returns early there), data parallelism between in-process replicas.
 */
const WASM_TRAINING_TESTS = [
  'test/training/trainer.test.ts',
  'test/training/training.test.ts',
  'test/training/optim.test.ts',
  'test/training/nn.test.ts',
  'test/training/freeze.test.ts',
  'test/training/checkpoint.test.ts',
  'test/training/mixed-precision.test.ts',
  'test/training/transformer.test.ts',
  'test/training/gpt.test.ts',
  'test/training/checkpointing.test.ts',
  'test/training/checkpoint-plan.test.ts',
  'test/training/sequence-trainer.test.ts',
  'test/training/safetensors.test.ts',
  'test/training/lora.test.ts',
  'test/training/half.test.ts',
  'test/training/gpt2.test.ts',
  'test/distributed/local.test.ts',
];

const library: ViteUserConfig = {
  root: '.',
  // Relative asset URLs, so that the built library finds dist/mnist.bin.gz from dist/*.js (Node
  // reads it from disk, browsers fetch it next to the script).
  base: './',
  server: { headers: ISOLATION_HEADERS },
  preview: { headers: ISOLATION_HEADERS },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    lib: {
      entry: { webgrad: resolve(repo, 'src/index.ts'), node: resolve(repo, 'src/node.ts') },
      formats: ['es'],
    },
    rollupOptions: {
      external: ['webgpu', 'ws', 'node-datachannel', 'node-datachannel/polyfill', /^node:/],
    },
  },
  test: {
    // Two projects: every test with the engine on WebGPU (Dawn on SwiftShader here), and the op
    // and training tests again on the CPU backend. $WEBGRAD_BACKEND is the backend wg.init()
    // takes when a test names none (src/node.ts); both projects share the rest of this config.
    projects: [
      { extends: true, test: { name: 'webgpu', include: ['test/**/*.test.ts'], env: { WEBGRAD_BACKEND: 'webgpu' } } },
      {
        extends: true,
        test: {
          name: 'wasm',
          include: ['test/ops/**/*.test.ts', ...WASM_TRAINING_TESTS],
          // What only WebGPU has: f16 kernels, subgroup variants.
          exclude: ['test/ops/mixed-precision-f16.test.ts', 'test/ops/subgroups.test.ts'],
          env: { WEBGRAD_BACKEND: 'wasm' },
        },
      },
    ],
    setupFiles: ['test/setup.ts'],
    // Compiles the wasm kernels (wasm/) when their sources changed: `npx vitest run` alone works.
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
    // settleGarbage() (test/helpers.ts) collects garbage, so memory readings are exact.
    execArgv: ['--expose-gc'],
    reporters: ['default'],
  },
};

const demo: ViteUserConfig = {
  // The page's folder is the app's root, so the build writes dist/demo/index.html (not
  // dist/demo/demo/index.html); it imports the engine from ../src.
  root: resolve(repo, 'demo'),
  base: './',
  publicDir: false,
  plugins: [isolationHeadersFile()],
  preview: { headers: ISOLATION_HEADERS },
  build: {
    outDir: resolve(repo, 'dist/demo'),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    rollupOptions: { input: resolve(repo, 'demo/index.html') },
  },
  // The training Worker is an ES module (it shares chunks with the page's imports).
  worker: { format: 'es' },
};

export default defineConfig(({ mode }) => (mode === 'demo' ? demo : library));
