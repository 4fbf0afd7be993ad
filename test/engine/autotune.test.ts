import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { wg } from '../helpers';
import { autotuner } from '../../src/kernels/tuning/autotune';
import { setTuningStore, type TuningStore } from '../../src/kernels/tuning/tuning-store';
import { invalidReason, tuningCandidates, describeConfig, defaultMatmulConfig } from '../../src/kernels/tuning/matmul-config';
import { runtime } from '../../src/runtime/device';

const file = join(mkdtempSync(join(tmpdir(), 'webgrad-tune-')), 'tuning.json');
const store: TuningStore = {
  load: () => {
    try {
      return JSON.parse(readFileSync(file, 'utf8'));
    } catch {
      return {};
    }
  },
  save: (all) => writeFileSync(file, JSON.stringify(all)),
};
setTuningStore(store);

afterAll(() => wg.shutdown());

async function product(): Promise<Float32Array> {
  const a = wg.randn([40, 24], { seed: 1 });
  const b = wg.randn([24, 36], { seed: 2 });
  const c = wg.matmul(a, b);
  const out = (await c.toArray()) as Float32Array;
  for (const t of [a, b, c]) t.dispose();
  return out;
}

describe('the autotuner', () => {
  it('times only configurations the device allows, and keeps the fastest', async () => {
    wg.shutdown();
    await wg.init({ autotune: true });
    const limits = runtime().limits;
    const candidates = tuningCandidates(runtime().info);
    expect(candidates.length).toBeGreaterThan(1);
    for (const c of candidates) expect(invalidReason(c, limits), describeConfig(c)).toBeNull();
    const results = await wg.autotune(() => wg.matmul(wg.zeros([40, 24]), wg.zeros([24, 36])));
    expect(results).toHaveLength(1);
    const [r] = results;
    expect(Object.keys(r!.timings).sort()).toEqual(candidates.map(describeConfig).sort());
    const best = Object.entries(r!.timings).sort((x, y) => x[1] - y[1])[0]![0];
    expect(r!.winner).toBe(best);
    // Persisted under this adapter; the tuned product equals the untuned one's math.
    expect(JSON.stringify(store.load())).toContain(r!.winner);
    const tuned = await product();
    expect(tuned.every(Number.isFinite)).toBe(true);
  });

  it('a new run starts tuned from the store, and ignores a stored choice the device cannot run', async () => {
    wg.shutdown();
    await wg.init({ autotune: true });
    await wg.autotune(() => wg.matmul(wg.zeros([40, 24]), wg.zeros([24, 36])));
    expect(autotuner().history).toHaveLength(0); // nothing left to time
    // A stored winner that is not among this device's candidates is not used.
    const all = store.load();
    for (const k of Object.keys(all)) for (const c of Object.keys(all[k]!)) all[k]![c] = 'staged 8x8 wg32x32 bk64';
    store.save(all);
    wg.shutdown();
    await wg.init({ autotune: true });
    const [r] = await wg.autotune(() => wg.matmul(wg.zeros([40, 24]), wg.zeros([24, 36])));
    expect(r).toBeDefined(); // timed afresh
  });

  it('with tuning off, every product uses the untuned default: the same bits every run', async () => {
    wg.shutdown();
    await wg.init({ autotune: false });
    expect(await wg.autotune(() => wg.matmul(wg.zeros([40, 24]), wg.zeros([24, 36])))).toEqual([]);
    const x = await product();
    wg.shutdown();
    await wg.init({ autotune: false });
    expect(Array.from(await product())).toEqual(Array.from(x));
    expect(defaultMatmulConfig(runtime().info)).toEqual(defaultMatmulConfig(runtime().info));
  });
});
