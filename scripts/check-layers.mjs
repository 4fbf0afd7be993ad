#!/usr/bin/env node
// The engine's layers (README "How the engine is built"): a file may import (values, not types)
// only from its own layer or a lower one, and no files may import each other in a circle.
// `node scripts/check-layers.mjs` prints each edge that breaks a rule and exits 1; with --map it
// also prints how many imports run between each pair of folders. `npm test` runs it.
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Lowest first. A path matches the first entry that is its prefix (a folder) or equals it (a file). */
export const LAYERS = [
  ['base', ['src/random.ts', 'src/clock.ts']],
  ['runtime', ['src/runtime/']],
  ['kernels', ['src/kernels/', 'src/profile/']],
  ['tensor', ['src/tensor.ts', 'src/scope.ts', 'src/creation.ts', 'src/memory.ts', 'src/checks.ts', 'src/autotune.ts', 'src/precompile.ts', 'src/autograd/']],
  ['ops', ['src/ops/']],
  ['nn', ['src/nn/', 'src/optim/', 'src/data/', 'src/io/']],
  ['models', ['src/models/']],
  ['train', ['src/train/']],
  ['distributed', ['src/distributed/']],
  ['api', ['src/index.ts', 'src/node.ts', 'src/cli/']],
];

export function layerOf(file) {
  for (let i = 0; i < LAYERS.length; i++) {
    if (LAYERS[i][1].some((p) => (p.endsWith('/') ? file.startsWith(p) : file === p))) return i;
  }
  return -1;
}

/** Relative value imports of a TypeScript source: `import x from`, `export … from`, `import '…'`, `import('…')`. */
export function valueImports(text) {
  const out = [];
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const re = /(?:^|[;\n])\s*(import|export)\s+(type\s+)?([^;'"]*?)\s*from\s*['"]([^'"]+)['"]|(?:^|[;\n])\s*import\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;
  for (const m of code.matchAll(re)) {
    if (m[4]) {
      if (m[2]) continue; // import type / export type
      // `import { type A, type B } from` imports no values either.
      const names = /^\{([^}]*)\}$/.exec(m[3].trim());
      if (names && names[1].split(',').map((s) => s.trim()).filter(Boolean).every((s) => s.startsWith('type '))) continue;
      out.push(m[4]);
    } else out.push(m[5] ?? m[6]);
  }
  return out.filter((s) => s.startsWith('.'));
}

function resolveImport(repo, from, spec) {
  const base = resolve(dirname(join(repo, from)), spec.split('?')[0]);
  for (const c of [base, `${base}.ts`, join(base, 'index.ts')]) {
    if (existsSync(c) && statSync(c).isFile()) return relative(repo, c);
  }
  return null;
}

/** Every edge [from, to] between the files given (paths relative to the repository). */
export function importGraph(repo, files) {
  const edges = [];
  for (const f of files) {
    for (const spec of valueImports(readFileSync(join(repo, f), 'utf8'))) {
      const to = resolveImport(repo, f, spec);
      if (to && to.endsWith('.ts') && to.startsWith('src/')) edges.push([f, to]);
    }
  }
  return edges;
}

/** Edges that go up a layer, and the import cycles (each a list of files). */
export function problems(edges) {
  const upward = edges.filter(([a, b]) => layerOf(b) > layerOf(a));
  const unplaced = [...new Set(edges.flat())].filter((f) => layerOf(f) < 0);
  // Cycles: Tarjan's strongly connected components of more than one file.
  const next = new Map();
  for (const [a, b] of edges) (next.get(a) ?? next.set(a, []).get(a)).push(b);
  const index = new Map(), low = new Map(), stack = [], on = new Set(), cycles = [];
  let n = 0;
  const visit = (v) => {
    index.set(v, n); low.set(v, n); n++; stack.push(v); on.add(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) { visit(w); low.set(v, Math.min(low.get(v), low.get(w))); }
      else if (on.has(w)) low.set(v, Math.min(low.get(v), index.get(w)));
    }
    if (low.get(v) === index.get(v)) {
      const scc = [];
      let w;
      do { w = stack.pop(); on.delete(w); scc.push(w); } while (w !== v);
      if (scc.length > 1) cycles.push(scc.sort());
    }
  };
  for (const v of next.keys()) if (!index.has(v)) visit(v);
  return { upward, unplaced, cycles };
}

function sourceFiles(repo, dir = 'src') {
  return readdirSync(join(repo, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(repo, join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** Imports between folders (a folder, or a file directly in src/), most first. */
export function folderMap(edges) {
  const unit = (f) => (f.split('/').length > 2 ? f.split('/').slice(0, 2).join('/') + '/' : f);
  const counts = new Map();
  for (const [a, b] of edges) {
    const k = `${unit(a)} → ${unit(b)}`;
    if (unit(a) !== unit(b)) counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return [...counts].sort((x, y) => y[1] - x[1]);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  const edges = importGraph(repo, sourceFiles(repo));
  const { upward, unplaced, cycles } = problems(edges);
  if (process.argv.includes('--map')) for (const [k, c] of folderMap(edges)) console.log(`${String(c).padStart(4)}  ${k}`);
  for (const [a, b] of upward) console.log(`layers: ${a} (${LAYERS[layerOf(a)][0]}) imports ${b} (${LAYERS[layerOf(b)][0]}), a higher layer`);
  for (const f of unplaced) console.log(`layers: ${f} is in no layer (add it to LAYERS in scripts/check-layers.mjs)`);
  for (const c of cycles) console.log(`layers: these files import each other in a circle: ${c.join(', ')}`);
  const bad = upward.length + unplaced.length + cycles.length;
  console.log(bad ? `layers: ${bad} problem(s)` : `layers: ${edges.length} imports between ${new Set(edges.flat()).size} files, all downward, no cycles`);
  process.exit(bad ? 1 : 0);
}
