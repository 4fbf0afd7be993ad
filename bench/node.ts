// webgrad's side of the benchmark on Dawn in Node (the same workloads and runs as the page),
// for comparing with the browser figures or running where no browser is.

import * as wg from '../src/node';
import { createEngine } from './harness/webgrad';
import { formatWorkProfiles, profileWorks } from './harness/profile';
import type { BenchReport } from './harness/results';
import { runSuite } from './harness/suite';
import { selectEngines, selectWorks } from './harness/workloads';
import type { BenchOptions } from './run';

export async function runNodeBench(opts: BenchOptions = {}): Promise<BenchReport> {
  const works = selectWorks(!!opts.quick, opts.work);
  if (!selectEngines(opts.only).includes('webgrad')) throw new Error('--node runs webgrad only');
  const warmup = opts.quick ? 1 : 2;
  const runs = opts.quick ? 1 : 5;
  const info = await wg.init();
  try {
    const results = await runSuite([{ name: 'webgrad', load: createEngine }], works, { warmup, runs, onProgress: opts.onProgress });
    if (opts.profile) console.log(`\n${formatWorkProfiles(await profileWorks({ quick: opts.quick, works: opts.work }))}`);
    return {
      adapter: info.adapterInfo,
      browser: `Node ${process.version}, Dawn (webgpu package)`,
      date: new Date().toISOString(),
      warmup,
      runs,
      results,
    };
  } finally {
    wg.shutdown();
  }
}
