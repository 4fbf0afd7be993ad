// The two backends: what init() chooses and reports, the CPU backend's memory, profile and
// precompile, and training that gives the same numbers on WebGPU and on the CPU. Each test starts
// the backend it needs (and shuts it down), whatever the project's $WEBGRAD_BACKEND.

import { afterEach, describe, expect, it, vi } from 'vitest';
import { relErr, Rng, wg } from '../helpers';

afterEach(() => wg.shutdown());

describe('choosing a backend', () => {
  it("backend 'wasm' starts the CPU backend and says how it runs", async () => {
    const info = await wg.init({ backend: 'wasm', wasm: { threads: 2 } });
    expect(info.backend).toBe('wasm');
    expect(info.backendReason).toBe("asked for (init({ backend: 'wasm' }))");
    expect(info.wasm).toMatchObject({ threads: 2, maxMemoryBytes: 2 ** 31 });
    expect(info.wasm!.threadsReason).toBeUndefined();
    expect(typeof info.wasm!.relaxedSimd).toBe('boolean');
    expect(info.features).toEqual([]);
    expect(info.adapterInfo).toMatchObject({ architecture: 'wasm-simd128', isFallbackAdapter: false });
    expect(info.adapterInfo.description).toMatch(/WebAssembly SIMD.* on 2 threads/);
  });

  it('one thread when asked, and says why', async () => {
    const info = await wg.init({ backend: 'wasm', wasm: { threads: 1 } });
    expect(info.wasm).toMatchObject({ threads: 1, threadsReason: 'one thread requested' });
  });

  it("'auto' takes WebGPU on a hardware adapter and the CPU backend on a software one", async () => {
    const [first] = await wg.adapters();
    const info = await wg.init({ backend: 'auto' });
    if (!first || first.isFallbackAdapter) {
      expect(info.backend).toBe('wasm');
      expect(info.backendReason).toMatch(first ? /WebGPU's adapter is a software fallback \(.+\)/ : /no adapter/);
    } else {
      expect(info.backend).toBe('webgpu');
      expect(info.backendReason).toMatch(/a hardware WebGPU adapter/);
    }
  });

  it("without a backend in the options, init() takes $WEBGRAD_BACKEND's and says so; a bad name is refused", async () => {
    const info = await wg.init();
    const env = process.env.WEBGRAD_BACKEND;
    expect(info.backend).toBe(env === 'wasm' ? 'wasm' : 'webgpu');
    expect(info.backendReason).toBe(`asked for ($WEBGRAD_BACKEND=${env})`);
    wg.shutdown();
    await expect(wg.init({ backend: 'cuda' as 'wasm' })).rejects.toThrow(/init\(\): backend must be 'auto', 'webgpu' or 'wasm', got "cuda"/);
  });
});

describe('the CPU backend', () => {
  it('plans against the wasm memory: what tensors may fill is the default budget, and past it is an OutOfMemoryError', async () => {
    const info = await wg.init({ backend: 'wasm', wasm: { threads: 1, maxMemoryBytes: 64 << 20 } });
    const room = info.limits.memoryBudgetBytes;
    expect(room).toBe(info.limits.maxBufferSize);
    expect(room).toBeGreaterThan(60 << 20);
    expect(room).toBeLessThan(64 << 20);
    const model = new wg.nn.Linear(8, 2);
    const trainer = new wg.Trainer({ model, optimizer: new wg.optim.SGD(model.parameters(), { lr: 0.1 }), loss: 'mse' });
    expect(trainer.budgetBytes).toBe(room);
    const big = wg.zeros([8 << 20]); // 32 MiB
    expect(() => wg.zeros([8 << 20])).toThrow(wg.OutOfMemoryError);
    big.dispose();
    const again = wg.zeros([8 << 20]); // the pool gives the freed block back
    expect(wg.memory().liveBytes).toBeGreaterThanOrEqual(32 << 20);
    again.dispose();
  });

  it('a budget below the memory is kept, as on WebGPU', async () => {
    const info = await wg.init({ backend: 'wasm', budget: { memoryBudgetBytes: 1 << 20 } });
    expect(info.limits.memoryBudgetBytes).toBe(1 << 20);
    expect(() => wg.zeros([1 << 19])).toThrow(/memory budget \(1\.0 MiB\)/);
  });

  it('profiles each kernel on the CPU clock (its own time: kernels run one at a time)', async () => {
    await wg.init({ backend: 'wasm' });
    const a = wg.randn([64, 64], { seed: 1 });
    const p = await wg.profile(() => wg.tidy(() => wg.matmul(a, a).relu().sum()).item());
    expect(p.backend).toBe('wasm');
    expect(p.timestamps).toBe(false);
    expect(p.submissions).toEqual([]);
    expect(p.kernels.map((k) => k.op).sort()).toEqual(['matmul', 'reduce', 'unary']);
    expect(p.kernels.map((k) => k.kernel).sort()).toEqual(['matmul', 'reduce', 'unary']); // the wasm kernels that ran
    for (const k of p.kernels) expect(k.gpuMs).toBeGreaterThan(0);
    expect(p.totalGpuMs).toBeCloseTo(p.kernels.reduce((s, k) => s + k.gpuMs!, 0), 6);
    expect(p.totalGpuMs!).toBeLessThanOrEqual(p.wallMs);
    const table = wg.formatProfile(p);
    expect(table, table).toMatch(/CPU time[\s\S]*\d+ kernel runs, .* CPU time, .* wall time/);
    a.dispose();
  });

  it('compiles nothing ahead: precompile has no pipelines to make, and autotuning nothing to time', async () => {
    await wg.init({ backend: 'wasm', autotune: true });
    const x = wg.randn([32, 32], { seed: 2 });
    await expect(wg.precompile(() => wg.matmul(x, x))).resolves.toBe(0);
    wg.tidy(() => wg.matmul(x, x));
    await expect(wg.autotune()).resolves.toEqual([]);
    x.dispose();
  });

  it("'f16-mixed' computes in f32 there and says so once", async () => {
    await wg.init({ backend: 'wasm' });
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      const model = new wg.nn.Linear(4, 2);
      const optimizer = new wg.optim.SGD(model.parameters(), { lr: 0.1 });
      new wg.Trainer({ model, optimizer, loss: 'mse', precision: 'f16-mixed' });
      new wg.Trainer({ model, optimizer, loss: 'mse', precision: 'f16-mixed' });
      const calls = warn.mock.calls.filter((c) => /f16-mixed/.test(String(c[0])));
      // Once per process (an earlier test file's Trainer may have warned already).
      expect(calls.length).toBeLessThanOrEqual(1);
      if (calls.length) expect(String(calls[0]![0])).toMatch(/CPU backend keeps float32.*computing in f32/);
    } finally {
      warn.mockRestore();
    }
  });
});

describe('training on both backends', () => {
  interface Case {
    build: () => wg.nn.Module;
    /** Inputs and labels from a generator of the seed. */
    data: (rng: Rng) => [wg.Tensor, wg.Tensor];
    optimizer: (params: wg.Tensor[]) => wg.optim.Optimizer;
    options?: Partial<wg.TrainerOptions>;
    /** Trainer steps (default 5). */
    steps?: number;
  }

  /** Parameters after `steps` Trainer steps of a case on `backend`, from the same seeds. */
  async function train(backend: 'webgpu' | 'wasm', c: Case, steps: number, seed: number): Promise<Float32Array[]> {
    await wg.init({ backend, autotune: false });
    wg.manualSeed(seed);
    const model = c.build();
    const trainer = new wg.Trainer({ model, optimizer: c.optimizer(model.parameters()), loss: 'cross-entropy', microBatchSize: 'auto', ...c.options });
    const [x, y] = c.data(new Rng(seed));
    for (let i = 0; i < steps; i++) await trainer.step(x, y);
    const params = await Promise.all(model.parameters().map(async (p) => (await p.toArray()) as Float32Array));
    wg.shutdown();
    return params;
  }

  const images = (shape: number[]) => (rng: Rng): [wg.Tensor, wg.Tensor] => [
    wg.tensor(Float32Array.from(rng.array(shape.reduce((a, b) => a * b, 1))), shape),
    wg.tensor(Int32Array.from({ length: shape[0]! }, () => rng.int(10)), [shape[0]!], { dtype: 'int32' }),
  ];
  const sgd = (params: wg.Tensor[]) => new wg.optim.SGD(params, { lr: 0.05, momentum: 0.9 });
  const gpt = { vocabSize: 13, contextLength: 7, layers: 2, heads: 2, dim: 8 };
  const cases: [string, Case][] = [
    ['an MLP', { build: () => new wg.nn.Sequential(new wg.nn.Flatten(), new wg.nn.Linear(60, 33), new wg.nn.GELU(), new wg.nn.LayerNorm(33), new wg.nn.Linear(33, 10)), data: images([17, 60]), optimizer: sgd }],
    ['a CNN', { build: () => wg.models.mnistCNN({ channels: [4, 8] }), data: images([9, 1, 28, 28]), optimizer: sgd }],
    [
      // Attention, gelu tanh, tied embeddings, clipping, and nn.checkpoint on every block. (SGD: Adam's
      // first steps are near sign(g), which turns float32 rounding of a near-zero gradient into lr.)
      'a GPT, its blocks checkpointed',
      {
        build: () => wg.models.gpt(gpt),
        data: (rng) => {
          const tokens = (n: number) => Int32Array.from({ length: n }, () => rng.int(gpt.vocabSize));
          return [wg.tensor(tokens(3 * 5), [3, 5], { dtype: 'int32' }), wg.tensor(tokens(3 * 5), [3, 5], { dtype: 'int32' })];
        },
        optimizer: sgd,
        options: { clipGradNorm: 1, checkpointing: 'blocks' },
        steps: 3,
      },
    ],
  ];
  for (const [name, c] of cases) {
    it(`${name} trains to the same parameters on WebGPU and on the CPU, to float32 rounding`, async () => {
      const seed = new Rng().seed;
      const gpu = await train('webgpu', c, c.steps ?? 5, seed);
      const cpu = await train('wasm', c, c.steps ?? 5, seed);
      expect(cpu.length).toBe(gpu.length);
      cpu.forEach((p, i) => expect(relErr(p, gpu[i]!), `parameter ${i} (seed ${seed})`).toBeLessThan(2e-5));
    });
  }

  it('generates the same tokens from the same GPT on WebGPU and on the CPU (KV caches, seeded sampling)', async () => {
    const run = async (backend: 'webgpu' | 'wasm') => {
      await wg.init({ backend });
      wg.manualSeed(7);
      const model = wg.models.gpt(gpt);
      const out = await wg.models.generate(model, [1, 2, 3], { maxNewTokens: 6, temperature: 0.8, seed: 3 });
      model.dispose();
      wg.shutdown();
      return out;
    };
    expect(await run('wasm')).toEqual(await run('webgpu'));
  });
});
