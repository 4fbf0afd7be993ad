// The main job from the command line: `npm run train` (src/cli/train.ts) in a child process, as a
// user runs it. One short MLP epoch, then --resume for a second, then the errors a user meets.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readSafetensorsHeader } from '../../src/io/safetensors';
import { wg } from '../helpers';

const repo = resolve(import.meta.dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'webgrad-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Run the CLI with `args`; stdout and stderr together. */
function train(args: string[]): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, ['scripts/run.mjs', 'src/cli/train.ts', ...args], { cwd: repo, encoding: 'utf8', timeout: 150_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('npm run train', () => {
  it('trains an epoch with a progress bar and test accuracy, writes a checkpoint, and resumes from it', () => {
    const out = join(dir, 'mlp.safetensors');
    // Batch 256: 32 steps an epoch, a few seconds on SwiftShader.
    const first = train(['--epochs', '1', '--batch', '256', '--out', out]);
    expect(first.status, first.out).toBe(0);
    expect(first.out).toMatch(/model: mlp, 203,530 parameters; sgd lr 0\.1 \(cosine decay\); batch 256/);
    expect(first.out).toMatch(/epoch 1\/1 \[#+\] 100%/);
    const accuracy = Number(/epoch 1\/1: train loss [\d.]+, test loss [\d.]+, test accuracy ([\d.]+)%/.exec(first.out)?.[1]);
    expect(accuracy, first.out).toBeGreaterThan(80);
    const bytes = new Uint8Array(readFileSync(out));
    expect(Object.keys(readSafetensorsHeader(bytes).tensors).length).toBeGreaterThan(4);
    expect(wg.io.readCheckpointProgress(bytes)).toMatchObject({ model: 'mlp', optimizer: 'sgd', epoch: 1, steps: 32 });

    const second = train(['--epochs', '2', '--batch', '256', '--out', out, '--resume', out]);
    expect(second.status, second.out).toBe(0);
    expect(second.out).toContain(`resumed from ${out} at epoch 1`);
    expect(second.out).not.toMatch(/epoch 1\/2/);
    expect(second.out).toMatch(/epoch 2\/2: train loss/);
    expect(wg.io.readCheckpointProgress(new Uint8Array(readFileSync(out)))).toMatchObject({ epoch: 2, steps: 64 });

    const wrongModel = train(['--model', 'cnn', '--resume', out, '--out', join(dir, 'cnn.safetensors')]);
    expect(wrongModel.status).not.toBe(0);
    expect(wrongModel.out).toContain(`--resume: ${out} holds a mlp model; pass --model mlp`);
  }, 300_000);

  it('refuses bad options with the usage', () => {
    const r = train(['--model', 'rnn']);
    expect(r.status).not.toBe(0);
    expect(r.out).toMatch(/--model must be mlp or cnn[\s\S]*usage: npm run train/);
  });
});
