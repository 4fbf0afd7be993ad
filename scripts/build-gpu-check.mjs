#!/usr/bin/env node
// Prepare .gpu/ (git-ignored) for running scripts/gpu-check.ts on a machine with a GPU but no npm
// (docs/gpu-check.md): the check bundled into one plain-Node file with webgrad and its WGSL
// inlined, the Dawn module it imports (index.js, package.json and the linux-x64 dawn.node only),
// and this machine's node binary, xz-compressed. About 30 MiB in all.
// Usage: node scripts/build-gpu-check.mjs      then: node .gpu/gpu-check.mjs [--out f.json] [--require-f16]
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { build } from 'vite';

const repo = resolve(import.meta.dirname, '..');
const out = join(repo, '.gpu');
mkdirSync(out, { recursive: true });

await build({
  configFile: false,
  root: repo,
  logLevel: 'warn',
  // Everything but Dawn goes into the one file (the GPU machine has no node_modules of ours).
  ssr: { noExternal: true, external: ['webgpu'] },
  build: {
    ssr: join(repo, 'scripts/gpu-check.ts'),
    outDir: out,
    emptyOutDir: false,
    target: 'node20',
    minify: false,
    rollupOptions: { external: ['webgpu', /^node:/], output: { entryFileNames: 'gpu-check.mjs', format: 'es' } },
  },
});

const dawn = join(repo, 'node_modules/webgpu');
const dawnOut = join(out, 'node_modules/webgpu');
mkdirSync(join(dawnOut, 'dist/linux-x64'), { recursive: true });
for (const f of ['index.js', 'package.json', 'dist/linux-x64/dawn.node']) copyFileSync(join(dawn, f), join(dawnOut, f));

const nodeXz = join(out, 'node.xz');
if (!existsSync(nodeXz)) writeFileSync(nodeXz, execFileSync('xz', ['-T2', '-c', process.execPath], { maxBuffer: 1 << 30 }));

const mib = (f) => (statSync(f).size / 2 ** 20).toFixed(1);
console.log(`.gpu/gpu-check.mjs ${mib(join(out, 'gpu-check.mjs'))} MiB, dawn.node ${mib(join(dawnOut, 'dist/linux-x64/dawn.node'))} MiB, node.xz ${mib(nodeXz)} MiB`);
