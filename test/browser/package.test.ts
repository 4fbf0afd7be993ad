// The built package, used the way a user would: `npm run build`, then plain `node` in a
// directory outside the repository imports 'webgrad/node' from a linked copy and runs a matmul;
// a plain page imports dist/webgrad.js and trains; the built demo runs from a static server.
// (One file, so that no other test rebuilds dist/ while these read it.)

import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectErrors, launchChromium } from './harness';
import { serveStatic, type StaticServer } from './static-server';
import type { Browser } from 'playwright-core';

const repo = resolve(import.meta.dirname, '../..');
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

  it('error classes keep their names through the bundler: err.name, String(err), the stack and Node\'s inspect', () => {
    // Every error class the package exports, found by walking it (wg.distributed's too), named by its export.
    writeFileSync(
      join(outside, 'errors.mjs'),
      `import * as wg from 'webgrad/node';
       import { inspect } from 'node:util';
       const found = [];
       const walk = (ns, path) => {
         for (const [key, v] of Object.entries(ns)) {
           if (typeof v === 'function' && (v === wg.WebGradError || v.prototype instanceof wg.WebGradError)) found.push([path + key, key, v]);
           else if (v && typeof v === 'object' && !ArrayBuffer.isView(v) && path === '') walk(v, key + '.');
         }
       };
       walk(wg, '');
       // A subclass of yours that names itself nowhere is called after its class.
       found.push(['a user subclass', 'Mine', class Mine extends wg.ShapeError {}]);
       const rows = found.map(([where, key, Cls]) => {
         const e = new Cls('the message');
         return { where, key, name: e.name, ctor: Cls.name, string: String(e), stack: e.stack.split('\\n')[0], inspect: inspect(e).split('\\n')[0], isWebGradError: e instanceof wg.WebGradError };
       });
       // And one thrown by the library itself.
       await wg.init();
       try { wg.reshape(wg.tensor([1, 2]), [3]); } catch (e) { rows.push({ where: 'thrown', key: 'ShapeError', name: e.name, ctor: e.constructor.name, string: String(e).split(':')[0] + ': the message', stack: e.stack.split(':')[0] + ': the message', inspect: inspect(e).split(':')[0] + ': the message', isWebGradError: e instanceof wg.WebGradError }); }
       wg.shutdown();
       console.log(JSON.stringify(rows));`,
    );
    const out = execFileSync(process.execPath, ['errors.mjs'], { cwd: outside, encoding: 'utf8', timeout: 60_000 });
    const rows = JSON.parse(out.trim().split('\n').pop()!) as Record<string, string | boolean>[];
    expect(rows.map((r) => r.key)).toEqual(expect.arrayContaining(['WebGradError', 'ShapeError', 'DTypeError', 'DisposedError', 'LimitError', 'OutOfMemoryError', 'GPUValidationError', 'DeviceLostError', 'NonFiniteError', 'WebGPUUnavailableError', 'NotInitializedError', 'DistributedError', 'ProtocolError']));
    for (const r of rows) {
      const line = `${r.key}: the message`;
      expect({ ...r, where: undefined }, String(r.where)).toEqual({ key: r.key, name: r.key, ctor: r.key, string: line, stack: line, inspect: line, isWebGradError: true, where: undefined });
    }
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

describe('the built package in a browser', () => {
  let server: StaticServer;
  let browser: Browser;
  beforeAll(async () => {
    server = await serveStatic(repo);
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('a plain page imports dist/webgrad.js from a static server and trains: the loss is finite and falls', async () => {
    server.requests.length = 0;
    const page = await browser.newPage();
    const errors = collectErrors(page);
    await page.goto(`${server.url}/test/browser/dist-page.html`);
    await page.waitForFunction(() => document.title === 'ready', null, { timeout: 30_000 });
    const out = await page.evaluate(() =>
      (window as unknown as { trainFromDist(o: { steps: number }): Promise<{ losses: number[]; liveTensors: number; mnist: number[] }> })
        .trainFromDist({ steps: 5 }),
    );
    expect(out.losses.every(Number.isFinite), `losses ${out.losses}`).toBe(true);
    // Full-batch gradient descent with a small step: every step lowers the loss.
    for (let i = 1; i < out.losses.length; i++) expect(out.losses[i], `losses ${out.losses}`).toBeLessThan(out.losses[i - 1]!);
    expect(out.liveTensors).toBe(0);
    expect(out.mnist).toEqual([8000, 2000]);
    // Everything came from dist/, nothing from the sources.
    expect(server.requests.filter((p) => !p.startsWith('/dist/') && !p.startsWith('/test/browser/'))).toEqual([]);
    expect(errors, errors.join('\n')).toEqual([]);
    await page.close();
  });

  it('a plain page loads the text corpora and the GPT-2 tokenizer from dist/ (chunks of their own, nothing else fetched)', async () => {
    server.requests.length = 0;
    const page = await browser.newPage();
    const errors = collectErrors(page);
    await page.goto(`${server.url}/test/browser/dist-page.html`);
    await page.waitForFunction(() => document.title === 'ready', null, { timeout: 30_000 });
    const out = await page.evaluate(() => (window as unknown as { textFromDist(): Promise<unknown> }).textFromDist());
    expect(out).toEqual({ names: [28, 59_167], moby: [89, 1_217_534], mobyStart: 'CONTENTS', hello: [15496, 995] });
    expect(server.requests.filter((p) => !p.startsWith('/dist/') && !p.startsWith('/test/browser/'))).toEqual([]);
    expect(server.requests).toContainEqual(expect.stringMatching(/^\/dist\/gpt2-[\w-]+\.js$/));
    expect(errors, errors.join('\n')).toEqual([]);
    await page.close();
  });

  it('the built demo runs from a static server at a sub-path: its worker finds WebGPU and the digits, and trains', async () => {
    server.requests.length = 0;
    const page = await browser.newPage();
    const errors = collectErrors(page);
    await page.goto(`${server.url}/dist/demo/`);
    await page.waitForSelector('#status[data-state="ready"]', { timeout: 60_000 });
    await expect.poll(() => page.textContent('#device-adapter')).toMatch(/\w/);
    await page.click('#train');
    await page.waitForFunction(() => Number(document.getElementById('step')!.textContent) >= 2, null, { timeout: 60_000 });
    expect(Number(await page.textContent('#loss'))).toBeGreaterThan(0);
    await page.click('#pause');
    await page.waitForSelector('#status[data-state="paused"]', { timeout: 60_000 });
    expect(server.requests.filter((p) => !p.startsWith('/dist/demo/'))).toEqual([]);
    expect(server.requests).toContainEqual(expect.stringMatching(/^\/dist\/demo\/assets\/mnist.*\.gz$/));
    expect(errors, errors.join('\n')).toEqual([]);
    await page.close();
  });
});
