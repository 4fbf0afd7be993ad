// The CPU engines' CPU time per run, beside their wall time, in headless Chromium (Linux only):
//
//   node scripts/run.mjs bench/cpu-time.ts [--engines webgrad-wasm,jax-js-wasm] [--work mlp-step,gpt-step] [--reps 3]
//
// Wall time on a machine that other programs share moves with their load (medians of `npm run
// bench` swing by tens of percent from one run to the next); the CPU time a run costs moves much
// less. It is read here from /proc for every process of the browser that this script starts (the
// page's renderer holds every engine's Worker and threads), before and after `reps` runs of one
// engine, the engines taking turns for three rounds. It counts all threads of an engine, so it
// measures the work an engine does, not how well it shares it between threads. Resolution: 10 ms
// (the kernel's clock tick) per reading; choose `reps` so that a turn takes a few hundred ms.

import { readdirSync, readFileSync } from 'node:fs';
import { launchChromium, startDevServer } from '../test/browser/harness';
import type { CpuTimeOptions } from './cpu-time-page';
import { option } from './harness/args';

/** utime + stime (ms) of `root` and every process below it. */
function treeCpuMs(root: number): number {
  const parent = new Map<number, number>();
  const cpu = new Map<number, number>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const s = readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      parent.set(Number(d), Number(f[1]));
      cpu.set(Number(d), (Number(f[11]) + Number(f[12])) * 10);
    } catch {
      // the process ended meanwhile
    }
  }
  let total = 0;
  for (const [pid, ms] of cpu) {
    let p: number | undefined = pid;
    while (p && p !== root) p = parent.get(p);
    if (p === root) total += ms;
  }
  return total;
}

export async function main(args: string[]): Promise<void> {
  const flag = (name: string) => option(args, name);
  const o: CpuTimeOptions = {
    engines: (flag('--engines') ?? 'webgrad-wasm,jax-js-wasm').split(',') as CpuTimeOptions['engines'],
    works: (flag('--work') ?? 'matmul-1024,mlp-step,layernorm-fwd-bwd,attention-fwd-bwd,gpt-step').split(','),
    reps: Number(flag('--reps') ?? 3),
  };
  const { url, server } = await startDevServer();
  try {
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      await page.exposeFunction('cpuMs', () => treeCpuMs(process.pid));
      await page.goto(`${url}/bench/cpu-time.html`);
      await page.waitForFunction(() => typeof (window as unknown as { runCpuTime?: unknown }).runCpuTime === 'function', null, { timeout: 60_000 });
      const lines = await page.evaluate((x) => (window as unknown as { runCpuTime(o: CpuTimeOptions): Promise<string[]> }).runCpuTime(x), o);
      console.log(lines.join('\n'));
    } finally {
      await browser.close();
    }
  } finally {
    await server.close();
  }
}
