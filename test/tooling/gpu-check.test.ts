// scripts/gpu-check.ts on SwiftShader: it sees a software adapter without shader-f16, says that the
// f16 checks were skipped, still runs the GPT's f32 check, the subgroup checks and the f32 side of
// the benchmarks (at small sizes), writes its JSON summary, and exits non-zero only when --require-f16 asks for f16.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it, vi } from 'vitest';
import { main } from '../../scripts/gpu-check';

it('runs its f32 parts here, skips the f16 checks saying so, and exits 2 with --require-f16', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gpu-check-'));
  const log = vi.spyOn(console, 'log').mockImplementation(() => {});
  const before = process.exitCode;
  let exitCode: typeof process.exitCode;
  let printed = '';
  try {
    await main(['--out', join(dir, 'summary.json'), '--require-f16']);
    exitCode = process.exitCode;
    printed = log.mock.calls.map((c) => String(c[0])).join('\n');
  } finally {
    process.exitCode = before;
    log.mockRestore();
  }
  // Nothing failed (without the flag the exit code stays 0); the flag asks for f16 this adapter lacks.
  expect(exitCode).toBe(2);
  expect(printed).toMatch(/software fallback: true/);
  expect(printed).toMatch(/f16 checks were skipped/);
  expect(printed).toMatch(/--require-f16: this adapter is a software fallback or has no shader-f16/);
  const summary = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8'));
  expect(summary.f16Checked).toBe(false);
  expect(summary.failed).toBe(0);
  expect(summary.checks.length).toBeGreaterThan(0); // the GPT in f32, the subgroup reductions (SwiftShader has subgroups)
  expect(summary.checks.every((c: { ok: boolean; name: string }) => c.ok && /subgroup|^GPT f32/.test(c.name))).toBe(true);
  expect(summary.checks.filter((c: { name: string }) => /^GPT f32/.test(c.name)).length).toBe(2);
  expect(summary.benchmarks.map((b: { name: string }) => b.name.split(' ')[0])).toEqual(['matmul', 'matmul', 'conv2d', 'conv2d', 'attention', 'MLP', 'CNN', 'GPT']);
  for (const b of summary.benchmarks) {
    expect(b.f32_ms).toBeGreaterThan(0);
    expect(b.f16_ms).toBeNull();
  }
});
