// Browser tests: a Vite dev server for the repository and headless Chromium with WebGPU
// (SwiftShader on machines without a GPU), driven by playwright-core.

import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createServer, type ViteDevServer } from 'vite';
import { afterAll, beforeAll } from 'vitest';

/** The Chromium to drive: $CHROMIUM_PATH, else the first system Chromium/Chrome found. */
export function chromiumPath(): string {
  const candidates = [
    process.env.CHROMIUM_PATH,
    '/usr/bin/chromium',
    '/usr/bin/chromium-browser',
    '/usr/bin/google-chrome',
    '/usr/bin/google-chrome-stable',
  ].filter((p): p is string => !!p);
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`no Chromium found (tried ${candidates.join(', ')}); set CHROMIUM_PATH`);
  return found;
}

/** Flags that give headless Chromium a WebGPU adapter and keep it off the network. */
export const CHROMIUM_ARGS = [
  '--enable-unsafe-webgpu',
  '--headless=new',
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

export async function launchChromium(extraArgs: string[] = []): Promise<Browser> {
  return chromium.launch({ executablePath: chromiumPath(), args: [...CHROMIUM_ARGS, ...extraArgs] });
}

/** A Vite dev server for the repository root on a free loopback port (a secure context). */
export async function startDevServer(): Promise<{ url: string; server: ViteDevServer }> {
  const server = await createServer({
    logLevel: 'error',
    server: { host: '127.0.0.1', port: 0, strictPort: false, hmr: false },
  });
  await server.listen();
  const { port } = server.httpServer!.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, server };
}

/** Collect console errors and page errors, to assert a page ran cleanly. */
export function collectErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  return errors;
}

export interface BrowserSession {
  /** Headless Chromium, launched before the file's tests. */
  readonly browser: Browser;
  /** The dev server's origin, e.g. http://127.0.0.1:5173. */
  readonly url: string;
}

/**
 * Start a dev server and Chromium before the file's tests and close both after them. Returns the
 * session, whose fields are set once the tests run.
 */
export function useBrowser(): BrowserSession {
  const session = {} as { browser: Browser; url: string; server: ViteDevServer };
  beforeAll(async () => {
    ({ server: session.server, url: session.url } = await startDevServer());
    session.browser = await launchChromium();
  }, 120_000);
  afterAll(async () => {
    await session.browser?.close();
    await session.server?.close();
  });
  return session;
}
