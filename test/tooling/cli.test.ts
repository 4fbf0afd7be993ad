// The main job from the command line: `npm run train` (src/cli/train.ts) in a child process, as a
// user runs it. One short MLP epoch, then --resume for a second, then the errors a user meets:
// options checked before the GPU starts, printed as a message and the usage without a stack trace,
// the README's own checkpoint resumed, and a failed save that keeps the trained model.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkOut, parseOptions, readResume, saveModel, UsageError } from '../../src/cli/train';
import { readSafetensorsHeader } from '../../src/io/safetensors';
import { gpu, wg } from '../helpers';

const repo = resolve(import.meta.dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'webgrad-cli-'));
beforeAll(() => gpu());
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  wg.shutdown();
});

  /** Run the CLI with `args`; stdout and stderr together. `env`: changes to the environment (undefined removes a variable). */
  function train(args: string[], env: Record<string, string | undefined> = {}): { status: number | null; out: string } {
    const r = spawnSync(process.execPath, ['scripts/run.mjs', 'src/cli/train.ts', ...args], { cwd: repo, encoding: 'utf8', timeout: 300_000, env: { ...process.env, ...env } });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/** The same without blocking, so that several runs share the wait. */
function trainAsync(args: string[], env: Record<string, string> = {}): Promise<{ status: number | null; out: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, ['scripts/run.mjs', 'src/cli/train.ts', ...args], { cwd: repo, env: { ...process.env, ...env } });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('close', (status) => done({ status, out }));
  });
}

/** A checkpoint file written from this process (model and optimizer as given). */
async function checkpointFile(name: string, model: wg.nn.Module, optimizer: wg.optim.Optimizer, progress: Record<string, unknown>): Promise<string> {
  const path = join(dir, name);
  writeFileSync(path, await wg.io.saveCheckpoint({ model, optimizer, progress }));
  return path;
}

/** A refusal as a person should see it: the message, the usage, no stack trace, and the GPU never started. */
function expectRefused(r: { status: number | null; out: string }, message: RegExp): void {
  expect(r.status, r.out).toBe(1);
  expect(r.out).toMatch(message);
  expect(r.out).toMatch(/^error: .*\n[\s\S]*usage: npm run train/m);
  expect(r.out, 'a stack trace').not.toMatch(/\n\s+at /);
  expect(r.out, 'the device started').not.toMatch(/^backend: /m);
}

describe('npm run train', () => {
  it('trains an epoch with a progress bar and test accuracy, writes a checkpoint, and resumes from it (on the other backend)', () => {
    const out = join(dir, 'mlp.safetensors');
    // Batch 256: 32 steps an epoch, a few seconds on SwiftShader. Without $WEBGRAD_BACKEND, as a
    // user runs it: on this machine (no GPU; WebGPU's adapter is SwiftShader) it trains on the CPU.
    const first = train(['--epochs', '1', '--batch', '256', '--out', out], { WEBGRAD_BACKEND: undefined });
    expect(first.status, first.out).toBe(0);
    expect(first.out).toMatch(/^backend: CPU \(WebAssembly SIMD.*\d+ threads?.*\): WebGPU's adapter is a software fallback/m);
    expect(first.out).toMatch(/model: mlp, 203,530 parameters; sgd lr 0\.1 \(cosine decay\); batch 256/);
    expect(first.out).toMatch(/epoch 1\/1 \[#+\] 100%/);
    const accuracy = Number(/epoch 1\/1: train loss [\d.]+, test loss [\d.]+, test accuracy ([\d.]+)%/.exec(first.out)?.[1]);
    expect(accuracy, first.out).toBeGreaterThan(80);
    const bytes = new Uint8Array(readFileSync(out));
    expect(Object.keys(readSafetensorsHeader(bytes).tensors).length).toBeGreaterThan(4);
    expect(wg.io.readCheckpointProgress(bytes)).toMatchObject({ model: 'mlp', optimizer: 'sgd', epoch: 1, steps: 32 });

    const second = train(['--epochs', '2', '--batch', '256', '--out', out, '--resume', out, '--backend', 'webgpu']);
    expect(second.status, second.out).toBe(0);
    expect(second.out).toMatch(/^backend: WebGPU on .*: asked for/m);
    expect(second.out).toContain(`resumed from ${out} at epoch 1`);
    expect(second.out).not.toMatch(/epoch 1\/2/);
    expect(second.out).toMatch(/epoch 2\/2: train loss/);
    expect(wg.io.readCheckpointProgress(new Uint8Array(readFileSync(out)))).toMatchObject({ epoch: 2, steps: 64 });

    const wrongModel = train(['--model', 'cnn', '--resume', out, '--out', join(dir, 'cnn.safetensors')]);
    expect(wrongModel.status).not.toBe(0);
    expect(wrongModel.out).toContain(`--resume: ${out} holds a mlp model; pass --model mlp`);
  }, 300_000);

  it('refuses bad options before the GPU starts, with the message and the usage, never a stack trace', async () => {
    const missing = join(dir, 'no-such-dir', 'model.safetensors');
    const runs = await Promise.all([
      trainAsync(['--model', 'rnn']),
      trainAsync(['--batch', '-3']),
      trainAsync(['--lr', 'abc']),
      trainAsync(['--out', missing]),
      trainAsync(['--resume', dir]),
    ]);
    expectRefused(runs[0]!, /--model must be mlp, cnn or gpt, got rnn/);
    expectRefused(runs[1]!, /--batch must be a positive integer, got -3/);
    expectRefused(runs[2]!, /--lr must be a number ≥ 0, got abc/);
    expectRefused(runs[3]!, /--out .*: the directory .*no-such-dir does not exist \(create it first\)/);
    expectRefused(runs[4]!, /--resume .* is a directory; name a checkpoint file/);
  });

  it('checks every option and file', async () => {
    const refuse = (args: string[], message: RegExp) => {
      expect(() => parseOptions(args), args.join(' ')).toThrowError(UsageError);
      expect(() => parseOptions(args), args.join(' ')).toThrowError(message);
    };
    refuse(['--batch', '-3'], /^--batch must be a positive integer, got -3$/);
    refuse(['--batch', '2.5'], /--batch must be a positive integer, got 2\.5/);
    refuse(['--epochs', '0'], /--epochs must be a positive integer, got 0/);
    refuse(['--epochs', ''], /--epochs must be a positive integer, got $/);
    refuse(['--micro-batch', 'some'], /--micro-batch must be a positive integer, got some/);
    refuse(['--lr', 'abc'], /--lr must be a number ≥ 0, got abc/);
    refuse(['--lr', '-1e-3'], /--lr must be a number ≥ 0, got -1e-3/);
    refuse(['--lr', 'Infinity'], /--lr must be a number ≥ 0, got Infinity/);
    refuse(['--momentum', '-0.5'], /--momentum must be a number ≥ 0, got -0\.5/);
    refuse(['--seed', 'abc'], /--seed must be an integer, got abc/);
    refuse(['--seed', '1.5'], /--seed must be an integer, got 1\.5/);
    refuse(['--optimizer', 'lbfgs'], /--optimizer must be sgd or adam, got lbfgs/);
    refuse(['--schedule', 'step'], /--schedule must be cosine or constant, got step/);
    refuse(['--frobnicate'], /Unknown option '--frobnicate'/);
    refuse(['--backend', 'cuda'], /--backend must be auto, webgpu or wasm, got cuda/);
    refuse(['extra'], /Unexpected argument 'extra'/);
    refuse(['--out', ''], /--out must name a file/);
    expect(parseOptions(['--seed', '-7', '--lr', '0.5', '--optimizer', 'adam'])).toMatchObject({ seed: -7, lr: 0.5, optimizer: 'adam', batch: 64 });
    expect(parseOptions(['--help'])).toBeNull();

    expect(() => checkOut(dir)).toThrowError(/--out .* is a directory; name a file in it/);
    expect(() => checkOut(join(dir, 'missing', 'm.safetensors'))).toThrowError(/the directory .*missing does not exist/);
    expect(() => checkOut(join(dir, 'ok.safetensors'))).not.toThrow();

    const opts = { model: 'mlp', optimizer: 'sgd' } as const;
    expect(() => readResume(join(dir, 'nope.safetensors'), opts)).toThrowError(/--resume .*nope\.safetensors: no such file/);
    expect(() => readResume(dir, opts)).toThrowError(/--resume .* is a directory/);
    const junk = join(dir, 'junk.safetensors');
    writeFileSync(junk, 'not a checkpoint at all');
    expect(() => readResume(junk, opts)).toThrowError(/--resume .*junk\.safetensors: safetensors: /);
    wg.manualSeed(1);
    const model = wg.models.mnistMLP();
    const optimizer = new wg.optim.SGD(model.parameters(), { lr: 0.1 });
    const minus = await checkpointFile('minus.safetensors', model, optimizer, { model: 'mlp', epoch: -3 });
    expect(() => readResume(minus, opts)).toThrowError(/--resume .*minus\.safetensors: its progress says epoch -3; expected a count/);
    const steps = await checkpointFile('steps.safetensors', model, optimizer, { model: 'mlp', epoch: 1, steps: 'many' });
    expect(() => readResume(steps, opts)).toThrowError(/its progress says steps "many"/);
    const adam = await checkpointFile('adam.safetensors', model, optimizer, { model: 'mlp', optimizer: 'adam', epoch: 1 });
    expect(() => readResume(adam, opts)).toThrowError(/--resume: .* was trained with adam; pass --optimizer adam/);
    model.dispose();
    optimizer.dispose();
  });

  it("resumes a checkpoint saved as the README shows (mnistCNN + Adam, progress { epoch: 3 })", async () => {
    wg.manualSeed(1);
    const model = wg.models.mnistCNN();
    const optimizer = new wg.optim.Adam(model.parameters(), { lr: 1e-3 });
    const file = await checkpointFile('readme.safetensors', model, optimizer, { epoch: 3 });
    model.dispose();
    optimizer.dispose();
    const out = join(dir, 'readme-out.safetensors');
    const [resumed, wrongModel] = await Promise.all([
      // --epochs 3: resumed at epoch 3, nothing left to train (a CNN epoch takes a minute here).
      trainAsync(['--resume', file, '--model', 'cnn', '--optimizer', 'adam', '--epochs', '3', '--out', out]),
      trainAsync(['--resume', file, '--model', 'mlp', '--out', out]),
    ]);
    expect(resumed.status, resumed.out).toBe(0);
    expect(resumed.out).toContain(`resumed from ${file} at epoch 3`);
    expect(resumed.out).toMatch(/model: cnn, [\d,]+ parameters; adam lr 0\.001/);
    expect(wrongModel.status).toBe(1);
    expect(wrongModel.out).toMatch(/^error: --resume .*readme\.safetensors does not fit --model mlp --optimizer sgd: /m);
    expect(wrongModel.out).not.toMatch(/\n\s+at /);
  });
});

describe('npm run train -- --model gpt', () => {
  // Tiny runs: kernels at their defaults (no timing of candidates, which compiles more pipelines).
  const env = { WEBGRAD_AUTOTUNE: '0' };
  const tiny = ['--model', 'gpt', '--data', 'names', '--layers', '1', '--heads', '2', '--dim', '16', '--context', '16', '--batch', '8', '--sample-every', '2'];

  it('trains with a progress bar, the held-out loss beside the bigram baseline and samples; the checkpoint keeps the tokenizer; --resume continues (on the other backend)', async () => {
    const out = join(dir, 'gpt.safetensors');
    // Without $WEBGRAD_BACKEND, as a user runs it: the CPU backend on this machine (as for MNIST).
    const first = train([...tiny, '--steps', '4', '--out', out], { ...env, WEBGRAD_BACKEND: undefined });
    expect(first.status, first.out).toBe(0);
    expect(first.out).toMatch(/^backend: CPU \(WebAssembly SIMD.*\): WebGPU's adapter is a software fallback/m);
    expect(first.out).toMatch(/model: gpt, 4,016 parameters \(1 layers, 2 heads, dim 16, context 16\); AdamW lr 0\.003/);
    expect(first.out).toMatch(/plan: the whole batch of 8 sequences of 16 tokens fits the budget/);
    expect(first.out).toMatch(/data: names, 53,250 training \/ 5,917 held-out characters, vocabulary 28/);
    expect(first.out).toMatch(/bigram baseline \(held-out\): 2\.433 nats\/char \(3\.509 bits\/char\)/);
    expect(first.out).toMatch(/steps 1–2\/4 \[#+\] 100%/);
    expect(first.out).toMatch(/step 2\/4: train loss [\d.]+, held-out loss [\d.]+ nats\/char \(bigram 2\.43\d/);
    expect(first.out).toMatch(/step 4\/4: train loss/);
    expect(first.out).toMatch(/sample \(temperature 0\.8\) after "[^"]*":\n  \| /);
    expect(first.out).toMatch(/held-out loss \(all 5,904 held-out characters\): [\d.]+ nats\/char \([\d.]+ bits\/char\), bigram baseline 2\.433: [\d.]+ nats\/char (better|worse)/);
    expect(first.out).toMatch(/time: [\d:]+ for 4 steps/);
    const bytes = new Uint8Array(readFileSync(out));
    expect(wg.io.readCheckpointProgress(bytes)).toMatchObject({ model: 'gpt', data: 'names', layers: 1, heads: 2, dim: 16, context: 16, steps: 4 });
    const tokenizer = (await wg.io.readCheckpointTokenizer(bytes))!;
    expect(tokenizer.vocabSize).toBe(28);
    expect(tokenizer.decode(tokenizer.encode('anna\n'))).toBe('anna\n');

    const [second, otherDim, otherData] = await Promise.all([
      trainAsync([...tiny, '--steps', '6', '--out', out, '--resume', out, '--backend', 'webgpu'], env),
      trainAsync([...tiny, '--dim', '32', '--resume', out, '--out', join(dir, 'x.safetensors')]),
      trainAsync([...tiny, '--data', 'moby-dick', '--resume', out, '--out', join(dir, 'x.safetensors')]),
    ]);
    expect(second.status, second.out).toBe(0);
    expect(second.out).toMatch(/^backend: WebGPU on .*: asked for/m);
    expect(second.out).toContain(`resumed from ${out} at step 4`);
    expect(second.out).not.toMatch(/step 2\/6/);
    expect(second.out).toMatch(/step 6\/6: train loss/);
    expect(wg.io.readCheckpointProgress(new Uint8Array(readFileSync(out)))).toMatchObject({ steps: 6 });
    expectRefused(otherDim, /--resume: .* holds a GPT of --layers 1 --heads 2 --dim 16 --context 16; pass those/);
    expectRefused(otherData, /--resume: .* was trained on --data names; pass that/);
  }, 900_000);

  it('trains on a text file; refuses options of the other kind, bad sizes and unreadable or short texts before the GPU starts', async () => {
    const text = join(dir, 'poem.txt');
    writeFileSync(text, 'so much depends\nupon\na red wheel\nbarrow\nglazed with rain\nwater\nbeside the white\nchickens\n'.repeat(12));
    const short = join(dir, 'short.txt');
    writeFileSync(short, 'too short');
    const runs = await Promise.all([
      trainAsync(['--model', 'gpt', '--data', text, '--layers', '1', '--heads', '1', '--dim', '8', '--context', '8', '--steps', '2', '--sample-every', '2', '--batch', '4', '--out', join(dir, 'poem.safetensors')], env),
      trainAsync(['--model', 'gpt', '--epochs', '3']),
      trainAsync(['--steps', '3']),
      trainAsync(['--model', 'gpt', '--dim', '30', '--heads', '4']),
      trainAsync(['--model', 'gpt', '--data', join(dir, 'missing.txt')]),
      trainAsync(['--model', 'gpt', '--data', short]),
      trainAsync(['--model', 'gpt', '--layers', '0']),
      trainAsync(['--model', 'gpt', '--backend', 'cuda']),
    ]);
    expect(runs[0]!.status, runs[0]!.out).toBe(0);
    expect(runs[0]!.out).toMatch(/data: .*poem\.txt, [\d,]+ training \/ [\d,]+ held-out characters, vocabulary 2\d/);
    expect(runs[0]!.out).toMatch(/held-out loss \(all [\d,]+ held-out characters\)/);
    expectRefused(runs[1]!, /--epochs is for the MNIST models; a GPT trains for --steps/);
    expectRefused(runs[2]!, /--steps is for --model gpt/);
    expectRefused(runs[3]!, /--dim 30 must be a multiple of --heads 4/);
    expectRefused(runs[4]!, /--data .*missing\.txt: no such file \(--data takes moby-dick, names or a text file\)/);
    expectRefused(runs[5]!, /--data .*short\.txt: wg\.data\.textFromString: the training split has \d+ tokens/);
    expectRefused(runs[6]!, /--layers must be a positive integer, got 0/);
    expectRefused(runs[7]!, /--backend must be auto, webgpu or wasm, got cuda/);
  }, 600_000);
});

describe('a failed save keeps the trained model', () => {
  const bytes = new Uint8Array([1, 2, 3, 4]);

  it('a full disk: the partial .tmp is removed and the checkpoint goes beside --out', () => {
    const d = mkdtempSync(join(dir, 'full-'));
    const out = join(d, 'model.safetensors');
    symlinkSync('/dev/full', `${out}.tmp`); // writing there fails with ENOSPC, as on a full disk
    const saved = saveModel(out, bytes);
    expect(saved.failures).toEqual([expect.stringMatching(/model\.safetensors: ENOSPC/)]);
    expect(saved.path).toMatch(/model\.rescued-[\dTZ-]+\.safetensors$/);
    expect(existsSync(`${out}.tmp`), 'the partial .tmp').toBe(false);
    expect(existsSync(out)).toBe(false);
    expect(Array.from(readFileSync(saved.path!))).toEqual([1, 2, 3, 4]);
    expect(readdirSync(d).sort()).toEqual([saved.path!.split('/').pop()]);
  });

  it('--out turned into a directory: the rename fails, the .tmp is removed, the checkpoint goes beside', () => {
    const d = mkdtempSync(join(dir, 'isdir-'));
    const out = join(d, 'model.safetensors');
    mkdirSync(out);
    writeFileSync(join(out, 'keep'), '');
    const saved = saveModel(out, bytes);
    expect(saved.failures).toEqual([expect.stringMatching(/model\.safetensors: (EISDIR|ENOTEMPTY|EEXIST)/)]);
    expect(saved.path!.startsWith(d)).toBe(true);
    expect(readdirSync(d).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('the directory gone: the checkpoint goes to the temp directory; nowhere to write: path null, every place named', () => {
    const d = mkdtempSync(join(dir, 'gone-'));
    const spare = mkdtempSync(join(dir, 'tmp-'));
    const out = join(d, 'model.safetensors');
    rmSync(d, { recursive: true });
    const before = process.env.TMPDIR;
    try {
      process.env.TMPDIR = spare;
      const saved = saveModel(out, bytes);
      expect(saved.failures).toHaveLength(2);
      expect(saved.path!.startsWith(spare)).toBe(true);
      process.env.TMPDIR = join(dir, 'no-such-tmp');
      const none = saveModel(out, bytes);
      expect(none.path).toBeNull();
      expect(none.failures).toEqual([
        expect.stringMatching(/model\.safetensors: ENOENT/),
        expect.stringMatching(/model\.rescued-.*: ENOENT/),
        expect.stringMatching(/no-such-tmp.*: ENOENT/),
      ]);
    } finally {
      if (before === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = before;
    }
  });

  it('npm run train on a full disk says where the trained model is, and exits with 1', async () => {
    const d = mkdtempSync(join(dir, 'cli-full-'));
    const out = join(d, 'model.safetensors');
    symlinkSync('/dev/full', `${out}.tmp`);
    const r = await trainAsync(['--epochs', '1', '--batch', '256', '--out', out]);
    expect(r.status, r.out).toBe(1);
    expect(r.out).toMatch(/epoch 1\/1: train loss/);
    expect(r.out).toMatch(/error: could not write the checkpoint of epoch 1:\n  .*model\.safetensors: ENOSPC[^\n]*\nit is in (.*model\.rescued-.*\.safetensors)/);
    const rescued = /it is in (.*)/.exec(r.out)![1]!;
    expect(wg.io.readCheckpointProgress(new Uint8Array(readFileSync(rescued)))).toMatchObject({ model: 'mlp', epoch: 1 });
    expect(r.out).toContain(`checkpoint: ${rescued} (not ${out}: see above)`);
    expect(existsSync(`${out}.tmp`)).toBe(false);
  }, 200_000);
});
