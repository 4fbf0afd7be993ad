// The layering rule (scripts/check-layers.mjs): the source tree passes, and the checker does catch
// an upward import and a cycle when there is one.
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
// @ts-expect-error a plain-Node script without type declarations
import { layerOf, problems, valueImports } from '../../scripts/check-layers.mjs';

const repo = resolve(import.meta.dirname, '../..');

describe('import layers', () => {
  it('every import in src/ goes down the layers, with no cycles', () => {
    const out = execFileSync(process.execPath, ['scripts/check-layers.mjs'], { cwd: repo, encoding: 'utf8' });
    expect(out).toMatch(/all downward, no cycles/);
  });

  it('an import from a higher layer and a circle of imports are reported', () => {
    const { upward, cycles } = problems([
      ['src/tensor.ts', 'src/ops/copy.ts'], // tensor layer → ops layer: up
      ['src/ops/a.ts', 'src/ops/b.ts'],
      ['src/ops/b.ts', 'src/ops/a.ts'],
    ]);
    expect(upward).toEqual([['src/tensor.ts', 'src/ops/copy.ts']]);
    expect(cycles).toEqual([['src/ops/a.ts', 'src/ops/b.ts']]);
    expect(layerOf('src/kernels/launch.ts')).toBeLessThan(layerOf('src/ops/matmul.ts'));
  });

  it('type-only imports do not count', () => {
    const text = [
      "import type { A } from './a';",
      "import { type B, type C } from './b';",
      "export type { D } from './d';",
      "import { e, type F } from './e';",
      "export { g } from './g';",
      "import './h';",
    ].join('\n');
    expect(valueImports(text)).toEqual(['./e', './g', './h']);
  });
});
