// The benchmark driver: headless Chromium runs bench/bench.html (webgrad, TF.js and jax-js on the
// same WebGPU adapter), or with --node webgrad alone runs on Dawn in this process.
//
//   npm run bench [-- --quick] [--only webgrad,tfjs-webgpu] [--work matmul-1024,mlp-step] [--node] [--profile]
//
// --profile: after the runs, webgrad's per-kernel table (wg.profile) for each work item.
//
// Writes bench-results.json and bench-results.md (with --node: bench-results-node.*) and prints
// progress as each run finishes.

import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import type { PageOptions } from './bench';
import { formatProgress, markdown } from './harness/report';
import { formatWorkProfiles } from './harness/profile';
import type { BenchReport, Progress } from './harness/results';
import { selectEngines, selectWorks } from './harness/workloads';
import { collectErrors, launchChromium, startDevServer } from '../test/browser/harness';
import { option } from './harness/args';

export interface BenchOptions {
  quick?: boolean;
  /** Engine names (default: all). */
  only?: string[];
  /** Work item names (default: all). */
  work?: string[];
  /** Also print webgrad's per-kernel profile (wg.profile) of each work item. */
  profile?: boolean;
  onProgress?: (p: Progress) => void;
}

/** Run the benchmark page in headless Chromium and return its report. */
export async function runBrowserBench(opts: BenchOptions = {}): Promise<BenchReport> {
  // Fail on a misspelt name here, before a browser starts.
  selectWorks(!!opts.quick, opts.work);
  selectEngines(opts.only);
  const { url, server } = await startDevServer();
  try {
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      const errors = collectErrors(page);
      await page.exposeFunction('benchProgress', (p: Progress) => opts.onProgress?.(p));
      await page.goto(`${url}/bench/bench.html`);
      await page.waitForFunction(() => typeof window.runBench === 'function', null, { timeout: 60_000 });
      const pageOptions: PageOptions = { quick: opts.quick, engines: opts.only, works: opts.work };
      const report = await page.evaluate((o) => window.runBench(o), pageOptions);
      if (opts.profile) console.log(`\n${formatWorkProfiles(await page.evaluate((o) => window.profileBench(o), pageOptions))}`);
      if (errors.length) console.warn(`the page logged errors:\n${errors.join('\n')}`);
      return { ...report, browser: `Chromium ${browser.version()} (headless)` };
    } finally {
      await browser.close();
    }
  } finally {
    await server.close();
  }
}

export async function main(args: string[]): Promise<void> {
  const list = (name: string) => option(args, name)?.split(',').filter(Boolean);
  const node = args.includes('--node');
  const opts: BenchOptions = {
    quick: args.includes('--quick'),
    only: list('--only'),
    work: list('--work'),
    profile: args.includes('--profile'),
    onProgress: (p) => console.log(formatProgress(p)),
  };
  const before = loadavg();
  console.log(`load average before: ${before.map((x) => x.toFixed(2)).join(' ')} (${cpus().length} cores)`);
  const report = node ? await (await import('./node')).runNodeBench(opts) : await runBrowserBench(opts);
  report.load = { cores: cpus().length, before, after: loadavg() };
  const base = node ? 'bench-results-node' : 'bench-results';
  const md = markdown(report);
  writeFileSync(`${base}.json`, JSON.stringify(report, null, 2) + '\n');
  writeFileSync(`${base}.md`, md);
  console.log(`\n${md}\nwrote ${base}.json and ${base}.md`);
}
