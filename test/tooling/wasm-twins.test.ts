// Every kernel has its twin on the CPU backend, read from the sources (no device needed), so that
// a new WGSL kernel or op code without one is named here, not found by a user on a CPU:
//  - every defineKernel / rowKernel call names a `wasm` twin, except the kernels that only WebGPU
//    runs (the f16 casts; conv2d's packed-weight kernels, whose op has a CPU branch of its own);
//  - every unary and binary op code of src/ops/pointwise.ts has a case in wasm/elementwise.ts
//    (the twin's default would otherwise pass its operand through, as the WGSL's does).

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const repo = join(import.meta.dirname, '..', '..');

/** Kernels with no twin on purpose, by the name their definition starts with. */
const GPU_ONLY: Record<string, string> = {
  'cast.f16': 'f16: the CPU backend keeps float32',
  'cast.f32': 'f16 tensors exist only on WebGPU (toHalf refuses on the CPU backend, so toFloat never sees one there)',
  'conv2d.pack/': 'conv2d on the CPU reads the weight through its strides (no packing pass)',
  'conv2d/': 'conv2d on the CPU runs its own kernels (cpuBackend() in src/ops/conv2d.ts)',
  'conv2d.grad_input/': 'as conv2d',
};

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? tsFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Each call `fn(…)` in `source`, as its whole text (parentheses balanced). */
function calls(source: string, fn: string): string[] {
  const out: string[] = [];
  const re = new RegExp(`\\b${fn}\\(`, 'g');
  for (let m = re.exec(source); m; m = re.exec(source)) {
    if (/function\s+$/.test(source.slice(Math.max(0, m.index - 20), m.index))) continue; // the definition itself
    let depth = 1;
    let i = m.index + m[0].length;
    for (; depth > 0 && i < source.length; i++) depth += source[i] === '(' ? 1 : source[i] === ')' ? -1 : 0;
    out.push(source.slice(m.index, i));
  }
  return out;
}

/** How many arguments a call's text passes (commas outside brackets, strings and templates). */
function topLevelArgs(call: string): number {
  let depth = 0;
  let quote = '';
  let n = 1;
  for (const ch of call.slice(call.indexOf('(') + 1, -1)) {
    if (quote) {
      if (ch === quote) quote = '';
    } else if (ch === "'" || ch === '"' || ch === '`') quote = ch;
    else if ('([{'.includes(ch)) depth++;
    else if (')]}'.includes(ch)) depth--;
    else if (ch === ',' && depth === 0) n++;
  }
  return n;
}

/** The first string argument of a call (a kernel's name; a template's text up to its first ${). */
function kernelName(call: string): string {
  return /\(\s*['`]([^'`$]*)/.exec(call)?.[1] ?? call.slice(0, 60);
}

/** The codes of `const NAME = { a: 0, … }` in a source. */
function codes(source: string, name: string): Map<string, number> {
  const body = new RegExp(`const ${name} = \\{([^}]*)\\}`).exec(source)?.[1];
  if (!body) throw new Error(`no table ${name}`);
  return new Map([...body.matchAll(/(\w+):\s*(\d+)/g)].map((m) => [m[1]!, Number(m[2])]));
}

/** The `case N:` labels in a top-level function of a source (up to its closing brace at column 0). */
function cases(source: string, fn: string): Set<number> {
  const start = source.indexOf(`function ${fn}(`);
  if (start < 0) throw new Error(`no function ${fn}`);
  const body = source.slice(start, source.indexOf('\n}', start));
  return new Set([...body.matchAll(/case (\d+):/g)].map((m) => Number(m[1])));
}

describe('wasm twins', () => {
  it('every kernel names its twin on the CPU backend, but those only WebGPU runs', () => {
    const missing: string[] = [];
    for (const file of tsFiles(join(repo, 'src'))) {
      if (file.endsWith(join('kernels', 'kernel.ts'))) continue;
      const source = readFileSync(file, 'utf8');
      const defs = [
        ...calls(source, 'defineKernel').filter((c) => !/\bwasm\b/.test(c)),
        // rowKernel(name, code, entry, bindings, wasm): the twin is its fifth argument.
        ...calls(source, 'rowKernel').filter((c) => topLevelArgs(c) < 5),
      ];
      for (const c of defs) {
        const name = kernelName(c);
        if (!Object.keys(GPU_ONLY).some((k) => name.startsWith(k))) missing.push(`${relative(repo, file)}: ${name}`);
      }
    }
    expect(missing, `kernels without a wasm twin (add one, README "Adding an op"): ${missing.join('; ')}`).toEqual([]);
  });

  it('every unary and binary op code has its case in the wasm elementwise kernels', () => {
    const ops = readFileSync(join(repo, 'src/ops/pointwise.ts'), 'utf8');
    const twin = readFileSync(join(repo, 'wasm/elementwise.ts'), 'utf8');
    // dropout, tril and triu are handled before unaryOp's switch (unary() in wasm/elementwise.ts).
    const beforeSwitch = new Set(['dropout', 'tril', 'triu']);
    const unary = cases(twin, 'unaryOp'), binary = cases(twin, 'binaryOp');
    const lacking = [
      ...[...codes(ops, 'UNARY')].filter(([name, code]) => !beforeSwitch.has(name) && !unary.has(code)).map(([name, code]) => `unary ${name} (${code})`),
      ...[...codes(ops, 'BINARY')].filter(([, code]) => !binary.has(code)).map(([name, code]) => `binary ${name} (${code})`),
    ];
    expect(lacking, `op codes the wasm twin lacks: ${lacking.join(', ')}`).toEqual([]);
    expect(unary.size).toBeGreaterThan(10);
    expect(binary.size).toBeGreaterThan(15);
  });
});
