// Every WGSL file compiles on this adapter without errors, the way its op assembles it.
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

describe('shaders', () => {
  it('all compile (scripts/check-shaders.mjs)', () => {
    const repo = resolve(import.meta.dirname, '../..');
    let out = '';
    try {
      out = execFileSync(process.execPath, ['scripts/check-shaders.mjs'], { cwd: repo, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      expect.fail(`check-shaders failed:\n${(e as { stdout?: string }).stdout ?? e}`);
    }
    expect(out).toMatch(/elementwise\.wgsl: ok/);
    expect(out).not.toMatch(/ error: /);
  });

  it('the generated attention tiles are current (scripts/gen-attention-tiles.mjs --check)', () => {
    const repo = resolve(import.meta.dirname, '../..');
    try {
      execFileSync(process.execPath, ['scripts/gen-attention-tiles.mjs', '--check'], { cwd: repo, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      expect.fail(`${(e as { stdout?: string }).stdout ?? e}`);
    }
  });
});
