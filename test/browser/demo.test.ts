// The demo page (demo/) in headless Chromium, through the Vite dev server: on WebGPU
// (?backend=webgpu: here SwiftShader, which 'auto' would pass over) it trains an MLP in its Worker
// (saying what it does before the first step: compiling kernels, then tuning them after it), the
// curves and readouts move, Pause holds, a drawing gets read (and Clear is not undone by a late
// answer), the model downloads as a valid safetensors file, loads back with its curves, survives a
// reload, and profiles a step; the page fits a phone's screen; in a browser with WebGPU switched
// off it trains on the CPU (and, asked for WebGPU there, explains what is missing). Also the
// MNIST-style preprocessing of drawings, in Node.

import { mkdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { chromium, type Page } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { mnistInput } from '../../demo/draw';
import { readSafetensorsHeader } from '../../src/io/safetensors';
import { CHROMIUM_ARGS, chromiumPath, collectErrors, useBrowser } from './harness';

const artifacts = resolve(import.meta.dirname, '../..', 'test-results');
/** Steps to train before judging the curves: five quick accuracy checks (one per 20 steps). */
const STEPS = 100;

const session = useBrowser();

beforeAll(async () => {
  mkdirSync(artifacts, { recursive: true });
}, 120_000);

const text = async (page: Page, id: string): Promise<string> => (await page.textContent(`#${id}`)) ?? '';
const numberIn = async (page: Page, id: string): Promise<number> => parseFloat((await text(page, id)).replace(/,/g, ''));
const waitForState = (page: Page, state: string, timeout = 60_000) =>
  page.waitForSelector(`#status[data-state="${state}"]`, { timeout });

/** What the status line said, and the step and progress bar at that moment (recorded in the page). */
interface Said {
  text: string;
  step: number;
  progress: number | null;
}
const recordStatus = (page: Page) =>
  page.evaluate(() => {
    const said: Said[] = ((window as unknown as { said: Said[] }).said = []);
    const status = document.getElementById('status')!;
    const bar = document.getElementById('status-progress') as HTMLProgressElement | null;
    const note = () =>
      said.push({ text: status.textContent ?? '', step: Number(document.getElementById('step')!.textContent), progress: bar && !bar.hidden ? bar.value : null });
    new MutationObserver(note).observe(status, { childList: true, characterData: true, subtree: true });
  });
const statusLog = (page: Page): Promise<Said[]> => page.evaluate(() => (window as unknown as { said: Said[] }).said);

/** The left edge and width of each chart's plotting area, and the steps its x axis spans. */
const chartGeometry = (page: Page) =>
  page.$$eval('#loss-chart, #accuracy-chart', (boxes) =>
    boxes.map((b) => {
      const r = b.querySelector('.u-over')!.getBoundingClientRect();
      return { left: Math.round(r.left), width: Math.round(r.width), steps: (b as HTMLElement).dataset.steps };
    }),
  );

/** What the chart and the readouts show of past training. */
const shownHistory = async (page: Page) => ({
  lossPoints: Number(await page.getAttribute('#loss-chart', 'data-points')),
  evalPoints: Number(await page.getAttribute('#accuracy-chart', 'data-points')),
  loss: await text(page, 'loss'),
  accuracy: await text(page, 'accuracy'),
  accuracyDetail: await text(page, 'accuracy-detail'),
});

describe('the demo page', () => {
  it('trains in a worker, pauses, reads a drawing, saves, loads and restores the model', async () => {
    const context = await session.browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 1100 } });
    const page = await context.newPage();
    const errors = collectErrors(page);
    // Everything the page and its worker need comes from the server that served it.
    const foreign: string[] = [];
    page.on('request', (r) => {
      if (!r.url().startsWith(`${session.url}/`) && !/^(data|blob):/.test(r.url())) foreign.push(r.url());
    });
    await page.goto(`${session.url}/demo/?backend=webgpu`);
    await waitForState(page, 'ready');

    // The device panel names the adapter and its limits.
    expect(await text(page, 'device-adapter')).toMatch(/\w/);
    expect(await text(page, 'device-fallback')).toMatch(/software|hardware/);
    expect(await text(page, 'device-max-buffer')).toMatch(/\d+(\.\d+)? (KiB|MiB|GiB)/);
    expect(await text(page, 'device-features')).toContain('subgroups');

    await page.selectOption('#batch-size', '32');
    await recordStatus(page);
    await page.click('#train');
    await waitForState(page, 'training');
    // Wait for the accuracy check at step STEPS (it follows the step's own report).
    await page.waitForFunction((n) => Number(document.getElementById('accuracy-chart')!.dataset.points) >= n, STEPS / 20, {
      timeout: 100_000,
    });

    // The loss fell (the readout averages 10 steps and says where it started), the chart has
    // every step, and test accuracy is far above chance (10%).
    const loss = await numberIn(page, 'loss');
    const start = parseFloat((await text(page, 'loss-start')).match(/started at ([\d.]+)/)![1]!);
    expect(start).toBeGreaterThan(1.5); // ln 10 = 2.3 for a model that knows nothing
    expect(loss).toBeLessThan(start * 0.6);
    expect(Number(await page.getAttribute('#loss-chart', 'data-points'))).toBeGreaterThanOrEqual(STEPS);
    expect(await numberIn(page, 'accuracy')).toBeGreaterThanOrEqual(30);
    expect(await text(page, 'speed')).toMatch(/\d samples\/s/);
    expect(await text(page, 'memory')).toMatch(/in use/);
    expect(await text(page, 'plan')).toMatch(/whole batch of 32|micro-batches/);

    // Before the first step it said what it was doing, with a progress bar: compiling the
    // kernels (counted up to all of them); the tuning came after the first step, counted too.
    const said = await statusLog(page);
    const compiling = said.filter((s) => /^Compiling GPU kernels for this model: \d+\/\d+…$/.test(s.text));
    expect(compiling.length, said.map((s) => s.text).join('\n')).toBeGreaterThan(1);
    const [, done, total] = compiling.at(-1)!.text.match(/(\d+)\/(\d+)/)!.map(Number);
    expect(done).toBe(total);
    for (const s of compiling) expect(s.step).toBe(0);
    expect(compiling.every((s) => s.progress !== null && s.progress >= 0 && s.progress <= 1)).toBe(true);
    const tuning = said.filter((s) => /^Tuning GPU kernels for this adapter: matmul \d+\/\d+…$/.test(s.text));
    expect(tuning.length).toBeGreaterThan(0);
    expect(tuning[0]!.step).toBeGreaterThanOrEqual(1);
    expect(said.indexOf(tuning[0]!)).toBeGreaterThan(said.indexOf(compiling.at(-1)!));
    expect(tuning.every((s) => s.progress !== null)).toBe(true);

    // Both charts show the same steps (from the first), over plot areas that line up.
    const [lossChart, accuracyChart] = await chartGeometry(page);
    expect(lossChart!.steps).toMatch(/^1-\d+$/);
    expect(accuracyChart).toEqual(lossChart);

    // Pause: the step counter stops.
    await page.click('#pause');
    await waitForState(page, 'paused');
    expect(await page.isHidden('#status-progress')).toBe(true);
    let pausedAt = await numberIn(page, 'step');
    await page.waitForTimeout(1000);
    expect(await numberIn(page, 'step')).toBe(pausedAt);
    await expect.poll(() => text(page, 'stored-note')).toMatch(/Kept in this browser/);

    // Profile a step while paused: one more step, under wg.profile, a table of its kernels, paused again.
    await page.click('#profile');
    await page.waitForSelector('#profile-table tbody tr', { timeout: 60_000 });
    await waitForState(page, 'paused');
    expect(await numberIn(page, 'step')).toBe(++pausedAt);
    expect(await text(page, 'profile-note')).toMatch(new RegExp(`^Step ${pausedAt}: \\d+ kernel runs, [\\d.]+ (ms|µs) on the GPU`));
    const kernels = await page.$$eval('#profile-table tbody tr', (rows) => rows.map((r) => Array.from(r.children, (c) => c.textContent)));
    expect(kernels.map((k) => k[0])).toEqual(expect.arrayContaining([expect.stringMatching(/^matmul\./), 'SGD.step']));
    for (const k of kernels) expect(k[4]).toMatch(/\d (B|KiB|MiB)$/);
    await page.locator('#profile-card').screenshot({ path: resolve(artifacts, 'demo-profile.png') });

    // Draw a 7 with the mouse: the model (paused) reads it.
    // The profile table's screenshot scrolled the page: bring the whole pad into view, or strokes start off-screen.
    await page.locator('#pad').scrollIntoViewIfNeeded();
    const pad = (await page.locator('#pad').boundingBox())!;
    const at = (x: number, y: number) => [pad.x + (x * pad.width) / 280, pad.y + (y * pad.height) / 280] as const;
    await page.mouse.move(...at(70, 60));
    await page.mouse.down();
    await page.mouse.move(...at(210, 60), { steps: 10 });
    await page.mouse.move(...at(120, 240), { steps: 10 });
    await page.mouse.up();
    await page.waitForSelector('#probabilities[data-state="shown"]', { timeout: 30_000 });
    const probabilities = await page.$$eval('#probabilities li', (rows) => rows.map((r) => Number((r as HTMLElement).dataset.probability)));
    expect(probabilities).toHaveLength(10);
    expect(probabilities.every((p) => p >= 0 && p <= 1)).toBe(true);
    expect(probabilities.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 3);
    expect(await text(page, 'verdict')).toMatch(/Looks like a \d/);
    // The pad is square beside the bars.
    expect(pad.width).toBeCloseTo(pad.height, 0);
    await page.screenshot({ path: resolve(artifacts, 'demo.png'), fullPage: true });

    // Add a dot and press Clear before the answer comes (at once, when the page asks the worker
    // to read the drawing): the answer, when it comes, is not shown on the empty pad.
    await page.evaluate(() => {
      const post = Worker.prototype.postMessage;
      Worker.prototype.postMessage = function (this: Worker, msg: unknown, ...rest: never[]) {
        post.call(this, msg, ...rest);
        if ((msg as { type?: string }).type === 'predict') {
          Worker.prototype.postMessage = post;
          queueMicrotask(() => {
            document.getElementById('clear')!.click();
            (window as unknown as { cleared: boolean }).cleared = true;
          });
        }
      } as typeof post;
    });
    await page.mouse.click(...at(200, 200));
    await page.waitForFunction(() => (window as unknown as { cleared?: boolean }).cleared);
    const history = await shownHistory(page);
    expect(history.lossPoints).toBeGreaterThanOrEqual(STEPS);

    // Download: a safetensors checkpoint with the MLP's weights and the progress.
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
    // The worker answers in order: the reading of the cleared drawing came before the file.
    expect(await text(page, 'verdict')).toBe('Draw a digit in the box.');
    expect(await page.getAttribute('#probabilities', 'data-state')).toBe('empty');
    expect(download.suggestedFilename()).toMatch(/\.safetensors$/);
    const file = resolve(artifacts, download.suggestedFilename());
    await download.saveAs(file);
    const header = readSafetensorsHeader(new Uint8Array(readFileSync(file)));
    expect(header.tensors['model.1.weight']).toMatchObject({ dtype: 'F32', shape: [256, 784] });
    expect(header.tensors['model.3.weight']).toMatchObject({ dtype: 'F32', shape: [10, 256] });
    expect(header.tensors['optimizer.0.momentumBuffer']).toMatchObject({ shape: [256, 784] });
    const progress = JSON.parse(header.metadata['webgrad.checkpoint']!).progress;
    expect(progress).toMatchObject({ model: 'mlp', optimizer: 'sgd', step: pausedAt });

    // Load it back through the file input: its curves and readouts come with it.
    await page.setInputFiles('#load', file);
    await expect.poll(() => text(page, 'model-note')).toMatch(new RegExp(`Loaded .*\\.safetensors: MLP, 203,530 parameters, ${pausedAt} steps`));
    await waitForState(page, 'paused');
    const expectHistoryShown = async () => {
      await expect.poll(() => shownHistory(page)).toEqual(history);
      expect(await numberIn(page, 'step')).toBe(pausedAt);
      expect(await text(page, 'epoch')).toMatch(/^\(epoch 1, batch \d+ of \d+\)$/);
      expect(await text(page, 'speed')).toMatch(/\d samples\/s/);
      expect(await text(page, 'memory')).toMatch(/in use/);
      expect(await text(page, 'plan')).toMatch(/whole batch of 32|micro-batches/);
    };
    await expectHistoryShown();

    // A reload continues the model kept in IndexedDB, as it was shown.
    await page.reload();
    await waitForState(page, 'paused');
    expect(await text(page, 'model-note')).toMatch(/^Restored model from .+: MLP/);
    await expectHistoryShown();

    // Training goes on from there, and tuned: the kernels' timings were kept (in IndexedDB, as a
    // Worker has no localStorage), so only the pipelines are compiled again.
    await recordStatus(page);
    await page.click('#train');
    await page.waitForFunction((n) => Number(document.getElementById('step')!.textContent) >= n, pausedAt + 2, { timeout: 60_000 });
    await page.click('#pause');
    await waitForState(page, 'paused');
    const again = await statusLog(page);
    expect(again.some((s) => /^Compiling GPU kernels/.test(s.text))).toBe(true);
    expect(again.filter((s) => /Tuning/.test(s.text))).toEqual([]);

    expect(errors, errors.join('\n')).toEqual([]);
    expect(foreign).toEqual([]);
    await context.close();
  }, 180_000); // 100 SwiftShader training steps take most of it

  it('fits a phone screen (390×844): nothing wider than the page, every control readable, the cards alike', async () => {
    const page = await session.browser.newPage({ viewport: { width: 390, height: 844 } });
    const errors = collectErrors(page);
    await page.goto(`${session.url}/demo/`);
    await waitForState(page, 'ready');
    await page.waitForSelector('#device-adapter');
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);

    const layout = await page.evaluate(() => {
      const ctx = document.createElement('canvas').getContext('2d')!;
      const box = (e: Element) => e.getBoundingClientRect();
      return {
        // Every control inside its card.
        outside: [...document.querySelectorAll('#app .card')].flatMap((card) =>
          [...card.querySelectorAll('input:not([type=file]), select, button, canvas, table')]
            .filter((e) => e.getClientRects().length > 0) // not hidden
            .filter((e) => box(e).left < box(card).left || box(e).right > box(card).right + 0.5)
            .map((e) => `${card.id}: ${e.outerHTML.slice(0, 80)}`),
        ),
        // The chosen option's text fits its select (with room for the arrow); the Text mode's are hidden.
        cut: [...document.querySelectorAll('select')].filter((s) => s.getClientRects().length > 0).flatMap((s) => {
          const style = getComputedStyle(s);
          ctx.font = style.font;
          const room = s.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight) - 20;
          const text = s.selectedOptions[0]?.text ?? '';
          return ctx.measureText(text).width > room ? [`${s.id}: "${text}" in ${s.clientWidth}px`] : [];
        }),
        // The session URL input looks like the training controls' inputs.
        styles: ['#lr', '[data-testid="together-url"]'].map((sel) => {
          const s = getComputedStyle(document.querySelector(sel)!);
          return { font: s.font, padding: s.padding, border: s.border, radius: s.borderRadius };
        }),
        devices: [...document.querySelectorAll('#device dd')].map((dd) => dd.textContent),
      };
    });
    expect(layout.outside).toEqual([]);
    expect(layout.cut).toEqual([]);
    expect(layout.styles[1]).toEqual(layout.styles[0]);
    expect(layout.devices).not.toContain('—');
    const pad = (await page.locator('#pad').boundingBox())!;
    expect(pad.width).toBeCloseTo(pad.height, 0);
    await page.screenshot({ path: resolve(artifacts, 'demo-phone.png'), fullPage: true });
    expect(errors, errors.join('\n')).toEqual([]);
    await page.close();
  });

  it('in a browser whose WebGPU is switched off, trains on the CPU with threads, and says so', async () => {
    const args = [...CHROMIUM_ARGS.filter((a) => a !== '--enable-unsafe-webgpu'), '--disable-webgpu'];
    const plain = await chromium.launch({ executablePath: chromiumPath(), args });
    try {
      const page = await plain.newPage({ viewport: { width: 1280, height: 1100 } });
      const errors = collectErrors(page);
      await page.goto(`${session.url}/demo/`);
      await waitForState(page, 'ready');
      expect(await page.textContent('#device-card h2')).toBe('Your CPU');
      expect(await text(page, 'device-adapter')).toMatch(/^the CPU: WebAssembly SIMD/);
      expect(await text(page, 'device-backend-reason')).toMatch(/WebGPU found no adapter|WebGPU is unavailable/);
      // The dev server sends the cross-origin isolation headers: the kernels run on every core.
      const cores = await page.evaluate(() => navigator.hardwareConcurrency);
      expect(await text(page, 'device-threads')).toBe(String(Math.min(16, cores)));
      expect(await page.isHidden('[data-testid="webgpu-unavailable"]')).toBe(true);

      await page.selectOption('#batch-size', '32');
      await recordStatus(page);
      await page.click('#train');
      await page.waitForFunction((n) => Number(document.getElementById('accuracy-chart')!.dataset.points) >= n, 3, { timeout: 100_000 });
      const loss = await numberIn(page, 'loss');
      const start = parseFloat((await text(page, 'loss-start')).match(/started at ([\d.]+)/)![1]!);
      expect(loss).toBeLessThan(start * 0.6);
      expect(await numberIn(page, 'accuracy')).toBeGreaterThanOrEqual(30);
      // Nothing to compile or tune on the CPU: the first step came without either.
      expect((await statusLog(page)).filter((s) => /Compiling|Tuning/.test(s.text))).toEqual([]);

      await page.click('#pause');
      await waitForState(page, 'paused');
      await page.click('#profile');
      await page.waitForSelector('#profile-table tbody tr', { timeout: 60_000 });
      expect(await text(page, 'profile-note')).toMatch(/^Step \d+: \d+ kernel runs, [\d.]+ (ms|µs) on the CPU/);
      expect(await page.textContent('#profile-table thead')).toContain('CPU time');
      const kernels = await page.$$eval('#profile-table tbody tr', (rows) => rows.map((r) => r.children[0]!.textContent));
      expect(kernels).toEqual(expect.arrayContaining(['matmul', 'sgd_momentum', 'cross_entropy_forward']));
      await page.screenshot({ path: resolve(artifacts, 'demo-cpu.png'), fullPage: true });
      expect(errors, errors.join('\n')).toEqual([]);
    } finally {
      await plain.close();
    }
  }, 180_000);

  it('asked for WebGPU (?backend=webgpu) in a browser whose WebGPU is switched off, explains how to enable it', async () => {
    const args = [...CHROMIUM_ARGS.filter((a) => a !== '--enable-unsafe-webgpu'), '--disable-webgpu'];
    const plain = await chromium.launch({ executablePath: chromiumPath(), args });
    try {
      const page = await plain.newPage();
      await page.goto(`${session.url}/demo/?backend=webgpu`);
      await page.waitForSelector('[data-testid="webgpu-unavailable"]', { state: 'visible', timeout: 30_000 });
      const message = await text(page, 'unavailable-message');
      expect(message).toMatch(/WebGPU is not available: no GPU adapter was found/);
      expect(message).toMatch(/enable-unsafe-webgpu|chrome:\/\/flags/);
      expect(await page.isHidden('#app')).toBe(true);
      await page.screenshot({ path: resolve(artifacts, 'demo-no-webgpu.png') });
    } finally {
      await plain.close();
    }
  });
});

describe('drawings become MNIST-style inputs', () => {
  /** A w×h image with a filled rectangle of ink. */
  const drawRect = (w: number, h: number, x0: number, y0: number, rw: number, rh: number): Float32Array => {
    const img = new Float32Array(w * h);
    for (let y = y0; y < y0 + rh; y++) for (let x = x0; x < x0 + rw; x++) img[y * w + x] = 1;
    return img;
  };
  const stats = (img: Float32Array) => {
    let mass = 0, mx = 0, my = 0, x0 = 28, x1 = -1, y0 = 28, y1 = -1, max = 0;
    for (let y = 0; y < 28; y++) {
      for (let x = 0; x < 28; x++) {
        const v = img[y * 28 + x]!;
        mass += v;
        mx += v * x;
        my += v * y;
        max = Math.max(max, v);
        if (v > 0) [x0, x1, y0, y1] = [Math.min(x0, x), Math.max(x1, x), Math.min(y0, y), Math.max(y1, y)];
      }
    }
    return { mass, cx: mx / mass, cy: my / mass, width: x1 - x0 + 1, height: y1 - y0 + 1, max };
  };

  it('fits the bounding box into 20×20 keeping its aspect and centres the mass at (14, 14)', () => {
    // A tall stroke in the top-left corner of a 280×280 pad: 40 wide, 200 high.
    const img = mnistInput(drawRect(280, 280, 10, 5, 40, 200), 280, 280)!;
    const s = stats(img);
    // 4×20 pixels of ink; a sub-pixel shift may smear an edge over one more row or column.
    expect(s.mass).toBeCloseTo(80, 3);
    expect(s.height - 20).toBeOneOf([0, 1]);
    expect(s.width - 4).toBeOneOf([0, 1]);
    expect(s.cx).toBeCloseTo(14, 1);
    expect(s.cy).toBeCloseTo(14, 1);
    expect(s.max).toBeLessThanOrEqual(1);
  });

  it('enlarges a small drawing and returns null for an empty one', () => {
    const s = stats(mnistInput(drawRect(100, 100, 60, 70, 10, 10), 100, 100)!);
    expect(s.mass).toBeCloseTo(400, 3);
    expect(s.width - 20).toBeOneOf([0, 1]);
    expect(s.cx).toBeCloseTo(14, 1);
    expect(mnistInput(new Float32Array(100 * 100), 100, 100)).toBeNull();
  });
});
