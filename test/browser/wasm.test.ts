// The CPU backend's kernels in headless Chromium: in a cross-origin isolated page (COOP/COEP
// headers) the pool runs two threads on Web Workers over a shared memory and uses relaxed SIMD
// (Chromium has it); in a page without those headers it runs one thread and says why. The matmul
// results are checked against float64 both times.

import type { AddressInfo } from 'node:net';
import type { Browser } from 'playwright-core';
import { createServer, type ViteDevServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomArray } from '../wasm/helpers';
import { collectErrors, launchChromium } from './harness';

const ISOLATION = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };

let browser: Browser;
const servers: Record<'isolated' | 'plain', { server: ViteDevServer; url: string }> = {} as never;

beforeAll(async () => {
  for (const [kind, headers] of [['isolated', ISOLATION], ['plain', {}]] as const) {
    // Without the config file: it would add the isolation headers to the plain server too.
    const server = await createServer({ configFile: false, logLevel: 'error', server: { host: '127.0.0.1', port: 0, hmr: false, headers } });
    await server.listen();
    servers[kind] = { server, url: `http://127.0.0.1:${(server.httpServer!.address() as AddressInfo).port}` };
  }
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  for (const s of Object.values(servers)) await s.server.close();
});

describe('wasm kernels in the browser', () => {
  for (const kind of ['isolated', 'plain'] as const) {
    it(`matmul on the thread pool in a ${kind === 'isolated' ? 'cross-origin isolated' : 'non-isolated'} page`, async () => {
      const page = await browser.newPage();
      const errors = collectErrors(page);
      await page.goto(`${servers[kind].url}/test/browser/wasm.html`);
      await page.waitForFunction(() => document.title === 'ready', null, { timeout: 60_000 });
      const M = 65, N = 33, K = 130;
      const a = Array.from(randomArray(M * K, 1)), b = Array.from(randomArray(K * N, 2));
      const out = await page.evaluate((inp) => (window as unknown as { runWasm(i: typeof inp): Promise<{
        c: number[]; threads: number; reason: string | null; relaxed: boolean; isolated: boolean;
      }> }).runWasm(inp), { a, b, M, N, K });
      expect(out.isolated).toBe(kind === 'isolated');
      if (kind === 'isolated') {
        expect([out.threads, out.reason]).toEqual([2, null]);
      } else {
        expect(out.threads).toBe(1);
        expect(out.reason).toMatch(/SharedArrayBuffer is unavailable/);
      }
      expect(out.relaxed).toBe(true);   // Chromium ≥ 114 validates relaxed SIMD
      const misses: string[] = [];
      for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) {
        let s = 0, abs = 0;
        for (let k = 0; k < K; k++) {
          s += a[m * K + k]! * b[k * N + n]!;
          abs += Math.abs(a[m * K + k]! * b[k * N + n]!);
        }
        const got = out.c[m * N + n]!;
        if (!(Math.abs(got - s) <= (K + 2) * 1.2e-7 * abs) && misses.length < 3) misses.push(`[${m},${n}] ${got} vs ${s}`);
      }
      expect(misses).toEqual([]);
      expect(errors, errors.join('\n')).toEqual([]);
      await page.close();
    });
  }
});
