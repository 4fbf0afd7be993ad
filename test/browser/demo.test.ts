// The demo page (demo/) in headless Chromium, through the Vite dev server: it trains an MLP in
// its Worker, the curves and readouts move, Pause holds, a drawing gets read, the model downloads
// as a valid safetensors file, loads back, survives a reload, and profiles a step; without WebGPU it explains
// what is missing. Also the MNIST-style preprocessing of drawings, in Node.

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
    await page.goto(`${session.url}/demo/`);
    await waitForState(page, 'ready');

    // The device panel names the adapter and its limits.
    expect(await text(page, 'device-adapter')).toMatch(/\w/);
    expect(await text(page, 'device-fallback')).toMatch(/software|hardware/);
    expect(await text(page, 'device-max-buffer')).toMatch(/\d+(\.\d+)? (KiB|MiB|GiB)/);
    expect(await text(page, 'device-features')).toContain('subgroups');

    await page.selectOption('#batch-size', '32');
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

    // Pause: the step counter stops.
    await page.click('#pause');
    await waitForState(page, 'paused');
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
    await page.screenshot({ path: resolve(artifacts, 'demo.png'), fullPage: true });

    // Download: a safetensors checkpoint with the MLP's weights and the progress.
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
    expect(download.suggestedFilename()).toMatch(/\.safetensors$/);
    const file = resolve(artifacts, download.suggestedFilename());
    await download.saveAs(file);
    const header = readSafetensorsHeader(new Uint8Array(readFileSync(file)));
    expect(header.tensors['model.1.weight']).toMatchObject({ dtype: 'F32', shape: [256, 784] });
    expect(header.tensors['model.3.weight']).toMatchObject({ dtype: 'F32', shape: [10, 256] });
    expect(header.tensors['optimizer.0.momentumBuffer']).toMatchObject({ shape: [256, 784] });
    const progress = JSON.parse(header.metadata['webgrad.checkpoint']!).progress;
    expect(progress).toMatchObject({ model: 'mlp', optimizer: 'sgd', step: pausedAt });

    // Load it back through the file input.
    await page.setInputFiles('#load', file);
    await expect.poll(() => text(page, 'model-note')).toMatch(new RegExp(`Loaded .*\\.safetensors: MLP, 203,530 parameters, ${pausedAt} steps`));
    await waitForState(page, 'paused');

    // A reload continues the model kept in IndexedDB.
    await page.reload();
    await waitForState(page, 'paused');
    expect(await text(page, 'model-note')).toMatch(/^Restored model from .+: MLP/);
    expect(await numberIn(page, 'step')).toBe(pausedAt);

    expect(errors, errors.join('\n')).toEqual([]);
    expect(foreign).toEqual([]);
    await context.close();
  }, 180_000); // 100 SwiftShader training steps take most of it

  it('without navigator.gpu, explains what is missing instead of starting', async () => {
    const page = await session.browser.newPage();
    await page.addInitScript(() => delete (Navigator.prototype as { gpu?: unknown }).gpu);
    await page.goto(`${session.url}/demo/`);
    await page.waitForSelector('[data-testid="webgpu-unavailable"]', { state: 'visible', timeout: 30_000 });
    expect(await text(page, 'unavailable-message')).toMatch(/WebGPU is not available/);
    expect(await page.isHidden('#app')).toBe(true);
    await page.close();
  });

  it('in a browser whose WebGPU is switched off (no adapter), explains how to enable it', async () => {
    const args = [...CHROMIUM_ARGS.filter((a) => a !== '--enable-unsafe-webgpu'), '--disable-webgpu'];
    const plain = await chromium.launch({ executablePath: chromiumPath(), args });
    try {
      const page = await plain.newPage();
      await page.goto(`${session.url}/demo/`);
      await page.waitForSelector('[data-testid="webgpu-unavailable"]', { state: 'visible', timeout: 30_000 });
      const message = await text(page, 'unavailable-message');
      expect(message).toMatch(/WebGPU is not available: no GPU adapter was found/);
      expect(message).toMatch(/enable-unsafe-webgpu|chrome:\/\/flags/);
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
