import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { wg } from '../helpers';
import { autotuner } from '../../src/kernels/tuning/autotune';
import { setTuningStore, type TuningStore } from '../../src/kernels/tuning/tuning-store';
import { invalidReason, tuningCandidates, describeConfig, defaultMatmulConfig } from '../../src/kernels/tuning/matmul-config';
import { runtime } from '../../src/runtime/device';
import { attentionTuningCandidates, describeAttentionConfig } from '../../src/kernels/tuning/attention-config';

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

  it('attention: times its candidates on forward and backward together, keeps the fastest, and the tuned op computes the same', async () => {
    wg.shutdown();
    await wg.init({ autotune: false });
    const [q, k, v] = [1, 2, 3].map((seed) => wg.randn([1, 2, 9, 8], { seed }));
    const untuned = await wg.scaledDotProductAttention(q!, k!, v!, { causal: true }).toArray();
    wg.shutdown();
    await wg.init({ autotune: true });
    autotuner().reset();
    const [q2, k2, v2] = [1, 2, 3].map((seed) => wg.randn([1, 2, 9, 8], { seed }));
    const results = await wg.autotune(() => wg.scaledDotProductAttention(q2!, k2!, v2!, { causal: true }));
    const r = results.find((x) => x.kernel === 'attention')!;
    const candidates = attentionTuningCandidates(runtime().info);
    expect(candidates.length).toBeGreaterThan(1);
    expect(Object.keys(r.timings).sort()).toEqual(candidates.map(describeAttentionConfig).sort());
    expect(r.winner).toBe(Object.entries(r.timings).sort((x, y) => x[1] - y[1])[0]![0]);
    const tuned = await wg.scaledDotProductAttention(q2!, k2!, v2!, { causal: true }).toArray();
    tuned.forEach((x, i) => expect(Math.abs(x - untuned[i]!)).toBeLessThan(1e-6));
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

describe('tuning between steps, with progress', () => {
  it('a Trainer takes its first step on the defaults and tunes before its second; with tuneBeforeSteps: false, never', async () => {
    wg.shutdown();
    await wg.init({ autotune: true });
    autotuner().reset();
    const tune = vi.spyOn(autotuner(), 'tune').mockResolvedValue([]); // only whether and when it is called counts here
    const x = wg.randn([6, 20], { seed: 3 });
    const y = wg.tensor([0, 1, 2, 3, 4, 0], [6], { dtype: 'int32' });
    for (const tuneBeforeSteps of [true, false]) {
      tune.mockClear();
      const model = new wg.nn.Linear(20, 5);
      const optimizer = new wg.optim.SGD(model.parameters(), { lr: 0.1 });
      const trainer = new wg.Trainer({ model, optimizer, loss: 'cross-entropy', tuneBeforeSteps });
      await trainer.step(x, y);
      expect(tune).not.toHaveBeenCalled();
      expect(autotuner().hasPending).toBe(true); // the first step's shape classes wait
      await trainer.step(x, y);
      expect(tune).toHaveBeenCalledTimes(tuneBeforeSteps ? 1 : 0);
      for (const t of [...model.parameters(), ...Object.values(optimizer.stateDict().state).flatMap((st) => Object.values(st.buffers))]) t.dispose();
    }
    tune.mockRestore();
    for (const t of [x, y]) t.dispose();
  });

  it('wg.autotune() reports each shape class and candidate as it goes, and stops between candidates when asked', async () => {
    wg.shutdown();
    await wg.init({ autotune: true });
    autotuner().reset();
    const product = () => wg.matmul(wg.zeros([40, 24]), wg.zeros([24, 36]));

    // Stopped after the first candidate: nothing is kept, the shape class waits for the next call.
    const stop = new AbortController();
    const seen: wg.TuningProgress[] = [];
    const stopped = await wg.autotune(product, {
      signal: stop.signal,
      onProgress: (p) => {
        seen.push(p);
        if (p.candidate === 1) stop.abort();
      },
    });
    expect(stopped).toEqual([]);
    expect(seen.map((p) => p.candidate)).toEqual([0, 1]);
    expect(autotuner().hasPending).toBe(true);

    // Without fn: what ops met before. A report as it starts (candidate 0), one per candidate, the verdict with the last.
    const progress: wg.TuningProgress[] = [];
    const [result, ...more] = await wg.autotune(null, { onProgress: (p) => progress.push(p) });
    expect(more).toEqual([]);
    expect(autotuner().hasPending).toBe(false);
    const n = tuningCandidates(runtime().info).length;
    expect(progress.map((p) => p.candidate)).toEqual(Array.from({ length: n + 1 }, (_, k) => k));
    expect(progress.every((p) => p.kernel === 'matmul' && p.problem === 1 && p.problems === 1 && p.candidates === n)).toBe(true);
    expect(progress.at(-1)!.result).toEqual(result);
    expect(progress.slice(0, -1).every((p) => p.result === null)).toBe(true);
  });
});
