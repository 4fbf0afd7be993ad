// The benchmark's page and driver keep working: quick mode (tiny sizes, one run) in headless
// Chromium, every engine on every work item. Times are not asserted (speed lives in the
// benchmark's ratios); the shape of the report and the engines' agreement are.

import { describe, expect, it } from 'vitest';
import { runBrowserBench } from '../../bench/run';
import type { Engine } from '../../bench/harness/engine';
import { disagreements, markdown } from '../../bench/harness/report';
import type { BenchReport, Result } from '../../bench/harness/results';
import { runSuite } from '../../bench/harness/suite';
import { ENGINES, workloads, type Work } from '../../bench/harness/workloads';

describe('benchmark', () => {
  it('quick mode in headless Chromium: every engine × work item has a time or an error, webgrad never fails, all agree', async () => {
    const report = await runBrowserBench({ quick: true });
    expect(report.adapter?.vendor, 'adapter').toBeTypeOf('string');
    expect(report.browser).toMatch(/^Chromium \d+/);
    expect(Number.isNaN(Date.parse(report.date))).toBe(false);
    for (const work of workloads(true)) {
      for (const engine of ENGINES) {
        const found = report.results.filter((r) => r.work === work.name && r.engine === engine);
        expect(found, `${work.name} × ${engine}`).toHaveLength(1);
        const r = found[0]!;
        if (r.error === undefined) {
          expect(r.median_ms, `${work.name} × ${engine}`).toBeGreaterThan(0);
          expect(r.check, `${work.name} × ${engine}`).toBeTypeOf('number');
        } else {
          expect(r.error).toBeTypeOf('string');
          expect(r.median_ms).toBeUndefined();
        }
        if (engine === 'webgrad') expect(r.error, `webgrad on ${work.name}`).toBeUndefined();
      }
    }
    expect(disagreements(report.results)).toEqual([]);
  }, 170_000);

  it('an engine that fails on a work item gets an error there and the others carry on', async () => {
    const works = workloads(true).filter((w) => w.kind === 'matmul');
    const engine = (name: Engine['name'], fail: (w: Work) => boolean): Engine => ({
      name,
      async prepare(w) {
        if (fail(w)) throw new Error(`no ${w.name} here`);
        let calls = 0;
        return { run: async () => ++calls, dispose: () => {} };
      },
    });
    const results = await runSuite(
      [
        { name: 'webgrad', load: async () => engine('webgrad', () => false) },
        { name: 'tfjs-webgpu', load: async () => engine('tfjs-webgpu', (w) => w.name === works[0]!.name) },
        { name: 'jax-js-webgpu', load: async () => Promise.reject(new Error('no device')) },
      ],
      works,
      { warmup: 1, runs: 3 },
    );
    const get = (work: string, e: string) => results.find((r) => r.work === work && r.engine === e)!;
    expect(results).toHaveLength(works.length * 3);
    expect(get(works[0]!.name, 'tfjs-webgpu').error).toMatch(/no matmul-32 here/);
    expect(get(works[1]!.name, 'tfjs-webgpu').runs_ms).toHaveLength(3);
    expect(get(works[1]!.name, 'jax-js-webgpu').error).toMatch(/could not start: Error: no device/);
    // the check value is the first (warm-up) run's
    expect(get(works[1]!.name, 'webgrad').check).toBe(1);
  });

  it('the markdown table gives the speed-up as peer time over webgrad time, and flags disagreement', () => {
    const result = (engine: Result['engine'], median_ms: number, check: number): Result => ({ work: 'mlp-step', engine, shape: 's', median_ms, check });
    const report: BenchReport = {
      adapter: null,
      browser: 'b',
      date: 'd',
      warmup: 2,
      runs: 5,
      results: [result('webgrad', 10, 2.3), result('tfjs-webgpu', 40, 2.3), { work: 'mlp-step', engine: 'jax-js-webgpu', shape: 's', error: 'boom' }],
    };
    const md = markdown(report);
    expect(md).toContain('| mlp-step | s | 10.0 ms | 40.0 ms | error: boom | 4.00× | — |');
    expect(md).toContain('agrees');
    report.results[1] = result('tfjs-webgpu', 40, 2.4);
    expect(markdown(report)).toContain('disagree');
  });
});
