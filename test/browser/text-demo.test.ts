// The demo page's Text mode in headless Chromium. On the CPU backend (?backend=wasm: here faster
// than SwiftShader, and with no kernels to compile or tune), switched to from the Digits mode, it
// trains a tiny GPT on the first names in its Worker: the loss falls, held-out checks land beside
// the bigram baseline, samples stream in while it trains and on demand from a typed prompt; the
// checkpoint downloads with its tokenizer and comes back, curves and all, after a reload (from
// IndexedDB) and from the file. On WebGPU (SwiftShader) it says what it does before the first
// step (compiling the step's kernels, counted) and trains. And it fits a phone's screen. Kept
// short: a tiny model, a few dozen steps (SwiftShader's kernel tuning, 30 s and more after the
// first step, is cut short by Pause). A GPT-2 model.safetensors (a tiny random one in Hugging
// Face's layout) fine-tunes with LoRA. Also, in Node: what the page accepts of a checkpoint file.

import { mkdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Page } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { describeTextFile, validHistory } from '../../demo/text-model';
import { readSafetensorsHeader } from '../../src/io/safetensors';
import { collectErrors, useBrowser } from './harness';

const artifacts = resolve(import.meta.dirname, '../..', 'test-results');
/** Steps before judging the loss: past the warm-up, the unigram plateau and a few held-out checks (every 25 steps). */
const STEPS = 100;

const session = useBrowser();

beforeAll(() => {
  mkdirSync(artifacts, { recursive: true });
});

const text = async (page: Page, id: string): Promise<string> => (await page.textContent(`#${id}`)) ?? '';
const numberIn = async (page: Page, id: string): Promise<number> => parseFloat((await text(page, id)).replace(/,/g, ''));
const waitForState = (page: Page, state: string, timeout = 60_000) => page.waitForSelector(`#text-status[data-state="${state}"]`, { timeout });

/** What the status line said, and the step then (recorded in the page). */
const recordStatus = (page: Page) =>
  page.evaluate(() => {
    const said: { text: string; step: number; progress: number | null }[] = ((window as unknown as { said: unknown[] }).said = []) as never;
    const status = document.getElementById('text-status')!;
    const bar = document.getElementById('text-status-progress') as HTMLProgressElement;
    new MutationObserver(() =>
      said.push({ text: status.textContent ?? '', step: Number(document.getElementById('text-step')!.textContent), progress: bar.hidden ? null : bar.value }),
    ).observe(status, { childList: true, characterData: true, subtree: true });
  });
const statusLog = (page: Page) => page.evaluate(() => (window as unknown as { said: { text: string; step: number; progress: number | null }[] }).said);

const samples = (page: Page) =>
  page.$$eval('#text-samples li', (lis) =>
    lis.map((li) => ({
      state: (li as HTMLElement).dataset.state,
      head: li.querySelector('p')!.textContent ?? '',
      prompt: li.querySelector('.prompt')!.textContent ?? '',
      written: li.querySelector('.written')!.textContent ?? '',
    })),
  );

const shownHistory = async (page: Page) => ({
  lossPoints: Number(await page.getAttribute('#text-loss-chart', 'data-points')),
  heldOutPoints: Number(await page.getAttribute('#text-loss-chart', 'data-held-out-points')),
  speedPoints: Number(await page.getAttribute('#text-speed-chart', 'data-points')),
  loss: await text(page, 'text-loss'),
  heldOut: await text(page, 'text-held-out'),
  step: await text(page, 'text-step'),
});

describe('the demo page in Text mode', () => {
  it('trains a GPT on names (CPU backend): the loss falls, samples stream in, the checkpoint saves and comes back', async () => {
    const context = await session.browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 1100 } });
    const page = await context.newPage();
    const errors = collectErrors(page);
    await page.goto(`${session.url}/demo/?backend=wasm`);
    await page.click('#mode-text');
    expect(page.url()).toMatch(/[?&]mode=text/);
    expect(await page.isHidden('#draw-card')).toBe(true);
    await waitForState(page, 'ready');
    expect(await text(page, 'text-data')).toMatch(/^Moby Dick: [\d,]+ characters to train on/);

    // The names, the tiny model, small batches: a new model for each choice before training.
    await page.selectOption('#text-source', 'names');
    await expect.poll(() => text(page, 'text-data')).toMatch(/^8,422 first names: /);
    await page.selectOption('#text-size', 'tiny');
    await expect.poll(() => text(page, 'text-model-note')).toMatch(/^New model: GPT of 1 layer, 2 heads, width 32, context 32 \([\d,]+ parameters\) on 8,422 first names\.$/);
    await waitForState(page, 'ready');
    await page.selectOption('#text-batch-size', '32');
    expect(await text(page, 'text-plan')).toMatch(/whole batch of 16 sequences|micro-batches/);
    const bigram = parseFloat((await text(page, 'text-held-out-detail')).match(/bigram baseline: ([\d.]+)/)![1]!);
    expect(bigram).toBeGreaterThan(1.5);
    expect(bigram).toBeLessThan(Math.log(28));

    const started = Date.now();
    await page.click('#text-train');
    await page.waitForFunction(
      (n) => Number(document.getElementById('text-step')!.textContent) >= n && document.querySelector('#text-samples li[data-state="done"]') !== null,
      STEPS,
      { timeout: 60_000 },
    );
    const trainedFor = Date.now() - started;
    // Pause stops after the step under way (on the CPU a step never yields to the worker's event
    // loop by itself: the training loop must let the message in). The step shown when the button
    // was pressed is recorded in the page.
    await page.evaluate(() =>
      document.getElementById('text-pause')!.addEventListener('click', () => {
        (window as unknown as { pausedAt: number }).pausedAt = Number(document.getElementById('text-step')!.textContent);
      }),
    );
    await page.click('#text-pause');
    await waitForState(page, 'paused');
    const pausedAt = await page.evaluate(() => (window as unknown as { pausedAt: number }).pausedAt);
    expect(Number(await text(page, 'text-step')) - pausedAt).toBeLessThanOrEqual(2);

    // The loss fell from about ln 28 (a model that knows nothing of 28 characters).
    const start = parseFloat((await text(page, 'text-loss-start')).match(/started at ([\d.]+)/)![1]!);
    expect(start).toBeGreaterThan(3);
    expect(await numberIn(page, 'text-loss')).toBeLessThan(start - 0.4);
    expect(await text(page, 'text-speed')).toMatch(/\d tokens\/s/);
    expect(await text(page, 'text-memory')).toMatch(/in use/);
    expect(await text(page, 'text-plan')).toMatch(/whole batch of 32 sequences|micro-batches/);
    // Held-out checks: at step 25 and where it paused, below the 28-character guess.
    const held = await shownHistory(page);
    expect(held.heldOutPoints).toBeGreaterThanOrEqual(2);
    expect(await numberIn(page, 'text-held-out')).toBeLessThan(Math.log(28) - 0.4);
    expect(held.lossPoints).toBe(Number(held.step));
    expect(held.speedPoints).toBe(Number(held.step));

    // A sample streamed in while it trained: the names' new line as the prompt, then 200 characters of the names' alphabet.
    const periodic = (await samples(page)).find((s) => s.state === 'done')!;
    expect(periodic.head).toMatch(/^Written at step \d+, temperature 0.8$/);
    expect(periodic.prompt).toBe('\n');
    expect(periodic.written).toMatch(/^[a-z\n' -]{200}$/);

    // On demand, from a typed prompt, greedy (temperature 0): it starts with the prompt, and twice gives the same.
    await page.fill('#text-temperature', '0');
    await page.fill('#text-prompt', 'mar');
    await page.click('#text-generate');
    await page.waitForFunction(() => {
      const li = document.querySelector('#text-samples li');
      return li?.querySelector('p')?.textContent?.startsWith('Asked for') && (li as HTMLElement).dataset.state === 'done';
    });
    const [asked] = await samples(page);
    expect(asked!.head).toMatch(/^Asked for at step \d+, temperature 0$/);
    expect(asked!.prompt).toBe('mar');
    expect(asked!.written).toMatch(/^[a-z\n' -]{200}$/);
    await page.click('#text-generate');
    await page.waitForFunction(() => document.querySelectorAll('#text-samples li[data-state="done"]').length >= 3 && (document.querySelector('#text-samples li') as HTMLElement).dataset.state === 'done');
    expect((await samples(page))[0]!.written).toBe(asked!.written);
    // A character the names never use is refused, naming it.
    await page.fill('#text-prompt', 'Ω');
    await page.click('#text-generate');
    await expect.poll(() => text(page, 'text-error')).toBe('That prompt cannot be used: it has "Ω", which the model has never seen: it knows only the 28 characters of its text');
    await page.screenshot({ path: resolve(artifacts, 'text-demo.png'), fullPage: true });

    // Download: a GPT checkpoint with its tokenizer and the command line's progress fields.
    const steps = Number(await text(page, 'text-step'));
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#text-download')]);
    expect(download.suggestedFilename()).toBe(`webgrad-gpt-names-tiny-step${steps}.safetensors`);
    const file = resolve(artifacts, download.suggestedFilename());
    await download.saveAs(file);
    const header = readSafetensorsHeader(new Uint8Array(readFileSync(file)));
    expect(header.tensors['model.wte.weight']).toMatchObject({ dtype: 'F32', shape: [28, 32] });
    const meta = JSON.parse(header.metadata['webgrad.checkpoint']!);
    expect(meta.progress).toMatchObject({ model: 'gpt', data: 'names', layers: 1, heads: 2, dim: 32, context: 32, steps });
    expect(meta.tokenizer.kind).toBe('char');

    // A reload continues the model kept in IndexedDB, in Text mode, its curves and readouts as they were.
    const before = await shownHistory(page);
    await page.reload();
    await waitForState(page, 'paused');
    expect(await text(page, 'text-model-note')).toMatch(/^Restored model from .+: GPT of 1 layer.*first names, \d+ steps trained\.$/);
    await expect.poll(() => shownHistory(page)).toEqual(before);
    expect(await page.isDisabled('#text-size')).toBe(true);

    // Loading the downloaded file brings the same back.
    await page.setInputFiles('#text-load', file);
    await expect.poll(() => text(page, 'text-model-note')).toMatch(new RegExp(`^Loaded webgrad-gpt-names-tiny-step${steps}\\.safetensors: GPT`));
    await expect.poll(() => shownHistory(page)).toEqual(before);

    // Reset while a sample is being written: the new model takes over once the piece under way is done; the old samples go.
    await page.fill('#text-temperature', '0.8');
    await page.click('#text-generate');
    await page.click('#text-reset');
    await expect.poll(() => text(page, 'text-model-note')).toMatch(/^New model: GPT of 1 layer/);
    await waitForState(page, 'ready');
    expect(await text(page, 'text-step')).toBe('0');
    expect(await page.isDisabled('#text-size')).toBe(false);
    expect(await page.$$('#text-samples li')).toHaveLength(0);

    console.log(`text mode, CPU backend: step ${STEPS} and a whole sample ${(trainedFor / 1000).toFixed(1)} s after Train`);
    expect(errors, errors.join('\n')).toEqual([]);
    await context.close();
  }, 60_000);

  it('on WebGPU, counts the kernels it compiles before the first step, then trains', async () => {
    const page = await session.browser.newPage({ viewport: { width: 1280, height: 1100 } });
    const errors = collectErrors(page);
    await page.goto(`${session.url}/demo/?mode=text&backend=webgpu`);
    await waitForState(page, 'ready');
    expect(await page.textContent('#device-card h2')).toBe('Your GPU');
    await page.selectOption('#text-source', 'names');
    await expect.poll(() => text(page, 'text-data')).toMatch(/first names/);
    await page.selectOption('#text-size', 'tiny');
    await expect.poll(() => text(page, 'text-model-note')).toMatch(/GPT of 1 layer/);
    await waitForState(page, 'ready');
    await page.selectOption('#text-batch-size', '8');
    await recordStatus(page);
    await page.click('#text-train');
    // The first step, and the first piece of a sample after it.
    await page.waitForFunction(() => Number(document.getElementById('text-step')!.textContent) >= 1 && document.querySelector('#text-samples .written')?.textContent !== '', null, {
      timeout: 60_000,
    });
    await page.click('#text-pause');
    await waitForState(page, 'paused');
    const said = await statusLog(page);
    const compiling = said.filter((s) => /^Compiling GPU kernels for this model: \d+\/\d+…$/.test(s.text));
    expect(compiling.length, said.map((s) => s.text).join('\n')).toBeGreaterThan(1);
    const [, done, total] = compiling.at(-1)!.text.match(/(\d+)\/(\d+)/)!.map(Number);
    expect(done).toBe(total);
    expect(compiling.every((s) => s.step === 0 && s.progress !== null && s.progress >= 0 && s.progress <= 1)).toBe(true);
    // A first loss near ln 28, and a held-out check where it paused.
    expect(Math.abs((await numberIn(page, 'text-loss')) - Math.log(28))).toBeLessThan(0.5);
    expect(await numberIn(page, 'text-held-out')).toBeGreaterThan(0);
    expect(errors, errors.join('\n')).toEqual([]);
    await page.close();
  }, 60_000);

  it('fits a phone screen (390×844) in Text mode', async () => {
    const page = await session.browser.newPage({ viewport: { width: 390, height: 844 } });
    const errors = collectErrors(page);
    await page.goto(`${session.url}/demo/?mode=text&backend=wasm`);
    await waitForState(page, 'ready');
    await page.selectOption('#text-source', 'pasted');
    expect(await page.isVisible('#text-pasted')).toBe(true);
    // The model in place is Moby Dick's: Train waits for a pasted text to be used.
    expect(await page.isDisabled('#text-train')).toBe(true);
    expect(await text(page, 'text-controls-hint')).toMatch(/Use this text/);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    const layout = await page.evaluate(() => {
      const ctx = document.createElement('canvas').getContext('2d')!;
      const box = (e: Element) => e.getBoundingClientRect();
      const shown = (e: Element) => e.getClientRects().length > 0;
      return {
        // Every control inside its card.
        outside: [...document.querySelectorAll('#app .card')].flatMap((card) =>
          [...card.querySelectorAll('input:not([type=file]), select, button, textarea, canvas')]
            .filter(shown)
            .filter((e) => box(e).left < box(card).left || box(e).right > box(card).right + 0.5)
            .map((e) => `${card.id}: ${e.outerHTML.slice(0, 80)}`),
        ),
        // The chosen option's text fits its select (with room for the arrow).
        cut: [...document.querySelectorAll('select')].filter(shown).flatMap((s) => {
          const style = getComputedStyle(s);
          ctx.font = style.font;
          const room = s.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight) - 20;
          const text = s.selectedOptions[0]?.text ?? '';
          return ctx.measureText(text).width > room ? [`${s.id}: "${text}" in ${s.clientWidth}px`] : [];
        }),
        // The Digits mode's cards are hidden, the Text mode's shown.
        cards: [...document.querySelectorAll('#app .card')].filter(shown).map((c) => c.id),
      };
    });
    expect(layout.outside).toEqual([]);
    expect(layout.cut).toEqual([]);
    expect(layout.cards).toEqual(['text-training-card', 'text-charts-card', 'text-sample-card', 'device-card', 'text-model-card']);
    await page.screenshot({ path: resolve(artifacts, 'text-demo-phone.png'), fullPage: true });

    // A pasted text: too short for one window is refused, saying so; a longer one gets a model.
    await page.fill('#text-pasted', 'Too short.');
    await page.click('#text-use');
    await expect.poll(() => text(page, 'text-error')).toMatch(/^Could not use that text: the pasted text is too short for this model \(10 characters\)/);
    await page.fill('#text-pasted', 'The quick brown fox jumps over the lazy dog. '.repeat(40));
    await page.click('#text-use');
    await expect.poll(() => text(page, 'text-model-note')).toMatch(/^New model: GPT of 2 layers.* on your text\.$/);
    expect(await text(page, 'text-data')).toMatch(/^your text: 1,620 characters to train on, 180 held out; 29 distinct characters$/);
    await waitForState(page, 'ready');
    expect(await page.isDisabled('#text-train')).toBe(false);
    expect(errors, errors.join('\n')).toEqual([]);
    await page.close();
  });
});

/**
 * A GPT-2 model.safetensors in Hugging Face's layout (GPT2Model's names, Conv1D weights [in, out]),
 * tiny and random: 2 blocks of width 64 (one 64-wide head), 16 positions, GPT-2's 50,257 tokens.
 */
function tinyGpt2(): Buffer {
  const d = 64;
  const shapes: Record<string, number[]> = { 'wte.weight': [50257, d], 'wpe.weight': [16, d], 'ln_f.weight': [d], 'ln_f.bias': [d] };
  for (let n = 0; n < 2; n++) {
    Object.assign(shapes, {
      [`h.${n}.ln_1.weight`]: [d], [`h.${n}.ln_1.bias`]: [d],
      [`h.${n}.attn.c_attn.weight`]: [d, 3 * d], [`h.${n}.attn.c_attn.bias`]: [3 * d],
      [`h.${n}.attn.c_proj.weight`]: [d, d], [`h.${n}.attn.c_proj.bias`]: [d],
      [`h.${n}.ln_2.weight`]: [d], [`h.${n}.ln_2.bias`]: [d],
      [`h.${n}.mlp.c_fc.weight`]: [d, 4 * d], [`h.${n}.mlp.c_fc.bias`]: [4 * d],
      [`h.${n}.mlp.c_proj.weight`]: [4 * d, d], [`h.${n}.mlp.c_proj.bias`]: [d],
    });
  }
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const [name, shape] of Object.entries(shapes)) {
    const bytes = 4 * shape.reduce((a, b) => a * b, 1);
    header[name] = { dtype: 'F32', shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = Buffer.from(JSON.stringify(header));
  const out = Buffer.alloc(8 + json.length + offset);
  out.writeBigUInt64LE(BigInt(json.length), 0);
  json.copy(out, 8);
  const values = new Float32Array(out.buffer, out.byteOffset + 8 + json.length, offset / 4);
  let seed = 1;
  const uniform = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  let i = 0;
  for (const [name, shape] of Object.entries(shapes)) {
    const n = shape.reduce((a, b) => a * b, 1);
    // LayerNorm weights 1, biases 0, the rest small and random (about GPT-2's 0.02).
    for (let k = 0; k < n; k++) values[i + k] = /ln_.*weight/.test(name) ? 1 : name.endsWith('bias') ? 0 : 0.035 * uniform();
    i += n;
  }
  return out;
}

describe('the demo page in Text mode, fine-tuning GPT-2', () => {
  it('fine-tunes a GPT-2 model.safetensors with LoRA (a tiny random one) on the names, on the CPU backend', async () => {
    const page = await session.browser.newPage({ viewport: { width: 1280, height: 1100 } });
    const errors = collectErrors(page);
    await page.goto(`${session.url}/demo/?mode=text&backend=wasm`);
    await waitForState(page, 'ready');
    await page.selectOption('#text-source', 'names');
    await expect.poll(() => text(page, 'text-data')).toMatch(/first names/);
    await waitForState(page, 'ready');
    // A file that is not GPT-2 is refused, naming what it lacks; the model in place stays.
    await page.setInputFiles('#text-gpt2', { name: 'other.safetensors', mimeType: 'application/octet-stream', buffer: Buffer.from(tinyGpt2().subarray(0, 0)) });
    await expect.poll(() => text(page, 'text-error')).toMatch(/^other\.safetensors is not a GPT-2 model\.safetensors/);
    await page.setInputFiles('#text-gpt2', { name: 'model.safetensors', mimeType: 'application/octet-stream', buffer: tinyGpt2() });
    await expect.poll(() => text(page, 'text-model-note'), { timeout: 60_000 }).toMatch(
      /^Fine-tuning GPT-2 from model\.safetensors: 2 blocks, 1 head, width 64, context 16 \(3,323,712 parameters\), LoRA rank 8 on 4 layers: 6,144 trainable \(0\.\d+%\), the rest frozen; on 8,422 first names\.$/,
    );
    await waitForState(page, 'ready');
    expect(await text(page, 'text-data')).toMatch(/^8,422 first names: [\d,]+ tokens to train on, [\d,]+ held out; GPT-2's 50,257 tokens$/);
    expect(await page.inputValue('#text-lr')).toBe('0.001');
    expect(await text(page, 'text-plan')).toMatch(/whole batch of 8 sequences|micro-batches/);
    expect(await text(page, 'text-stored-note')).toMatch(/^Not kept in this browser/);
    await page.selectOption('#text-batch-size', '4'); // 50,257 logits per token are slow on the CPU
    await page.fill('#text-lr', '0.01'); // random weights: larger steps than a pretrained model wants, to see the loss move in a few

    await page.click('#text-train');
    await page.waitForFunction(() => Number(document.getElementById('text-step')!.textContent) >= 20 && document.querySelector('#text-samples .written')?.textContent !== '', null, {
      timeout: 60_000,
    });
    await page.click('#text-pause');
    await waitForState(page, 'paused');
    // A random model knows nothing of 50,257 tokens (ln 50257 = 10.8); the adapters learn some of the names.
    const start = parseFloat((await text(page, 'text-loss-start')).match(/started at ([\d.]+)/)![1]!);
    expect(Math.abs(start - Math.log(50257))).toBeLessThan(0.5);
    expect(await numberIn(page, 'text-loss')).toBeLessThan(start - 0.1);
    expect(await text(page, 'text-loss-start')).toMatch(/^nats\/token/);

    // The adapters download alone, as `npm run finetune --out` writes them.
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#text-download')]);
    const file = resolve(artifacts, download.suggestedFilename());
    await download.saveAs(file);
    const header = readSafetensorsHeader(new Uint8Array(readFileSync(file)));
    const names = Object.keys(header.tensors).filter((n) => n.startsWith('model.'));
    expect(names.length).toBe(8);
    expect(names.every((n) => /^model\.blocks\.[01]\.attn\.(inProj|outProj)\.lora\.[AB]$/.test(n))).toBe(true);
    expect(JSON.parse(header.metadata['webgrad.checkpoint']!).progress).toMatchObject({ model: 'gpt2-lora', base: 'model.safetensors', rank: 8, alpha: 16 });
    // The adapters file is refused by Load, saying why.
    await page.setInputFiles('#text-load', file);
    await expect.poll(() => text(page, 'text-error')).toMatch(/holds LoRA adapters of a GPT-2, not a whole model/);
    expect(errors, errors.join('\n')).toEqual([]);
    await page.close();
  }, 90_000);
});

describe('Text mode checkpoints, read before any model is built', () => {
  /** A safetensors file of zero-filled f32 tensors with webgrad checkpoint metadata. */
  const file = (tensors: Record<string, number[]>, meta: object): Uint8Array => {
    const header: Record<string, unknown> = { __metadata__: { 'webgrad.checkpoint': JSON.stringify(meta) } };
    let offset = 0;
    for (const [name, shape] of Object.entries(tensors)) {
      const bytes = 4 * shape.reduce((a, b) => a * b, 1);
      header[name] = { dtype: 'F32', shape, data_offsets: [offset, offset + bytes] };
      offset += bytes;
    }
    const json = new TextEncoder().encode(JSON.stringify(header));
    const out = new Uint8Array(8 + json.length + offset);
    new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
    out.set(json, 8);
    return out;
  };
  const chars = [...'\nabcdefghijklmnopqrstuvwxyz'];
  const tiny = { 'model.wte.weight': [27, 32], 'model.wpe.weight': [32, 32], 'model.blocks.0.fc.weight': [128, 32] };
  const meta = (progress: object) => ({ version: 1, progress, tokenizer: { kind: 'char', chars } });

  it('reads the shape, the text and the tokenizer of a GPT checkpoint (the page’s or the command line’s)', async () => {
    const c = await describeTextFile(file(tiny, meta({ model: 'gpt', data: 'names', layers: 1, heads: 2, dim: 32, context: 32, steps: 7 })));
    expect(c).toMatchObject({ shape: { layers: 1, heads: 2, dim: 32, context: 32 }, size: 'tiny', source: 'names', steps: 7, history: null });
    expect(c.tokenizer.decode([1, 2, 0])).toBe('ab\n');
    // A command line file of a text file: its text is not at hand (the page asks for it to be pasted).
    const cli = await describeTextFile(file(tiny, meta({ model: 'gpt', data: 'poems.txt', layers: 1, heads: 2, dim: 32, context: 32, steps: 300 })));
    expect(cli.source).toBeNull();
  });

  it('refuses a file whose metadata asks for a larger model than its weights, an MNIST model, and one without a tokenizer', async () => {
    const huge = meta({ model: 'gpt', data: 'names', layers: 48, heads: 32, dim: 4096, context: 8192, steps: 0 });
    await expect(describeTextFile(file(tiny, huge))).rejects.toThrow(/do not fit the GPT its metadata describes \(48 layers, width 4096, context 8192, 27 characters\): model\.wte\.weight is \[27, 32\], expected \[27, 4096\]/);
    const extra = meta({ model: 'gpt', data: 'names', layers: 1, heads: 2, dim: 32, context: 32 });
    await expect(describeTextFile(file({ ...tiny, 'model.blocks.1.fc.weight': [128, 32] }, extra))).rejects.toThrow(/more blocks than the 1 layers/);
    await expect(describeTextFile(file({ 'model.1.weight': [256, 784] }, meta({ model: 'mlp' })))).rejects.toThrow(/an MLP model: .*load it in the Digits mode/);
    await expect(describeTextFile(file(tiny, { version: 1, progress: { model: 'gpt', layers: 1, heads: 2, dim: 32, context: 32 } }))).rejects.toThrow(/no tokenizer/);
    await expect(describeTextFile(file(tiny, meta({ model: 'gpt', layers: 1, heads: 2, dim: 32, context: 1e9 })))).rejects.toThrow(/context 1000000000; expected a whole number from 1 to 8192/);
  });

  it('keeps a saved history only when it has the expected form', () => {
    expect(validHistory({ loss: [[1, 3.3], [2, null]], heldOut: [{ step: 2, loss: 3.1, bitsPerChar: 4.5 }], speed: [[1, 900], [2, 950]] })).toEqual({
      loss: [[1, 3.3], [2, NaN]],
      heldOut: [{ step: 2, loss: 3.1, bitsPerChar: 4.5 }],
      speed: [[1, 900], [2, 950]],
    });
    expect(validHistory({ loss: [], heldOut: [] })).toEqual({ loss: [], heldOut: [], speed: [] });
    expect(validHistory({ loss: [], heldOut: [], speed: [[1, -5]] })).toBeNull();
    expect(validHistory({ loss: [[1, 'x']], heldOut: [] })).toBeNull();
    expect(validHistory({ loss: [], heldOut: [{ step: 1 }] })).toBeNull();
    expect(validHistory('nonsense')).toBeNull();
  });
});
