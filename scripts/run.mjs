#!/usr/bin/env node
// Run a TypeScript file of this repository through Vite's module runner (the same transform the
// tests use, so `?raw` WGSL imports work): `node scripts/run.mjs scripts/x.ts [args…]`.
// The file's exported `main(args)` is called with the remaining arguments.
import { resolve } from 'node:path';
import { createServer, createServerModuleRunner } from 'vite';

const [file, ...args] = process.argv.slice(2);
if (!file) {
  console.error('usage: node scripts/run.mjs <file.ts> [args…]');
  process.exit(2);
}
const server = await createServer({
  configFile: false,
  logLevel: 'error',
  appType: 'custom',
  server: { middlewareMode: true, hmr: false, ws: false },
  optimizeDeps: { noDiscovery: true, include: [] },
});
const runner = createServerModuleRunner(server.environments.ssr, { hmr: false });
let code = 0;
try {
  const mod = await runner.import(resolve(file));
  if (typeof mod.main === 'function') await mod.main(args);
} catch (e) {
  console.error(e);
  code = 1;
} finally {
  await runner.close();
  await server.close();
}
process.exit(process.exitCode ?? code);
