// One config for the library build (`npm run build`), the demo dev server (`npm start`) and the
// tests (vitest). WGSL files are imported with `?raw`, so the build inlines them as strings.

import { resolve } from 'node:path';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  root: '.',
  // Relative asset URLs, so that the built library finds dist/mnist.bin.gz from dist/*.js (Node
  // reads it from disk, browsers fetch it next to the script).
  base: './',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    lib: {
      entry: { webgrad: resolve(import.meta.dirname, 'src/index.ts'), node: resolve(import.meta.dirname, 'src/node.ts') },
      formats: ['es'],
    },
    rollupOptions: {
      external: ['webgpu', /^node:/],
    },
  },
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
  },
});
