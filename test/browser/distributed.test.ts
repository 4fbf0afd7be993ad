// Two headless Chromium pages (test/browser/together.ts, served by Vite) and two Node processes
// (test/distributed/replica.ts) join one coordinator over WebSocket and run the ring over WebRTC
// data channels between them, on loopback: every step's ring goes over the peer links, the four
// replicas' parameters must be bit-identical, and equal to one device (Dawn, in this process)
// training on the same global batches. (Chromium names its host candidates with mDNS; the links
// between pages and Node processes open all the same, with no flag.)

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectErrors, useBrowser } from './harness';
import { decodeParams, singleDevice } from '../distributed/fixture';
import { gpu, relErr, wg } from '../helpers';

const STEPS = 4;
const BATCH = 32;
const repo = resolve(import.meta.dirname, '../..');

const session = useBrowser();
let coordinator: wg.distributed.Coordinator;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'webgrad-together-'));
  coordinator = await wg.distributed.startCoordinator({ bucketBytes: 512, partBytes: 256 });
}, 120_000);

afterAll(async () => {
  await coordinator?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Run {
  results: wg.distributed.DataParallelStepResult[];
  params: Float32Array[];
  story: string;
}

/** A replica in a Node process (it prints one JSON line per step and writes its parameters). */
function nodeReplica(name: string, seed: number): Promise<Run> {
  const out = join(dir, `${name}.json`);
  const args = ['scripts/run.mjs', 'test/distributed/replica.ts', '--url', coordinator.url, '--steps', String(STEPS), '--batch', String(BATCH)];
  const child = spawn(process.execPath, [...args, '--seed', String(seed), '--name', name, '--min-replicas', '4', '--wait-links', '--out', out], {
    cwd: repo,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const killer = setTimeout(() => child.kill('SIGKILL'), 150_000);
  return new Promise((done) =>
    child.on('exit', (code) => {
      clearTimeout(killer);
      let params: Float32Array[] = [];
      try {
        params = decodeParams(JSON.parse(readFileSync(out, 'utf8')));
      } catch {
        // not written: the story says why
      }
      const results = stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
      done({ results, params, story: `${name}: exit ${code}\n${stderr.slice(-4000)}` });
    }),
  );
}

describe('data parallelism between browser pages and Node processes', () => {
  it('two pages and two Node processes train together over WebRTC: the ring on the peer links, bit-identical parameters, equal to one device', async () => {
    const pages = await Promise.all([0, 1].map(() => session.browser.newPage()));
    const errors = pages.map(collectErrors);
    await Promise.all(pages.map((p) => p.goto(`${session.url}/test/browser/together.html`)));
    await Promise.all(pages.map((p) => p.waitForFunction(() => document.title === 'ready', null, { timeout: 60_000 })));
    type PageResult = { results: wg.distributed.DataParallelStepResult[]; params: string[]; log: string[] };
    const pageRuns = pages.map((p, i) =>
      p
        .evaluate((o) => (window as unknown as { trainTogether(o: unknown): Promise<PageResult> }).trainTogether(o), {
          url: coordinator.url,
          steps: STEPS,
          batch: BATCH,
          seed: i + 1,
          minReplicas: 4,
          waitLinks: true,
        })
        .then((r): Run => ({ results: r.results, params: decodeParams(r.params), story: `page ${i}:\n${r.log.join('\n')}` })),
    );
    const runs = await Promise.all([...pageRuns, nodeReplica('node-a', 3), nodeReplica('node-b', 4)]);
    const story = runs.map((r) => r.story).join('\n\n');
    for (const r of runs) {
      expect(r.results.map((s) => [s.step, s.worldSize, s.globalBatch, s.samples, s.route]), story).toEqual(
        Array.from({ length: STEPS }, (_, i) => [i, 4, BATCH, BATCH / 4, 'peer']),
      );
    }
    const [first, ...rest] = runs.map((r) => r.params);
    for (const [k, p] of rest.entries()) {
      first!.forEach((t, i) => expect(Buffer.from(t.buffer).equals(Buffer.from(p[i]!.buffer)), `parameter ${i}: replica ${k + 1} differs from the first page`).toBe(true));
    }
    // Rank 0's initial weights are the ones trained: the seed of the replica that joined first.
    const leader = runs.findIndex((r) => r.results[0]!.rank === 0);
    await gpu({ autotune: false });
    const reference = await singleDevice(wg, STEPS, BATCH, leader + 1);
    reference.forEach((p, i) => expect(relErr(first![i]!, p), `parameter ${i} vs one device`).toBeLessThan(1e-5));
    for (const e of errors) expect(e, e.join('\n')).toEqual([]);
    await Promise.all(pages.map((p) => p.close()));
  });
});
