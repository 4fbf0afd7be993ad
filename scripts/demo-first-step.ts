// How long the demo page takes from pressing Train to its first completed step, and what its
// status line says meanwhile (and, where it tunes kernels after that step, until tuning is over),
// in headless Chromium: `node scripts/run.mjs scripts/demo-first-step.ts [mlp|cnn] [runs]`.
// Each run uses a fresh browser context (nothing compiled, tuned or stored), as a first visit does.

import type { AddressInfo } from 'node:net';
import { chromium, type Page } from 'playwright-core';
import { createServer } from 'vite';

const CHROMIUM_ARGS = ['--enable-unsafe-webgpu', '--headless=new', '--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];

type Said = [ms: number, text: string];
const said = (page: Page): Promise<Said[]> => page.evaluate(() => (window as unknown as { said: Said[] }).said);
const since = (page: Page): Promise<number> => page.evaluate(() => performance.now() - (window as unknown as { t0: number }).t0);

export async function main(args: string[]): Promise<void> {
  const model = args[0] === 'cnn' ? 'cnn' : 'mlp';
  const runs = Number(args[1] ?? 1);
  const server = await createServer({ logLevel: 'error', server: { host: '127.0.0.1', port: 0, hmr: false } });
  await server.listen();
  const { port } = server.httpServer!.address() as AddressInfo;
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: CHROMIUM_ARGS });
  try {
    for (let r = 0; r < runs; r++) {
      const context = await browser.newContext();
      const page = await context.newPage();
      await page.goto(`http://127.0.0.1:${port}/demo/`);
      await page.waitForSelector('#status[data-state="ready"]', { timeout: 120_000 });
      if (model === 'cnn') {
        await page.selectOption('#model', 'cnn');
        await page.waitForFunction(() => /CNN/.test(document.getElementById('model-note')!.textContent ?? ''));
        await page.waitForSelector('#status[data-state="ready"]');
      }
      await page.evaluate(() => {
        const w = window as unknown as { said: Said[]; t0: number };
        w.said = [];
        const status = document.getElementById('status')!;
        const note = () => {
          const text = status.textContent ?? '';
          if (w.said.at(-1)?.[1] !== text) w.said.push([performance.now() - w.t0, text]);
        };
        new MutationObserver(note).observe(status, { childList: true, characterData: true, subtree: true });
        document.getElementById('train')!.addEventListener('click', () => (w.t0 = performance.now()), { capture: true });
      });
      await page.click('#train');
      await page.waitForFunction(() => Number(document.getElementById('step')!.textContent) >= 1, null, { timeout: 300_000, polling: 50 });
      const firstStep = await since(page);
      let tuned = '';
      // A page that tunes after the first step says so at once; then wait until it is done.
      await page.waitForTimeout(2000);
      if ((await said(page)).some(([, s]) => /Tuning/.test(s))) {
        await page.waitForFunction(() => (window as unknown as { said: Said[] }).said.at(-1)?.[1] === 'Training…', null, { timeout: 600_000, polling: 200 });
        tuned = `; tuning over ${((await since(page)) / 1000).toFixed(1)} s after Train, at step ${await page.textContent('#step')}`;
      }
      console.log(`${model} run ${r + 1}: first step completed ${(firstStep / 1000).toFixed(1)} s after Train${tuned}`);
      for (const [t, s] of await said(page)) console.log(`  ${(t / 1000).toFixed(1).padStart(6)} s  ${s}`);
      await context.close();
    }
  } finally {
    await browser.close();
    await server.close();
  }
}
