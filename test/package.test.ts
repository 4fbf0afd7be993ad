// The built package, used the way a user would: `npm run build`, then plain `node` in a
// directory outside the repository imports 'webgrad/node' from a linked copy and runs a matmul.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repo = resolve(import.meta.dirname, '..');
let outside: string;

beforeAll(() => {
  execFileSync('npm', ['run', 'build'], { cwd: repo, stdio: 'pipe' });
  outside = mkdtempSync(join(tmpdir(), 'webgrad-user-'));
  mkdirSync(join(outside, 'node_modules'));
  symlinkSync(repo, join(outside, 'node_modules', 'webgrad'), 'dir');
}, 300_000);

afterAll(() => rmSync(outside, { recursive: true, force: true }));

describe('the built package', () => {
  it('plain node imports webgrad/node from a linked copy and runs a matmul', () => {
    writeFileSync(
      join(outside, 'use.mjs'),
      `import * as wg from 'webgrad/node';
       await wg.init();
       const a = wg.tensor([[1, 2, 3], [4, 5, 6]]);
       const b = wg.tensor([[1, 0], [0, 1], [1, 1]]);
       console.log(JSON.stringify({ shape: wg.matmul(a, b).shape, data: Array.from(await wg.matmul(a, b).toArray()) }));
       wg.shutdown();`,
    );
    const out = execFileSync(process.execPath, ['use.mjs'], { cwd: outside, encoding: 'utf8', timeout: 60_000 });
    const result = JSON.parse(out.trim().split('\n').pop()!);
    expect(result).toEqual({ shape: [2, 2], data: [4, 5, 10, 11] });
  });

  it('the browser bundle never pulls in Dawn and inlines the WGSL', () => {
    const dist = join(repo, 'dist');
    const js = readdirSync(dist).filter((f) => f.endsWith('.js'));
    const browserEntry = readFileSync(join(dist, 'webgrad.js'), 'utf8');
    // Follow the browser entry's static imports: none of them may mention the Dawn package.
    const reachable = new Set<string>(['webgrad.js']);
    for (const f of reachable) {
      const src = readFileSync(join(dist, f), 'utf8');
      for (const m of src.matchAll(/from\s*["']\.\/([^"']+)["']/g)) reachable.add(m[1]!);
      expect(src, `${f} imports webgpu`).not.toMatch(/(from\s*|import\s*\(\s*)["']webgpu["']/);
    }
    expect(browserEntry.length).toBeGreaterThan(0);
    // Every kernel is in the bundle as a string, and nothing loads a shader file at run time.
    const all = js.map((f) => readFileSync(join(dist, f), 'utf8')).join('\n');
    const shaders = join(repo, 'shaders');
    for (const file of readdirSync(shaders)) {
      for (const [, name] of readFileSync(join(shaders, file), 'utf8').matchAll(/@compute[^\n]*\n\s*fn (\w+)\(/g)) {
        expect(all, `${file}: entry point ${name}`).toContain(`fn ${name}(`);
      }
    }
    expect(all).not.toMatch(/(import\s*\(|new URL\(|fetch\(|readFile\w*\()\s*["'`][^"'`]*\.wgsl/);
  });
});
