// The demo's "Train together" panel in headless Chromium: two tabs opened with a ?join= link to a
// coordinator (in this process) press Train and train as one session; each panel shows the share
// link, both replicas with their rank and speed, and pausing leaves the session.

import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectErrors, useBrowser } from './harness';
import { wg } from '../helpers';

const session = useBrowser();
let coordinator: wg.distributed.Coordinator;

beforeAll(async () => {
  coordinator = await wg.distributed.startCoordinator();
}, 120_000);

afterAll(async () => {
  await coordinator?.close();
});

const status = (page: Page) => page.textContent('[data-testid="together-status"]');

describe('the demo trains together', () => {
  it('two tabs join one session from a shared link, list each other with rank and speed, and leave on pause', async () => {
    const pages = await Promise.all([0, 1].map(async () => (await session.browser.newContext()).newPage()));
    const errors = pages.map(collectErrors);
    const link = `${session.url}/demo/?join=${encodeURIComponent(coordinator.url)}`;
    await Promise.all(pages.map((p) => p.goto(link)));
    await Promise.all(pages.map((p) => p.waitForSelector('#status[data-state="ready"]', { timeout: 60_000 })));
    for (const p of pages) {
      expect(await p.inputValue('[data-testid="together-url"]')).toBe(coordinator.url);
      expect(await status(p)).toMatch(/Press Train to join the session/);
      expect(await p.getAttribute('[data-testid="together-link"]', 'href')).toContain(`join=${encodeURIComponent(coordinator.url)}`);
    }
    await Promise.all(pages.map((p) => p.click('#train')));
    // The leader may take the first step alone (its tab is ready first); then both take part, and
    // a replica's speed shows once it has computed a step. (Autotuning makes the first steps slow.)
    for (const p of pages) {
      await p.waitForFunction(
        () => {
          const rows = [...document.querySelectorAll('[data-testid="together-peers"] tbody tr')].map((r) => [...r.children].map((td) => td.textContent));
          return rows.length === 2 && rows.every((r) => r[1] === '0' || r[1] === '1') && rows.some((r) => /samples\/s/.test(r[2] ?? ''));
        },
        null,
        { timeout: 150_000 },
      );
    }
    await Promise.all(pages.map((p) => p.waitForFunction(() => / of 2, /.test(document.querySelector('[data-testid="together-status"]')!.textContent ?? ''), null, { timeout: 60_000 })));
    const ranks = await Promise.all(pages.map(async (p) => Number((await status(p))!.match(/rank (\d) of 2/)![1])));
    expect(ranks.sort()).toEqual([0, 1]);
    for (const p of pages) {
      const rows = await p.$$eval('[data-testid="together-peers"] tbody tr', (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
      expect(rows.map((r) => r[1]).sort()).toEqual(['0', '1']);
      expect(rows.filter((r) => r[0]!.includes('(this tab)'))).toHaveLength(1);
      expect(rows.filter((r) => r[0]!.includes('leader'))).toHaveLength(1);
    }
    await Promise.all(pages.map((p) => p.click('#pause')));
    await Promise.all(pages.map((p) => p.waitForSelector('#status[data-state="paused"]', { timeout: 60_000 })));
    for (const p of pages) expect(await status(p)).toMatch(/Left the session while paused/);
    await expect.poll(() => coordinator.hub.memberList.length).toBe(0);
    for (const e of errors) expect(e, e.join('\n')).toEqual([]);
  }, 240_000);
});
