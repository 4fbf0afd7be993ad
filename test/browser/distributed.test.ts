// Two headless Chromium pages (test/browser/together.ts, served by Vite) join one coordinator over
// WebSocket and train together: their parameters must be bit-identical, and equal to one device
// (Dawn, in this process) training on the same global batches.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectErrors, useBrowser } from './harness';
import { decodeParams, singleDevice } from '../distributed/fixture';
import { gpu, relErr, wg } from '../helpers';

const STEPS = 4;
const BATCH = 30;

const session = useBrowser();
let coordinator: wg.distributed.Coordinator;

beforeAll(async () => {
  coordinator = await wg.distributed.startCoordinator({ bucketBytes: 512, partBytes: 256 });
}, 120_000);

afterAll(async () => {
  await coordinator?.close();
});

interface PageRun {
  results: wg.distributed.DataParallelStepResult[];
  params: string[];
}

describe('data parallelism between browser pages', () => {
  it('two pages train together over the WebSocket coordinator: identical parameters, equal to one device', async () => {
    const pages = await Promise.all([0, 1].map(() => session.browser.newPage()));
    const errors = pages.map(collectErrors);
    await Promise.all(pages.map((p) => p.goto(`${session.url}/test/browser/together.html`)));
    await Promise.all(pages.map((p) => p.waitForFunction(() => document.title === 'ready', null, { timeout: 60_000 })));
    const runs = await Promise.all(
      pages.map((p, i) =>
        p.evaluate(
          (o) => (window as unknown as { trainTogether(o: unknown): Promise<PageRun> }).trainTogether(o),
          { url: coordinator.url, steps: STEPS, batch: BATCH, seed: i + 1, minReplicas: 2 },
        ),
      ),
    );
    for (const r of runs) {
      expect(r.results.map((s) => [s.step, s.worldSize, s.globalBatch, s.samples])).toEqual(Array.from({ length: STEPS }, (_, i) => [i, 2, BATCH, BATCH / 2]));
    }
    const [a, b] = runs.map((r) => decodeParams(r.params));
    a!.forEach((p, i) => expect(Buffer.from(p.buffer).equals(Buffer.from(b![i]!.buffer)), `parameter ${i}: the pages differ`).toBe(true));
    // Rank 0's initial weights are the ones trained: the seed of the page that joined first.
    const leader = runs.findIndex((r) => r.results[0]!.rank === 0);
    await gpu();
    const reference = await singleDevice(wg, STEPS, BATCH, leader + 1);
    reference.forEach((p, i) => expect(relErr(a![i]!, p), `parameter ${i} vs one device`).toBeLessThan(1e-5));
    for (const e of errors) expect(e, e.join('\n')).toEqual([]);
    await Promise.all(pages.map((p) => p.close()));
  });
});
