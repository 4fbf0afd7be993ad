// Where webgrad's time goes in the benchmark's work items, on Dawn in Node (on a machine without
// a GPU this is the same SwiftShader that Chromium uses):
//
//   node scripts/run.mjs bench/profile.ts [--work mlp-step,cnn-step,matmul-1024] [--steps 5] [--quick]
//
// (--steps: warm runs timed, and runs timed per dispatch; each dispatch's GPU time is the median.)
//
// For each work item, as bench/harness/webgrad.ts runs it:
//  - the first (cold) run, and how much of it is pipeline creation (Dawn compiles shaders there);
//  - warm runs: wall time, split into recording (CPU, until the read-back starts) and waiting,
//    with the dispatches, submissions and read-backs per run;
//  - runs profiled by wg.profile (every dispatch in its own compute pass, timed on the GPU with
//    timestamp queries): GPU time per kernel, summed by kernel name. Wall time minus GPU time
//    is what the CPU, submissions and the read-back add.

import * as wg from '../src/node';
import { runtime } from '../src/runtime/device';
import { createEngine } from './harness/webgrad';
import { formatTime } from './harness/report';
import { median } from './harness/timing';
import { describe, selectWorks, workData } from './harness/workloads';
import { option } from './harness/args';

export async function main(args: string[]): Promise<void> {
  const opt = (name: string) => option(args, name);
  const quick = args.includes('--quick');
  const works = selectWorks(quick, opt('--work')?.split(',') ?? (quick ? undefined : ['matmul-1024', 'mlp-step', 'cnn-step']));
  const steps = Number(opt('--steps') ?? 5);
  const info = await wg.init({ backend: 'webgpu' });
  if (!info.features.includes('timestamp-query')) throw new Error('the adapter has no timestamp-query: GPU times per kernel need it');
  const engine = await createEngine();
  const rt = runtime();
  const ex = rt.executor;
  console.log(`adapter: ${info.adapterInfo.vendor} ${info.adapterInfo.architecture} ${info.adapterInfo.description}`.trim());

  // Counters around the executor (instance properties shadow its methods; nothing in src changes).
  let flushes = 0;
  let reads = 0;
  let readStartedAt = 0;
  let compileMs = 0;
  let compiles = 0;
  const flush = ex.flush.bind(ex);
  ex.flush = () => {
    flushes++;
    flush();
  };
  const read = ex.read.bind(ex);
  ex.read = (buffer, offset, size) => {
    reads++;
    readStartedAt = performance.now();
    return read(buffer, offset, size);
  };
  const pipelines = ex.pipelines!;
  const getPipeline = pipelines.get.bind(pipelines);
  pipelines.get = (kernel, constants) => {
    const before = pipelines.size;
    const t0 = performance.now();
    const p = getPipeline(kernel, constants);
    if (pipelines.size > before) {
      compiles++;
      compileMs += performance.now() - t0;
    }
    return p;
  };

  for (const work of works) {
    console.log(`\n== ${work.name}: ${describe(work)}`);
    const prepared = await engine.prepare(work, workData(work));
    await wg.sync();

    const t0 = performance.now();
    await prepared.run();
    console.log(`first run ${formatTime(performance.now() - t0)}, of which ${formatTime(compileMs)} creating ${compiles} pipelines`);
    compileMs = 0;
    compiles = 0;
    await prepared.run(); // a second warm-up, as the benchmark does

    const wall: number[] = [];
    const recording: number[] = [];
    const cpu: number[] = [];
    let perRun = { dispatches: 0, flushes: 0, reads: 0 };
    for (let i = 0; i < steps; i++) {
      const d0 = ex.dispatchCount;
      flushes = 0;
      reads = 0;
      const c0 = process.cpuUsage();
      const s = performance.now();
      await prepared.run();
      const end = performance.now();
      const c = process.cpuUsage(c0);
      wall.push(end - s);
      recording.push(readStartedAt - s);
      cpu.push((c.user + c.system) / 1000);
      perRun = { dispatches: ex.dispatchCount - d0, flushes, reads };
    }
    const w = median(wall);
    const rec = median(recording);
    console.log(
      `warm run ${formatTime(w)} (median of ${steps}): recording ${formatTime(rec)} on the CPU, then ${formatTime(w - rec)} waiting for the GPU and the read-back; ` +
        `${perRun.dispatches} dispatches, ${perRun.flushes} submissions, ${perRun.reads} read-backs; ` +
        `process CPU time ${formatTime(median(cpu))} (SwiftShader's threads included)`,
    );

    const g0 = performance.now();
    const timedRuns: KernelTime[][] = [];
    for (let i = 0; i < steps; i++) timedRuns.push(await gpuTimes(prepared.run));
    const gpuWall = (performance.now() - g0) / steps;
    const kernels = timedRuns[0]!.map((k, i) => ({ ...k, ms: median(timedRuns.map((r) => r[i]!.ms)) }));
    const total = kernels.reduce((s, k) => s + k.ms, 0);
    const byName = new Map<string, { n: number; ms: number }>();
    for (const k of kernels) {
      const e = byName.get(k.name) ?? { n: 0, ms: 0 };
      e.n++;
      e.ms += k.ms;
      byName.set(k.name, e);
    }
    console.log(
      `GPU time ${formatTime(total)} in ${kernels.length} dispatches (medians of ${steps} runs of ${formatTime(gpuWall)} on average, ` +
        `one compute pass per dispatch); the warm run's wall time − GPU time = ${formatTime(w - total)}:`,
    );
    console.log(`  ${'kernel'.padEnd(28)}${'dispatches'.padStart(11)}${'GPU time'.padStart(12)}${'share'.padStart(8)}`);
    for (const [name, e] of [...byName].sort((a, b) => b[1].ms - a[1].ms)) {
      console.log(`  ${name.padEnd(28)}${String(e.n).padStart(11)}${formatTime(e.ms).padStart(12)}${`${((100 * e.ms) / total).toFixed(1)}%`.padStart(8)}`);
    }
    console.log('  each dispatch, in order:');
    for (const k of kernels) {
      console.log(`    ${k.name.padEnd(26)} ${String(k.workgroups).padStart(7)} workgroups ${formatTime(k.ms).padStart(10)}  ${k.constants}`);
    }
    prepared.dispose();
  }
  wg.shutdown();
}

interface KernelTime {
  name: string;
  workgroups: number;
  constants: string;
  ms: number;
}

/** One run profiled by wg.profile (a compute pass per dispatch, timed by timestamp queries): each dispatch's GPU time, in order. */
async function gpuTimes(run: () => Promise<number>): Promise<KernelTime[]> {
  const p = await wg.profile(run);
  return p.dispatches.map((d) => ({
    name: d.kernel,
    workgroups: d.workgroups,
    constants: Object.entries(d.constants).map(([k, v]) => `${k}=${v}`).join(' '),
    ms: d.gpuMs!,
  }));
}
