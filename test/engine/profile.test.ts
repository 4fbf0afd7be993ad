import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectClose, gpu, gpuTensor, Rng, wg } from '../helpers';
import { autotuner } from '../../src/kernels/tuning/autotune';

beforeAll(() => gpu());
afterAll(() => wg.shutdown());

const M = 33;
const K = 17;
const N = 9;

/** relu(A·B) + 1 in float64. */
function reference(a: Float64Array, b: Float64Array): Float64Array {
  const out = new Float64Array(M * N);
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += a[i * K + k]! * b[k * N + j]!;
      out[i * N + j] = Math.max(0, s) + 1;
    }
  }
  return out;
}

/** Bytes a whole-tensor binding binds: the data, rounded up to 16 bytes (vec4 views). */
const bound = (elements: number) => Math.ceil((elements * 4) / 16) * 16;

function inputs(): { rng: Rng; a: Float64Array; b: Float64Array; ta: wg.Tensor; tb: wg.Tensor } {
  const rng = new Rng();
  const a = rng.array(M * K);
  const b = rng.array(K * N);
  return { rng, a, b, ta: gpuTensor(a, [M, K]), tb: gpuTensor(b, [K, N]) };
}

/** matmul, relu, add a scalar; read back. */
async function work(ta: wg.Tensor, tb: wg.Tensor): Promise<Float32Array> {
  const c = wg.tidy(() => wg.matmul(ta, tb).relu().add(1));
  try {
    return (await c.toArray()) as Float32Array;
  } finally {
    c.dispose();
  }
}

describe('wg.profile', () => {
  it('times each kernel with timestamp queries: calls, bytes bound, GPU times grouped by op, and the same results', async () => {
    const info = await wg.init();
    expect(info.features).toContain('timestamp-query'); // SwiftShader has it; the fallback test below covers the rest
    const { rng, a, b, ta, tb } = inputs();
    const pending = wg.relu(ta); // recorded before the profile, not submitted: not part of it
    const p = await wg.profile(() => work(ta, tb));
    expectClose(p.result, reference(a, b), { seed: rng.seed, what: 'relu(A·B) + 1 while profiling' });

    expect(p.timestamps).toBe(true);
    expect(p.dispatches.map((d) => d.op)).toEqual(['matmul', 'unary', 'unary']);
    const [mm, relu, add] = p.dispatches;
    expect(mm!.kernel).toMatch(/^matmul\./);
    expect(mm!.bytes).toBe(bound(M * K) + bound(K * N) + bound(M * N));
    expect(relu!.bytes).toBe(2 * bound(M * N));
    expect(add!.bytes).toBe(2 * bound(M * N));
    expect(mm!.workgroups).toBeGreaterThan(0);

    // GPU times: non-negative, passes in submission order without overlap, summing to the total.
    let end = 0;
    for (const d of p.dispatches) {
      expect(d.gpuMs).toBeGreaterThanOrEqual(0);
      expect(d.startMs).toBeGreaterThanOrEqual(end - 1e-6);
      end = d.startMs! + d.gpuMs!;
    }
    expect(p.dispatches[0]!.startMs).toBe(0);
    expect(p.totalGpuMs).toBeCloseTo(p.dispatches.reduce((s, d) => s + d.gpuMs!, 0), 9);
    expect(p.totalGpuMs!).toBeGreaterThan(0);
    expect(p.totalGpuMs!).toBeLessThanOrEqual(p.wallMs);

    // Per kernel and per op: sums of the dispatches, most GPU time first.
    expect(p.kernels.map((k) => [k.kernel, k.op, k.calls, k.bytes]).sort()).toEqual(
      [
        [mm!.kernel, 'matmul', 1, mm!.bytes],
        ['unary', 'unary', 2, relu!.bytes + add!.bytes],
      ].sort(),
    );
    expect(p.kernels.find((k) => k.kernel === 'unary')!.gpuMs).toBeCloseTo(relu!.gpuMs! + add!.gpuMs!, 9);
    expect(p.byOp.map((o) => [o.op, o.calls]).sort()).toEqual([['matmul', 1], ['unary', 2]]);
    for (const list of [p.kernels, p.byOp]) {
      for (let i = 1; i < list.length; i++) expect(list[i - 1]!.gpuMs!).toBeGreaterThanOrEqual(list[i]!.gpuMs!);
    }
    // The read-back submitted everything: one submission carrying the three dispatches.
    expect(p.submissions.reduce((s, x) => s + x.dispatches, 0)).toBe(3);

    const table = wg.formatProfile(p);
    expect(table).toMatch(/^kernel\s+calls\s+GPU time\s+share\s+bytes bound/);
    expect(table).toContain(mm!.kernel);
    expect(table).toMatch(/3 dispatches, .* GPU time/);
    expect(wg.formatProfile(p, { byOp: true })).toMatch(/^op\s+calls[\s\S]*\nmatmul\s+1\s/m);

    // Outside the profile, dispatches share passes again and nothing is observed.
    expect(Array.from(await pending.toArray())).toEqual(Array.from(a, (v) => Math.max(0, Math.fround(v))));
    for (const t of [pending, ta, tb]) t.dispose();
  });

  it('without timestamp queries: wall time per submission, no GPU time per kernel', async () => {
    const { rng, a, b, ta, tb } = inputs();
    const p = await wg.profile(
      async () => {
        const first = await work(ta, tb); // two read-backs: two submissions
        await work(ta, tb);
        return first;
      },
      { timestamps: false },
    );
    expectClose(p.result, reference(a, b), { seed: rng.seed });
    expect(p.timestamps).toBe(false);
    expect(p.totalGpuMs).toBeNull();
    expect(p.dispatches).toHaveLength(6);
    expect(p.dispatches.every((d) => d.gpuMs === null && d.startMs === null)).toBe(true);
    expect(p.kernels.every((k) => k.gpuMs === null)).toBe(true);
    expect(p.byOp.map((o) => [o.op, o.calls]).sort()).toEqual([['matmul', 2], ['unary', 4]]);
    expect(p.submissions.map((s) => s.dispatches)).toEqual([3, 3]);
    for (const s of p.submissions) expect(s.wallMs).toBeGreaterThanOrEqual(0);
    expect(p.wallMs).toBeGreaterThan(0);
    expect(wg.formatProfile(p)).toMatch(/6 dispatches in 2 submissions, .* wall time \(no timestamp queries/);
    ta.dispose();
    tb.dispose();
  });

  it('autotuning inside a profile is not part of it (its timing runs are not the caller\'s work)', async () => {
    const { ta, tb } = inputs();
    const tuner = autotuner();
    try {
      const p = await wg.profile(async () => {
        const first = wg.matmul(ta, tb); // untuned (the tuner is off until now)
        tuner.enabled = true;
        // A problem whose timing runs dispatch relu: none of them may show up in the profile.
        tuner.pick('profile-test', 'relu', {
          candidates: [1, 2],
          fallback: 1,
          id: String,
          prepare: () => ({ run: () => wg.relu(ta).dispose(), dispose: () => undefined }),
        });
        const tuned = await tuner.tune();
        expect(tuned.map((r) => r.kernel)).toEqual(['profile-test']);
        const v = await first.toArray();
        first.dispose();
        return v;
      });
      expect(p.dispatches.map((d) => d.op)).toEqual(['matmul']);
      expect(p.submissions.reduce((s, x) => s + x.dispatches, 0)).toBe(1);
    } finally {
      tuner.enabled = false;
    }
    ta.dispose();
    tb.dispose();
  });

  it('profiles do not nest; a failing function leaves no profile behind', async () => {
    const { ta, tb } = inputs();
    await expect(wg.profile(() => wg.profile(() => 0))).rejects.toThrowError(/profiles do not nest/);
    await expect(
      wg.profile(() => {
        wg.matmul(ta, tb).dispose();
        throw new Error('boom');
      }),
    ).rejects.toThrowError('boom');
    const p = await wg.profile(() => work(ta, tb));
    expect(p.dispatches).toHaveLength(3);
    ta.dispose();
    tb.dispose();
  });
});
