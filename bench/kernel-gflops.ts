// Matmul throughput per kernel configuration, on this machine's adapter, in one run:
//   node scripts/run.mjs bench/kernel-gflops.ts [--sizes 512,1024] [--runs 5] [--only direct,staged,shared,naive]
//        [--configs "shared 16x8 wg8x8,direct 8x8 wg8x8"] [--all]
// GFLOP/s = 2·n³ / time, the median of --runs timed runs after one warm-up, each synchronised
// with wg.sync(). Runs are interleaved across configurations so that load from other processes
// falls on all of them alike. On a software adapter the "GPU" is this process's CPU threads, so
// a second figure divides by the CPU time the process used instead (GFLOP per CPU-second): it
// moves much less than wall time when other programs compete for the cores. Without --all, the staged family is sampled (it is slow on
// software adapters); every direct and shared configuration and the naive baseline run unless --only
// or --configs (names as the table prints them) narrow the list.

import * as wg from '../src/node';
import { runtime } from '../src/runtime/device';
import {
  defaultMatmulConfig,
  describeConfig,
  matmulConfigs,
  NAIVE_CONFIG,
  setMatmulConfig,
  type MatmulConfig,
} from '../src/kernels/tuning/matmul-config';
import { option } from './harness/args';

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)]!;
}

export async function main(args: string[]): Promise<void> {
  const info = await wg.init({ backend: 'webgpu' }); // the WGSL kernels
  const sizes = (option(args, '--sizes') ?? '512,1024').split(',').map(Number);
  const runs = Math.max(5, Number(option(args, '--runs') ?? 5));
  const only = option(args, '--only')?.split(',');
  const limits = runtime().limits;
  const stagedAll = matmulConfigs(limits, 'staged');
  const staged = args.includes('--all')
    ? stagedAll
    : stagedAll.filter((c) => c.bk === 16 && c.tm === c.tn && ((c.wgX === 16 && c.wgY === 16) || (c.wgX === 8 && c.wgY === 8)));
  const named = option(args, '--configs')?.split(',');
  const configs: MatmulConfig[] = [...matmulConfigs(limits, 'direct'), ...matmulConfigs(limits, 'shared'), ...staged, NAIVE_CONFIG].filter(
    (c) => (!only || only.includes(c.family)) && (!named || named.includes(describeConfig(c))),
  );
  const chosen = describeConfig(defaultMatmulConfig(info));
  console.log(`adapter: ${info.adapterInfo.vendor} ${info.adapterInfo.architecture} ${info.adapterInfo.description}` +
    `${info.adapterInfo.isFallbackAdapter ? ' (fallback)' : ''}; default: ${chosen}`);

  const table = new Map<string, number[]>();
  for (const n of sizes) {
    const a = wg.randn([n, n], { seed: 1 });
    const b = wg.randn([n, n], { seed: 2 });
    const wall = new Map<MatmulConfig, number[]>(configs.map((c) => [c, []]));
    const cpu = new Map<MatmulConfig, number[]>(configs.map((c) => [c, []]));
    const once = async (c: MatmulConfig): Promise<[number, number]> => {
      setMatmulConfig(c);
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const out = wg.matmul(a, b);
      await wg.sync();
      const dt = performance.now() - t0;
      const used = process.cpuUsage(c0);
      out.dispose();
      return [dt, (used.user + used.system) / 1000];
    };
    for (const c of configs) await once(c); // warm-up: pipeline compilation, first-touch
    for (let r = 0; r < runs; r++) {
      for (const c of configs) {
        const [dt, cpuMs] = await once(c);
        wall.get(c)!.push(dt);
        cpu.get(c)!.push(cpuMs);
      }
    }
    const flop = 2 * n ** 3;
    for (const c of configs) {
      const row = table.get(describeConfig(c)) ?? [];
      row.push(flop / median(wall.get(c)!) / 1e6, flop / median(cpu.get(c)!) / 1e6);
      table.set(describeConfig(c), row);
    }
    a.dispose();
    b.dispose();
  }
  setMatmulConfig(null);

  const header = ['config'.padEnd(28), ...sizes.flatMap((n) => [`${n}² GFLOP/s`.padStart(15), 'per CPU-s'.padStart(11)])].join('');
  console.log(header);
  for (const [name, row] of table) {
    const mark = name === chosen ? ' *' : '';
    console.log([(name + mark).padEnd(28), ...row.map((g, i) => g.toFixed(2).padStart(i % 2 ? 11 : 15))].join(''));
  }
  console.log('* the default for this adapter');
  wg.shutdown();
}
