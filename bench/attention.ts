// Fused attention per kernel configuration, on this machine's adapter, in one run:
//   node scripts/run.mjs bench/attention.ts [--shape 8,4,256,32] [--causal 1] [--runs 5] [--configs "shared wg8,direct wg4"]
//        [--composite] [--pass forward|backward|both]
// For each configuration (src/kernels/tuning/attention-config.ts): the forward pass alone and the
// forward + backward (gradients of q, k, v from an upstream gradient), the median of --runs timed
// runs after one warm-up, each synchronised with wg.sync(); runs are interleaved across
// configurations so that load from other processes falls on all alike. On a software adapter the
// "GPU" is this process's CPU threads, so the CPU time the process used is printed too (it moves
// less than wall time when other programs compete for the cores). Then one profiled run of the
// default configuration (wg.profile: GPU time per kernel). --composite adds webgrad's composite
// (matmul → mask → softmax → matmul) as a baseline. --pass forward (or backward) times only that
// column (for profiling one pass with an external profiler).

import * as wg from '../src/node';
import { runtime } from '../src/runtime/device';
import {
  attentionConfigs,
  defaultAttentionConfig,
  describeAttentionConfig,
  setAttentionConfig,
  type AttentionConfig,
} from '../src/kernels/tuning/attention-config';
import { option } from './harness/args';

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)]!;
}

type Variant = { name: string; config: AttentionConfig | null; run: (backward: boolean) => wg.Tensor[] };

export async function main(args: string[]): Promise<void> {
  const info = await wg.init();
  const [B, H, T, Dh] = (option(args, '--shape') ?? '8,4,256,32').split(',').map(Number) as [number, number, number, number];
  const causal = (option(args, '--causal') ?? '1') !== '0';
  const runs = Number(option(args, '--runs') ?? 5);
  const named = option(args, '--configs')?.split(',');
  const chosen = describeAttentionConfig(defaultAttentionConfig(info));
  console.log(`adapter: ${info.adapterInfo.vendor} ${info.adapterInfo.architecture} ${info.adapterInfo.description}` +
    `${info.adapterInfo.isFallbackAdapter ? ' (fallback)' : ''}; default: ${chosen}; q, k, v ${B}×${H}×${T}×${Dh}${causal ? ', causal' : ''}`);

  const shape = [B, H, T, Dh];
  const [q, k, v] = [1, 2, 3].map((seed) => wg.randn(shape, { seed, requiresGrad: true })) as [wg.Tensor, wg.Tensor, wg.Tensor];
  const dO = wg.randn(shape, { seed: 4 });
  const mask = wg.tensor(Float32Array.from({ length: T * T }, (_, i) => (causal && i % T > Math.floor(i / T) ? -Infinity : 0)), [T, T]);
  const pass = (o: wg.Tensor, backward: boolean): wg.Tensor[] => {
    if (!backward) return [o];
    o.backward(dO);
    const grads = [q.grad!, k.grad!, v.grad!];
    for (const t of [q, k, v]) t.grad = null;
    o.dispose();
    return grads;
  };
  const variants: Variant[] = attentionConfigs(runtime().limits)
    .filter((c) => !named || named.includes(describeAttentionConfig(c)))
    .map((c) => ({ name: describeAttentionConfig(c), config: c, run: (bw) => pass(wg.scaledDotProductAttention(q, k, v, { causal }), bw) }));
  if (args.includes('--composite')) {
    variants.push({
      name: 'composite',
      config: null,
      run: (bw) => pass(wg.tidy(() => wg.matmul(wg.softmax(wg.add(wg.mul(wg.matmul(q, wg.transpose(k, [0, 1, 3, 2])), 1 / Math.sqrt(Dh)), mask), -1), v)), bw),
    });
  }

  const once = async (x: Variant, backward: boolean): Promise<[number, number]> => {
    setAttentionConfig(x.config);
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const outs = backward ? x.run(true) : wg.noGrad(() => x.run(false));
    await wg.sync();
    const dt = performance.now() - t0;
    const used = process.cpuUsage(c0);
    outs.forEach((t) => t.dispose());
    return [dt, (used.user + used.system) / 1000];
  };
  const table = new Map<string, number[][]>(variants.map((x) => [x.name, [[], [], [], []]]));
  const pass_ = option(args, '--pass') ?? 'both';
  const columns = ([[0, false], [2, true]] as const).filter(([, bw]) => pass_ === 'both' || bw === (pass_ === 'backward'));
  for (const x of variants) for (const [, bw] of columns) await once(x, bw);
  for (let r = 0; r < runs; r++) {
    for (const x of variants) {
      for (const [i, bw] of columns) {
        const [dt, cpu] = await once(x, bw);
        table.get(x.name)![i]!.push(dt);
        table.get(x.name)![i + 1]!.push(cpu);
      }
    }
  }
  console.log(`${'config'.padEnd(16)}${'forward ms'.padStart(12)}${'CPU ms'.padStart(10)}${'fwd+bwd ms'.padStart(12)}${'CPU ms'.padStart(10)}`);
  for (const [name, cols] of table) {
    console.log(`${(name + (name === chosen ? ' *' : '')).padEnd(16)}${cols.map((c, i) => (c.length ? median(c).toFixed(1) : '—').padStart(i % 2 ? 10 : 12)).join('')}`);
  }
  console.log('* the default for this adapter');

  setAttentionConfig(null);
  if (info.features.includes('timestamp-query') && !args.includes('--no-profile')) {
    const p = await wg.profile(async () => {
      const outs = pass(wg.scaledDotProductAttention(q, k, v, { causal }), true);
      await wg.sync();
      outs.forEach((t) => t.dispose());
    });
    console.log(`\nprofile of forward + backward with the default configuration:\n${wg.formatProfile(p)}`);
  }
  wg.shutdown();
}
