import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mT, narrow } from '../../src/ops/shape';
import { operandSharing, setOperandSharing } from '../../src/kernels/sharing';
import { runtime } from '../../src/runtime/device';
import {
  describeConfig,
  invalidReason,
  matmulConfig,
  matmulConfigs,
  NAIVE_CONFIG,
  setMatmulConfig,
  type MatmulConfig,
} from '../../src/kernels/tuning/matmul-config';
import { expectClose, gpu, gpuTensor, gradCheck, Rng, sizeOf, wg } from '../helpers';
import * as ref from '../reference/matmul';

beforeAll(() => gpu());
afterEach(() => {
  setMatmulConfig(null);
  setOperandSharing(null);
});
afterAll(() => wg.shutdown());

// Every family and every tile shape (each uses a different set of register blocks), plus the
// baseline. The staged ones hold one 4×4 block and all four; bk = 8 makes most K span several
// slices. (Pipelines take SwiftShader 0.4 s (direct) to 2 s (staged) to compile: keep this short.)
const CONFIGS: MatmulConfig[] = [
  { family: 'direct', wgX: 16, wgY: 4, tm: 4, tn: 4, bk: 0 },
  { family: 'direct', wgX: 8, wgY: 8, tm: 8, tn: 4, bk: 0 },
  { family: 'direct', wgX: 4, wgY: 16, tm: 4, tn: 8, bk: 0 },
  { family: 'direct', wgX: 8, wgY: 8, tm: 8, tn: 8, bk: 0 },
  { family: 'staged', wgX: 16, wgY: 16, tm: 4, tn: 4, bk: 16 },
  { family: 'staged', wgX: 8, wgY: 8, tm: 8, tn: 8, bk: 8 },
  { family: 'shared', wgX: 8, wgY: 2, tm: 16, tn: 8, bk: 0 },
  NAIVE_CONFIG,
];

/** Names of the kernels dispatched while fn runs. */
function kernelsUsed(fn: () => void): string[] {
  const ex = runtime().executor;
  const names: string[] = [];
  const prev = ex.observer;
  ex.observer = { onDispatch: (k) => void names.push(k.name) };
  try {
    fn();
  } finally {
    ex.observer = prev;
  }
  return names;
}

/**
 * A GPU operand holding the row-major matrix data `x` (rows×cols): stored as is, or stored
 * transposed and viewed through mT (a column-major view the kernel must read directly).
 */
function operand(x: Float64Array, rows: number, cols: number, transposed: boolean): wg.Tensor {
  return transposed ? mT(gpuTensor(ref.transpose(x, rows, cols), [cols, rows])) : gpuTensor(x, [rows, cols]);
}

// (M, K, N): awkward sizes, one aligned for vec4 loads, K = 1, and an aligned-M/N one whose K
// leaves a partial last k step on the vec4 path (Aᵀ·B, the shape of dB).
const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [3, 17, 5],
  [17, 33, 65],
  [65, 130, 33],
  [64, 64, 64],
  [8, 13, 12],
  [33, 1, 17],
];

describe('2-D matmul matches the float64 reference in every family', () => {
  for (const config of CONFIGS) {
    it(describeConfig(config), async () => {
      setMatmulConfig(config);
      // The shared family with this device's operand sharing and with workgroup memory.
      const sharings = config.family === 'shared' ? [...new Set([operandSharing(), 'workgroup' as const])] : [null];
      for (const [sharing, [M, K, N]] of sharings.flatMap((s) => SHAPES.map((shape) => [s, shape] as const))) {
        setOperandSharing(sharing);
        for (const ta of [false, true]) {
          for (const tb of [false, true]) {
            const rng = new Rng();
            const a = rng.array(M * K);
            const b = rng.array(K * N);
            const out = wg.matmul(operand(a, M, K, ta), operand(b, K, N, tb));
            expect(out.shape).toEqual([M, N]);
            expectClose(await out.toArray(), ref.matmul(a, [M, K], b, [K, N]).data, {
              seed: rng.seed,
              what: `${describeConfig(config)}${sharing ? ` (${sharing})` : ''} (${M}×${K})${ta ? 'ᵀ' : ''} @ (${K}×${N})${tb ? 'ᵀ' : ''}`,
            });
          }
        }
      }
    });
  }
});

describe('operand layouts', () => {
  it('transposed views are read in place: only the matmul kernel runs', () => {
    const a = wg.randn([17, 9]);
    const b = wg.randn([5, 9]);
    const c = wg.randn([9, 17]);
    const names = kernelsUsed(() => {
      wg.matmul(a, mT(b)); // A·Bᵀ
      wg.matmul(mT(a), a); // Aᵀ·B
      wg.matmul(mT(c), mT(b)); // Aᵀ·Bᵀ
    });
    expect(names).toHaveLength(3);
    expect(names.every((n) => n.startsWith('matmul.'))).toBe(true);
  });

  it('the direct family uses vec4 loads exactly when operands are aligned', () => {
    setMatmulConfig({ family: 'direct', wgX: 16, wgY: 4, tm: 4, tn: 4, bk: 0 });
    const x = wg.randn([8, 12]);
    const y = wg.randn([12, 16]);
    const odd = wg.randn([12, 5]);
    expect(kernelsUsed(() => wg.matmul(x, y))).toEqual(['matmul.direct_vec4']);
    expect(kernelsUsed(() => wg.matmul(mT(y), mT(x)))).toEqual(['matmul.direct_vec4']); // M = 16, K = 12
    expect(kernelsUsed(() => wg.matmul(x, odd))).toEqual(['matmul.direct']); // N = 5
    // Columns 1..12 of a 9×13 matrix: neither the offset (1) nor the row stride (13) is aligned.
    const big = wg.randn([9, 13]);
    expect(kernelsUsed(() => wg.matmul(narrow(big, 1, 1, 12), y))).toEqual(['matmul.direct']);
  });

  it('views with offsets, row strides and broadcast rows', async () => {
    for (const config of [CONFIGS[3]!, CONFIGS[5]!]) {
      setMatmulConfig(config);
      const rng = new Rng();
      // Rows 1..17 of an 18×36 matrix (offset 36: aligned) and columns 1..33 of a 36×34 one.
      const big = rng.array(18 * 36);
      const wide = rng.array(36 * 34);
      const a = narrow(gpuTensor(big, [18, 36]), 0, 1, 17);
      const b = narrow(gpuTensor(wide, [36, 34]), 1, 1, 33);
      const aData = big.slice(36);
      const bData = Float64Array.from({ length: 36 * 33 }, (_, i) => wide[Math.floor(i / 33) * 34 + (i % 33) + 1]!);
      expectClose(await wg.matmul(a, b).toArray(), ref.matmul(aData, [17, 36], bData, [36, 33]).data, { seed: rng.seed });
      // One row broadcast to 5 rows (row stride 0).
      const row = rng.array(36);
      const rows = gpuTensor(row, [1, 36]).expand([5, 36]);
      const rowsData = Float64Array.from({ length: 5 * 36 }, (_, i) => row[i % 36]!);
      expectClose(await wg.matmul(rows, b).toArray(), ref.matmul(rowsData, [5, 36], bData, [36, 33]).data, { seed: rng.seed });
      // Both offsets aligned (rows 1.. of a 37×32 matrix): the vec4 path with offsets.
      const tall = rng.array(37 * 32);
      const c = narrow(gpuTensor(tall, [37, 32]), 0, 1, 36);
      expectClose(await wg.matmul(a, c).toArray(), ref.matmul(aData, [17, 36], tall.slice(32), [36, 32]).data, { seed: rng.seed });
    }
  });

  it('a matrix that is neither row- nor column-major is copied first', async () => {
    const rng = new Rng();
    // [M, K, 2] permuted to [2, M, K]: each matrix has strides (2K, 2).
    const [M, K, N] = [7, 5, 3];
    const x = rng.array(M * K * 2);
    const a = gpuTensor(x, [M, K, 2]).transpose([2, 0, 1]);
    const b = rng.array(K * N);
    const names: string[] = [];
    let out!: wg.Tensor;
    names.push(...kernelsUsed(() => (out = wg.matmul(a, gpuTensor(b, [K, N])))));
    expect(names).toEqual(['copy', expect.stringMatching(/^matmul\./)]);
    const aData = Float64Array.from({ length: 2 * M * K }, (_, i) => x[(i % (M * K)) * 2 + Math.floor(i / (M * K))]!);
    expectClose(await out.toArray(), ref.matmul(aData, [2, M, K], b, [K, N]).data, { seed: rng.seed });
  });

  it('K = 0 gives zeros, an empty M or N an empty result', async () => {
    expect(Array.from(await wg.matmul(wg.ones([2, 0]), wg.ones([0, 3])).toArray())).toEqual([0, 0, 0, 0, 0, 0]);
    expect(Array.from(await wg.matmul(wg.ones([2, 1, 0]), wg.ones([0, 2])).toArray())).toEqual([0, 0, 0, 0]);
    expect(wg.matmul(wg.ones([0, 4]), wg.ones([4, 3])).shape).toEqual([0, 3]);
  });
});

// [a shape, b shape] pairs with torch.matmul semantics.
const BATCHED: [number[], number[]][] = [
  [[2, 3, 17, 33], [33, 5]], // one B for every batch: folded into one 2-D product
  [[3, 5, 7], [3, 7, 4]],
  [[1, 17, 9], [4, 9, 3]], // broadcast batch of A
  [[2, 1, 5, 7], [3, 7, 4]], // both broadcast
  [[6, 9], [2, 9, 5]], // 2-D A against a batch of B
  [[9], [9, 5]],
  [[5, 9], [9]],
  [[9], [9]],
  [[9], [2, 9, 5]],
  [[2, 5, 9], [9]],
];

describe('batched and 1-D operands follow torch.matmul', () => {
  for (const config of [CONFIGS[3]!, CONFIGS[4]!, NAIVE_CONFIG]) {
    it(describeConfig(config), async () => {
      setMatmulConfig(config);
      for (const [sa, sb] of BATCHED) {
        const rng = new Rng();
        const a = rng.array(sizeOf(sa));
        const b = rng.array(sizeOf(sb));
        const expected = ref.matmul(a, sa, b, sb);
        const out = wg.matmul(gpuTensor(a, sa), gpuTensor(b, sb));
        expect(out.shape, `${sa} @ ${sb}`).toEqual(expected.shape);
        expectClose(await out.toArray(), expected.data, { seed: rng.seed, what: `${sa} @ ${sb}` });
      }
    });
  }

  it('batched transposed views in every combination', async () => {
    for (const config of [CONFIGS[0]!, CONFIGS[5]!]) {
      setMatmulConfig(config);
      const [B, M, K, N] = [3, 9, 12, 8];
      for (const ta of [false, true]) {
        for (const tb of [false, true]) {
          const rng = new Rng();
          const a = rng.array(B * M * K);
          const b = rng.array(B * K * N);
          const A = ta ? mT(gpuTensor(ref.transpose(a, M, K, B), [B, K, M])) : gpuTensor(a, [B, M, K]);
          const Bt = tb ? mT(gpuTensor(ref.transpose(b, K, N, B), [B, N, K])) : gpuTensor(b, [B, K, N]);
          let out!: wg.Tensor;
          expect(kernelsUsed(() => (out = wg.matmul(A, Bt)))).toHaveLength(1);
          expectClose(await out.toArray(), ref.matmul(a, [B, M, K], b, [B, K, N]).data, {
            seed: rng.seed,
            what: `${describeConfig(config)} ta=${ta} tb=${tb}`,
          });
        }
      }
    }
  });
});

describe('matmul gradients match finite differences', () => {
  const cases: [string, number[], number[], boolean, boolean][] = [
    ['2-D', [3, 5], [5, 4], false, false],
    ['2-D, Aᵀ·B', [5, 3], [5, 4], true, false],
    ['2-D, A·Bᵀ', [3, 5], [4, 5], false, true],
    ['batched', [2, 3, 4], [2, 4, 5], false, false],
    ['batched against one B', [2, 3, 4], [4, 5], false, false],
    ['broadcast batch of A', [1, 3, 4], [2, 4, 5], false, false],
    ['2-D A against a batch of B', [3, 4], [2, 4, 5], false, false],
    ['vector @ matrix', [4], [4, 5], false, false],
    ['matrix @ vector', [3, 4], [4], false, false],
  ];
  for (const [name, sa, sb, ta, tb] of cases) {
    it(name, async () => {
      const rng = new Rng();
      // A transposed operand is stored as its transpose and viewed through mT.
      const flip = (s: number[]) => [...s.slice(0, -2), s[s.length - 1]!, s[s.length - 2]!];
      const unflip = (x: Float64Array, s: number[]) =>
        ref.transpose(x, s[s.length - 2]!, s[s.length - 1]!, sizeOf(s) / (s[s.length - 2]! * s[s.length - 1]!));
      await gradCheck({
        rng,
        inputs: [
          { data: rng.array(sizeOf(sa)), shape: sa },
          { data: rng.array(sizeOf(sb)), shape: sb },
        ],
        gpuFn: ([x, y]) => wg.matmul(ta ? mT(x!) : x!, tb ? mT(y!) : y!),
        refFn: ([x, y]) =>
          ref.matmul(ta ? unflip(x!, sa) : x!, ta ? flip(sa) : sa, tb ? unflip(y!, sb) : y!, tb ? flip(sb) : sb).data,
      });
    });
  }

  it('backward reads Bᵀ and Aᵀ in place (no copies)', () => {
    const a = wg.randn([6, 9]);
    a.requiresGrad = true;
    const b = wg.randn([9, 5]);
    b.requiresGrad = true;
    const out = wg.matmul(a, b);
    const g = wg.ones([6, 5]);
    const names = kernelsUsed(() => out.backward(g));
    expect(names.filter((n) => n.startsWith('matmul.'))).toHaveLength(2);
    expect(names).not.toContain('contiguous');
  });
});

describe('errors name the op and the shapes', () => {
  it('inner dimensions differ', () => {
    expect(() => wg.matmul(wg.zeros([3, 4]), wg.zeros([5, 6]))).toThrowError(wg.ShapeError);
    expect(() => wg.matmul(wg.zeros([3, 4]), wg.zeros([5, 6]))).toThrowError(/^matmul: inner dimensions differ: \[3, 4\] @ \[5, 6\]$/);
    expect(() => wg.matmul(wg.zeros([4]), wg.zeros([5]))).toThrowError(/matmul: inner dimensions differ: \[4\] @ \[5\]/);
  });
  it('rank 0', () => {
    expect(() => wg.matmul(wg.tensor(3), wg.zeros([3]))).toThrowError(wg.ShapeError);
    expect(() => wg.matmul(wg.tensor(3), wg.zeros([3]))).toThrowError(/matmul: both operands need at least one dimension, got \[\] @ \[3\]/);
  });
  it('batch dimensions that do not broadcast', () => {
    expect(() => wg.matmul(wg.zeros([2, 3, 4]), wg.zeros([3, 4, 5]))).toThrowError(
      /matmul: batch dimensions cannot be broadcast together: \[2, 3, 4\] @ \[3, 4, 5\]/,
    );
  });
  it('int32 operands', () => {
    const ints = wg.tensor(new Int32Array(6), [2, 3]);
    expect(() => wg.matmul(ints, wg.zeros([3, 2]))).toThrowError(wg.DTypeError);
    expect(() => wg.matmul(wg.zeros([2, 2]), ints)).toThrowError(/matmul: second operand \[2, 3\] is int32, expected float32/);
  });
});

describe('configuration', () => {
  it('lists only configurations the device can run, in every tiled family', () => {
    const limits = runtime().limits;
    const all = matmulConfigs(limits);
    expect(all.some((c) => c.family === 'direct')).toBe(true);
    expect(all.some((c) => c.family === 'staged')).toBe(true);
    expect(all.some((c) => c.family === 'shared')).toBe(true);
    for (const c of all) expect(invalidReason(c, limits)).toBeNull();
    const small = { ...limits, maxComputeWorkgroupStorageSize: 4096, maxComputeInvocationsPerWorkgroup: 64 };
    const fewer = matmulConfigs(small);
    expect(fewer.length).toBeLessThan(all.length);
    for (const c of fewer) {
      expect(c.wgX * c.wgY).toBeLessThanOrEqual(64);
      if (c.family === 'staged') expect((c.wgY * c.tm + c.wgX * c.tn + 8) * c.bk * 4).toBeLessThanOrEqual(4096);
    }
  });

  it('defaults to direct on a fallback adapter, staged otherwise', () => {
    const info = runtime().info;
    expect(matmulConfig().family).toBe(info.adapterInfo.isFallbackAdapter ? 'shared' : 'staged');
  });

  it('refuses a configuration the device cannot run', () => {
    expect(() => setMatmulConfig({ family: 'direct', wgX: 64, wgY: 64, tm: 4, tn: 4, bk: 0 })).toThrowError(wg.LimitError);
    expect(() => setMatmulConfig({ family: 'direct', wgX: 8, wgY: 8, tm: 2, tn: 4, bk: 0 })).toThrowError(/not implemented/);
    const bk = runtime().limits.maxComputeWorkgroupStorageSize / 4;
    expect(() => setMatmulConfig({ family: 'staged', wgX: 8, wgY: 8, tm: 4, tn: 4, bk })).toThrowError(/workgroup memory/);
  });
});

describe('gradients come out in the layout of their operand', () => {
  it("a Linear layer's backward (x·Wᵀ) gives W its gradient without any copy kernel", async () => {
    const { runtime } = await import('../../src/runtime/device');
    const w = wg.randn([6, 5], { requiresGrad: true });
    const x = wg.randn([7, 5], { requiresGrad: true });
    const kernels: string[] = [];
    const ex = runtime().executor;
    const y = wg.matmul(x, wg.transpose(w));
    ex.observer = { onDispatch: (k) => void kernels.push(k.name) };
    try {
      y.backward(wg.ones([7, 6]));
    } finally {
      ex.observer = null;
    }
    expect(kernels.filter((k) => k.startsWith('copy') || k === 'contiguous')).toEqual([]);
    expect(w.grad!.isContiguous).toBe(true);
    // And the values: dW = gᵀ·x with g = 1 → each row of dW is the column sums of x.
    const xs = await x.toArray();
    const dw = await w.grad!.toArray();
    for (let o = 0; o < 6; o++) for (let k = 0; k < 5; k++) {
      let s = 0;
      for (let i = 0; i < 7; i++) s += xs[i * 5 + k]!;
      expect(dw[o * 5 + k]).toBeCloseTo(s, 4);
    }
  });
});

describe('batched products of attention and sequence layers read strided views in place', () => {
  /** [B, T, H, Dh] data seen as [B, H, T, Dh] (the heads of a projection), and its float64 values. */
  function heads(rng: Rng, B: number, T: number, H: number, Dh: number): { t: wg.Tensor; values: Float64Array } {
    const x = rng.array(B * T * H * Dh);
    const t = gpuTensor(x, [B, T, H, Dh]).transpose([0, 2, 1, 3]);
    const values = new Float64Array(x.length);
    for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let s = 0; s < T; s++) for (let d = 0; d < Dh; d++) {
      values[((b * H + h) * T + s) * Dh + d] = x[((b * T + s) * H + h) * Dh + d]!;
    }
    return { t, values };
  }
  const transposeLast = (x: Float64Array, rows: number, cols: number) => ref.transpose(x, rows, cols, x.length / (rows * cols));

  for (const [B, H, T, Dh] of [[2, 3, 17, 5], [1, 1, 1, 3], [2, 1, 33, 4], [1, 3, 65, 1]]) {
    it(`q @ kᵀ and (q @ kᵀ) @ v at B=${B} H=${H} T=${T} Dh=${Dh}: one kernel each, no copy`, async () => {
      const rng = new Rng();
      const q = heads(rng, B, T, H, Dh);
      const k = heads(rng, B, T, H, Dh);
      const v = heads(rng, B, T, H, Dh);
      let scores!: wg.Tensor;
      let out!: wg.Tensor;
      expect(kernelsUsed(() => (scores = wg.matmul(q.t, mT(k.t))))).toHaveLength(1);
      expect(scores.shape).toEqual([B, H, T, T]);
      const want = ref.matmul(q.values, [B, H, T, Dh], transposeLast(k.values, T, Dh), [B, H, Dh, T]);
      expectClose(await scores.toArray(), want.data, { seed: rng.seed, what: 'q @ kᵀ' });
      expect(kernelsUsed(() => (out = scores.matmul(v.t)))).toHaveLength(1);
      expectClose(await out.toArray(), ref.matmul(want.data, [B, H, T, T], v.values, [B, H, T, Dh]).data, { seed: rng.seed, what: '@ v' });
    });
  }

  it('their gradients match finite differences, and the keys get theirs without a copy', async () => {
    const [B, H, T, Dh] = [2, 3, 5, 3];
    const rng = new Rng();
    // Leaves [B, T, H, Dh]; the products read them as heads.
    const asHeads = (t: wg.Tensor) => t.transpose([0, 2, 1, 3]);
    const toHeads = (x: Float64Array) => {
      const out = new Float64Array(x.length);
      for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let s = 0; s < T; s++) for (let d = 0; d < Dh; d++) {
        out[((b * H + h) * T + s) * Dh + d] = x[((b * T + s) * H + h) * Dh + d]!;
      }
      return out;
    };
    await gradCheck({
      rng,
      inputs: [0, 1, 2].map(() => ({ data: rng.array(B * T * H * Dh), shape: [B, T, H, Dh] })),
      gpuFn: ([q, k, v]) => wg.matmul(wg.matmul(asHeads(q!), mT(asHeads(k!))), asHeads(v!)),
      refFn: ([q, k, v]) => {
        const s = ref.matmul(toHeads(q!), [B, H, T, Dh], transposeLast(toHeads(k!), T, Dh), [B, H, Dh, T]).data;
        return ref.matmul(s, [B, H, T, T], toHeads(v!), [B, H, T, Dh]).data;
      },
    });
    // Keys stored [B, H, T, Dh] and read as kᵀ: the backward is two products, nothing else.
    const q = wg.randn([B, H, T, Dh], { requiresGrad: true });
    const k = wg.randn([B, H, T, Dh], { requiresGrad: true });
    const s = wg.matmul(q, mT(k));
    const g = wg.ones([B, H, T, T]);
    const names = kernelsUsed(() => s.backward(g));
    expect(names.every((n) => n.startsWith('matmul.')), names.join(', ')).toBe(true);
    expect(names).toHaveLength(2);
    expect(k.grad!.isContiguous).toBe(true);
  });

  it('[B, T, D] @ [D, E] with A a slice of a wider last dimension folds into one 2-D product', async () => {
    const rng = new Rng();
    const [B, T, D, E] = [3, 17, 5, 7];
    const wide = rng.array(B * T * 3 * D);
    const x = wg.narrow(gpuTensor(wide, [B, T, 3 * D]), 2, D, D); // the middle third: strides [3DT, 3D, 1]
    const w = rng.array(D * E);
    let y!: wg.Tensor;
    expect(kernelsUsed(() => (y = wg.matmul(x, gpuTensor(w, [D, E]))))).toHaveLength(1);
    const xs = Float64Array.from({ length: B * T * D }, (_, i) => wide[Math.floor(i / D) * 3 * D + D + (i % D)]!);
    expectClose(await y.toArray(), ref.matmul(xs, [B, T, D], w, [D, E]).data, { seed: rng.seed });
  });

  for (const [M, N] of [[5, 3], [3, 5]]) {
    it(`a batch of A whose rows are not laid out as one, against one B (M=${M}, N=${N}): gradients`, async () => {
      // A [T, B, K] read as [B, T, K] (batch and rows swapped): dB is summed over the batch.
      const rng = new Rng();
      const [B, K] = [4, 6];
      const swap = (x: Float64Array) => {
        const out = new Float64Array(x.length);
        for (let t = 0; t < M; t++) for (let b = 0; b < B; b++) for (let k = 0; k < K; k++) out[(b * M + t) * K + k] = x[(t * B + b) * K + k]!;
        return out;
      };
      await gradCheck({
        rng,
        inputs: [{ data: rng.array(M * B * K), shape: [M, B, K] }, { data: rng.array(K * N), shape: [K, N] }],
        gpuFn: ([a, b]) => wg.matmul(a!.transpose([1, 0, 2]), b!),
        refFn: ([a, b]) => ref.matmul(swap(a!), [B, M, K], b!, [K, N]).data,
      });
    });
  }
});
