// `npm run finetune` (src/cli/finetune.ts) in a child process, as a user runs it, on a tiny GPT-2
// written here in Hugging Face's layout (model.safetensors with config.json beside it; GPT-2's
// full vocabulary, since the tokenizer is GPT-2's): the plan, the held-out loss before and after,
// the progress bar, a sample, the adapters alone in --out and the merged model in --merged-out.
// Then the refusals, all before a device starts: a checkpoint that is not GPT-2 (named what it
// lacks), a vocabulary smaller than the tokenizer's, a context past n_positions, missing options.

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gpu, wg } from '../helpers';

const repo = resolve(import.meta.dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'webgrad-finetune-'));
beforeAll(() => gpu({ backend: 'webgpu' }));
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  wg.shutdown();
});

/** A random GPT-2 in the HF layout, in its own directory with its config.json. */
async function writeGPT2(name: string, { vocab = 50257, context = 32, dim = 8, heads = 2 } = {}): Promise<string> {
  const d = join(dir, name);
  rmSync(d, { recursive: true, force: true });
  wg.manualSeed(5);
  const t: Record<string, wg.Tensor> = {};
  const r = (shape: number[]) => wg.randn(shape).mul(0.2);
  t['wte.weight'] = r([vocab, dim]);
  t['wpe.weight'] = r([context, dim]);
  const p = 'h.0.';
  t[`${p}ln_1.weight`] = wg.ones([dim]);
  t[`${p}ln_1.bias`] = wg.zeros([dim]);
  t[`${p}attn.c_attn.weight`] = r([dim, 3 * dim]);
  t[`${p}attn.c_attn.bias`] = wg.zeros([3 * dim]);
  t[`${p}attn.c_proj.weight`] = r([dim, dim]);
  t[`${p}attn.c_proj.bias`] = wg.zeros([dim]);
  t[`${p}ln_2.weight`] = wg.ones([dim]);
  t[`${p}ln_2.bias`] = wg.zeros([dim]);
  t[`${p}mlp.c_fc.weight`] = r([dim, 4 * dim]);
  t[`${p}mlp.c_fc.bias`] = wg.zeros([4 * dim]);
  t[`${p}mlp.c_proj.weight`] = r([4 * dim, dim]);
  t[`${p}mlp.c_proj.bias`] = wg.zeros([dim]);
  t['ln_f.weight'] = wg.ones([dim]);
  t['ln_f.bias'] = wg.zeros([dim]);
  const bytes = await wg.io.saveSafetensors(t, { format: 'pt' });
  Object.values(t).forEach((x) => x.dispose());
  mkdirSync(d);
  writeFileSync(join(d, 'model.safetensors'), bytes);
  writeFileSync(join(d, 'config.json'), JSON.stringify({ model_type: 'gpt2', n_head: heads, n_embd: dim, n_layer: 1, n_positions: context, vocab_size: vocab, activation_function: 'gelu_new' }));
  return join(d, 'model.safetensors');
}

function finetune(args: string[]): Promise<{ status: number | null; out: string }> {
  return new Promise((done) => {
    // Untimed kernel defaults: the autotuner's trials at GPT-2's vocabulary would take most of the run on SwiftShader.
    const child = spawn(process.execPath, ['scripts/run.mjs', 'src/cli/finetune.ts', ...args], { cwd: repo, env: { ...process.env, WEBGRAD_AUTOTUNE: '0' } });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('close', (status) => done({ status, out }));
  });
}

function expectRefused(r: { status: number | null; out: string }, message: RegExp): void {
  expect(r.status, r.out).toBe(1);
  expect(r.out).toMatch(message);
  expect(r.out).toMatch(/^error: .*\n[\s\S]*usage: npm run finetune/m);
  expect(r.out, 'a stack trace').not.toMatch(/\n\s+at /);
  expect(r.out, 'the device started').not.toMatch(/^backend: /m);
}

const words = 'the cat sat on the mat and the dog ran to the park while a bird sang'.split(' ');
const text = Array.from({ length: 1200 }, (_, i) => words[(i * 7 + (i >> 3)) % words.length]).join(' ');

describe('npm run finetune', () => {
  it('fine-tunes a GPT-2 checkpoint with LoRA: plan, held-out loss before and after, progress, a sample, the adapters and the merged model', async () => {
    const model = await writeGPT2('gpt2-tiny');
    const data = join(dir, 'text.txt');
    writeFileSync(data, text);
    const out = join(dir, 'lora.safetensors');
    const merged = join(dir, 'merged.safetensors');
    const r = await finetune(['--model', model, '--data', data, '--steps', '3', '--batch', '2', '--context', '8', '--lr', '3e-2', '--sample-tokens', '4', '--backend', 'webgpu', '--out', out, '--merged-out', merged]);
    expect(r.status, r.out).toBe(0);
    expect(r.out).toMatch(/^backend: WebGPU on .*features: /m);
    expect(r.out).toMatch(/model: GPT-2 of 1 blocks, 2 heads, n_embd 8, n_positions 32, vocabulary 50257 \(403,584 parameters\); LoRA rank 8, alpha 16 on 2 layers \(384 trainable, 0\.10%\); frozen weights in f32 \(no shader-f16 here\)/);
    expect(r.out).toMatch(/data: .*text\.txt, [\d,]+ training \/ [\d,]+ held-out tokens \(GPT-2 BPE\), context 8/);
    expect(r.out).toMatch(/^plan: the whole batch of 2 sequences of 8 tokens fits the budget: .*planned peak/m);
    const before = Number(/held-out loss before: ([\d.]+) nats\/token/.exec(r.out)?.[1]);
    const after = Number(/held-out loss after: ([\d.]+) nats\/token/.exec(r.out)?.[1]);
    // A random model over 50,257 tokens starts near ln 50257 = 10.8.
    expect(before).toBeGreaterThan(9);
    expect(before).toBeLessThan(12.5);
    expect(Number.isFinite(after)).toBe(true);
    expect(r.out).toMatch(/fine-tuning \[#+\.*\] +\d+%  loss [\d.]+/);
    expect(r.out).toMatch(/trained 3 steps in /);
    expect(r.out).toMatch(/sample \(temperature 0\.8, top-k 40\) after ".+":\n  \| /);
    expect(r.out).toMatch(/LoRA adapters: .*lora\.safetensors \(0\.0\d MiB\)/);

    // The adapters alone, with their optimizer state and the tokenizer; the base model untouched on disk.
    const adapters = new Uint8Array(readFileSync(out));
    const names = Object.keys(wg.io.readSafetensorsHeader(adapters).tensors).filter((n) => n.startsWith('model.'));
    expect(names.sort()).toEqual(['model.blocks.0.attn.inProj.lora.A', 'model.blocks.0.attn.inProj.lora.B', 'model.blocks.0.attn.outProj.lora.A', 'model.blocks.0.attn.outProj.lora.B']);
    expect(wg.io.readCheckpointProgress(adapters)).toMatchObject({ model: 'gpt2-lora', rank: 8, alpha: 16, steps: 3 });
    expect((await wg.io.readCheckpointTokenizer(adapters))?.toJSON()).toEqual({ kind: 'gpt2' });

    // They load into the base model wrapped the same way, which then computes what the merged file does.
    const bytes = new Uint8Array(readFileSync(model));
    const config = JSON.parse(readFileSync(join(dir, 'gpt2-tiny', 'config.json'), 'utf8'));
    const base = wg.models.gpt2.fromSafetensors(bytes, { config });
    wg.nn.lora(base, { rank: 8, alpha: 16 });
    wg.io.loadCheckpoint(adapters, { model: base });
    const mergedModel = wg.models.gpt2.fromSafetensors(new Uint8Array(readFileSync(merged)), { config });
    const ids = wg.tensor(Int32Array.from([464, 3797, 3332, 319, 262, 2603]), [1, 6], { dtype: 'int32' });
    const [a, b] = await Promise.all([wg.noGrad(() => base.forward(ids)).toArray(), wg.noGrad(() => mergedModel.forward(ids)).toArray()]);
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
    expect(worst).toBeLessThan(1e-4);
    for (const m of [base, mergedModel]) m.dispose();
    ids.dispose();
  });

  it('refuses, before a device starts: a checkpoint that is not GPT-2, a small vocabulary, a context past n_positions, missing options', async () => {
    const notGPT2 = join(dir, 'llama.safetensors');
    const t = { 'model.embed_tokens.weight': wg.zeros([4, 2]), 'model.norm.weight': wg.ones([2]) };
    writeFileSync(notGPT2, await wg.io.saveSafetensors(t));
    Object.values(t).forEach((x) => x.dispose());
    const small = await writeGPT2('small-vocab', { vocab: 100 });
    const tiny = await writeGPT2('gpt2-ctx', {});
    const data = join(dir, 'text2.txt');
    writeFileSync(data, text);
    const runs = await Promise.all([
      finetune(['--model', notGPT2, '--data', data]),
      finetune(['--model', small, '--data', data]),
      finetune(['--model', tiny, '--data', data, '--context', '64']),
      finetune(['--data', data]),
      finetune(['--model', tiny]),
      finetune(['--model', join(dir, 'missing.safetensors'), '--data', data]),
      finetune(['--model', tiny, '--data', data, '--lora-rank', '0']),
    ]);
    expectRefused(runs[0]!, /--model .*llama\.safetensors: .*not a GPT-2 checkpoint \(Hugging Face names\): it lacks wte\.weight, wpe\.weight, h\.0\.ln_1\.weight/);
    expectRefused(runs[1]!, /its vocabulary of 100 is smaller than GPT-2's tokenizer's 50257/);
    expectRefused(runs[2]!, /--context 64 is longer than the model's n_positions 32/);
    expectRefused(runs[3]!, /--model is required/);
    expectRefused(runs[4]!, /--data is required/);
    expectRefused(runs[5]!, /--model .*missing\.safetensors: /);
    expectRefused(runs[6]!, /--lora-rank must be a number from 1 to 1,024, got 0/);
  });
});
