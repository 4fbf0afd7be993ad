// webgrad's side of the benchmark in Node (the same workloads and runs as the page), on Dawn
// ('webgrad') or on the CPU backend (--only webgrad-wasm): one backend per process, so one engine
// a run. For comparing with the browser figures or running where no browser is.

import * as wg from '../src/node';
import { createEngine } from './harness/webgrad';
import { formatWorkProfiles, profileWorks } from './harness/profile';
import type { BenchReport } from './harness/results';
import { runSuite } from './harness/suite';
import { selectEngines, selectWorks } from './harness/workloads';
import type { BenchOptions } from './run';

export async function runNodeBench(opts: BenchOptions = {}): Promise<BenchReport> {
  const works = selectWorks(!!opts.quick, opts.work);
  const engines = selectEngines(opts.only ?? ['webgrad']);
  if (engines.length !== 1 || !(engines[0] === 'webgrad' || engines[0] === 'webgrad-wasm')) throw new Error('--node runs one engine: webgrad or webgrad-wasm');
  const backend = engines[0] === 'webgrad' ? 'webgpu' : 'wasm';
  const warmup = opts.quick ? 1 : 2;
  const runs = opts.quick ? 1 : 5;
  const info = await wg.init({ backend });
  try {
    const results = await runSuite([{ name: engines[0], load: () => createEngine(backend) }], works, { warmup, runs, onProgress: opts.onProgress });
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
