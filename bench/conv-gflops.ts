// conv2d throughput: GFLOP/s of the forward pass, the input gradient and the weight gradient at
// one layer size (default: N=32 C=32 28×28 O=64 k=5 padding 2, the second layer of a small CNN).
// Each figure is 2·N·O·OH·OW·C·kH·kW over the median of several timed runs after a warm-up,
// synchronised with the GPU. The gradients are timed through backward() with only the input (or
// only the weight) requiring grad, so each run executes that one kernel (plus its weight repack).
//
//   node scripts/run.mjs bench/conv-gflops.ts [N C H W O k padding stride] [--runs R]

import * as wg from '../src/node';

interface Case { N: number; C: number; H: number; W: number; O: number; k: number; padding: number; stride: number }

export async function main(args: string[]): Promise<void> {
  const runsAt = args.indexOf('--runs');
  const runs = runsAt >= 0 ? Number(args[runsAt + 1]) : 5;
  const nums = (runsAt >= 0 ? [...args.slice(0, runsAt), ...args.slice(runsAt + 2)] : args).map(Number);
  const [N = 32, C = 32, H = 28, W = 28, O = 64, k = 5, padding = 2, stride = 1] = nums;
  const c: Case = { N, C, H, W, O, k, padding, stride };
  const info = await wg.init({ backend: 'webgpu' }); // the WGSL kernels
  console.log(`adapter: ${info.adapterInfo.vendor} ${info.adapterInfo.architecture} ${info.adapterInfo.description}`.trim());
  const x = wg.randn([N, C, H, W], { seed: 1 });
  const w = wg.mul(wg.randn([O, C, k, k], { seed: 2 }), 0.05);
  const b = wg.randn([O], { seed: 3 });
  const opts = { padding, stride };
  const OH = Math.floor((H + 2 * padding - k) / stride) + 1;
  const OW = Math.floor((W + 2 * padding - k) / stride) + 1;
  const flops = 2 * N * O * OH * OW * C * k * k;
  const dy = wg.randn([N, O, OH, OW], { seed: 4 });
  console.log(`conv2d N=${N} C=${C} ${H}×${W} O=${O} k=${k} padding=${padding} stride=${stride}: ${(flops / 1e9).toFixed(3)} GFLOP per pass, median of ${runs}`);

  // Other processes share this machine's cores: the CPU time this process used (SwiftShader's
  // threads are the GPU here) shows the kernels' cost when the wall clock is disturbed.
  const report = (what: string, t: Timing) =>
    console.log(
      `${what.padEnd(12)} ${t.wallMs.toFixed(1).padStart(8)} ms  ${(flops / t.wallMs / 1e6).toFixed(2).padStart(6)} GFLOP/s` +
        `   (${t.cpuMs.toFixed(0)} CPU-ms, ${(flops / t.cpuMs / 1e6).toFixed(2)} GFLOP per CPU-second)`,
    );

  report('forward', await time(runs, async () => {
    wg.conv2d(x, w, b, opts).dispose();
  }));

  // The backward timings exclude the forward pass that builds the graph.
  const backwardOf = (xGrad: boolean) => async (measure: (f: () => Promise<void>) => Promise<void>) => {
    const xi = wg.tidy(() => wg.mul(x, 1));
    const wi = wg.tidy(() => wg.mul(w, 1));
    xi.requiresGrad = xGrad;
    wi.requiresGrad = !xGrad;
    const out = wg.conv2d(xi, wi, null, opts);
    await wg.sync();
    await measure(async () => out.backward(dy));
    out.dispose();
    xi.dispose();
    wi.dispose();
  };
  report('grad input', await timeSplit(runs, backwardOf(true)));
  report('grad weight', await timeSplit(runs, backwardOf(false)));
  wg.shutdown();
}

interface Timing {
  wallMs: number;
  cpuMs: number;
}

/** Median wall and CPU milliseconds of `runs` calls of f (after one warm-up), each waited for on the GPU. */
async function time(runs: number, f: () => Promise<void>): Promise<Timing> {
  return timeSplit(runs, async (measure) => measure(f));
}

/** Like time(), for work with an untimed setup: `run` calls measure(f) around the timed part. */
async function timeSplit(runs: number, run: (measure: (f: () => Promise<void>) => Promise<void>) => Promise<void>): Promise<Timing> {
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i <= runs; i++) {
    await run(async (f) => {
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      await f();
      await wg.sync();
      const c = process.cpuUsage(c0);
      if (i > 0) {
        wall.push(performance.now() - t0);
        cpu.push((c.user + c.system) / 1000);
      }
    });
  }
  return { wallMs: median(wall), cpuMs: median(cpu) };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}
