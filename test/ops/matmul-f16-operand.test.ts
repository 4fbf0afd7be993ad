// Frozen weights stored in f16 (Module.half({ frozenOnly: true })) on a device that has
// shader-f16: Dawn's null backend, which offers every feature and validates every pipeline,
// binding and dispatch but computes nothing (its readbacks are garbage, so no number is read
// here). This checks that half() stores exactly the frozen Linear weights in f16 (half their
// bytes), that matmul then reads them with the f32·f16 kernels (matmul.*.f32f16) in every
// family, forward and in the activations' gradient, without a validation error, and what half()
// refuses. The numbers of those kernels are checked on a real GPU by scripts/gpu-check.ts; the
// exact f32 fallback without shader-f16 by test/training/half.test.ts.
import { create } from 'webgpu';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runtime } from '../../src/runtime/device';
import { NAIVE_CONFIG, setMatmulConfig, type MatmulConfig } from '../../src/kernels/tuning/matmul-config';
import { wg } from '../helpers';

// Held for the whole file: Dawn crashed when an instance was collected while in use.
const instance = create(['backend=null']);

beforeAll(async () => {
  const adapter = await instance.requestAdapter();
  if (!adapter) throw new Error("Dawn's null backend is unavailable");
  const device = await adapter.requestDevice({ requiredFeatures: ['shader-f16', 'subgroups'] as GPUFeatureName[] });
  await wg.init({ device });
});
afterAll(() => {
  setMatmulConfig(null);
  wg.shutdown();
});

/** Kernel names dispatched by fn, and a validation error (thrown by sync) if the device rejected one. */
async function run(fn: () => void): Promise<string[]> {
  const names: string[] = [];
  const ex = runtime().executor;
  ex.observer = { onDispatch: (k) => void names.push(k.name) };
  try {
    wg.tidy(fn);
  } finally {
    ex.observer = null;
  }
  await wg.sync();
  return names;
}

const D = 16;
function block(): wg.nn.Sequential {
  wg.manualSeed(3);
  return new wg.nn.Sequential(new wg.nn.TransformerBlock(D, 4, { causal: true }), new wg.nn.Linear(D, 7));
}

describe("half({ frozenOnly: true }) with shader-f16 (Dawn's null backend: validation only)", () => {
  it('stores the frozen Linear weights in f16 (half the bytes), leaves trainable, norm and bias parameters f32', async () => {
    expect(runtime().hasFeature('shader-f16')).toBe(true);
    const m = block();
    const adapted = wg.nn.lora(m, { rank: 2, alpha: 4 });
    const before = wg.memory().liveBytes;
    expect(m.half({ frozenOnly: true })).toBe(m);
    const dtypes = Object.fromEntries(m.namedParameters().map(([n, p]) => [n, p.dtype]));
    for (const l of ['0.attn.inProj', '0.attn.outProj', '0.fc', '0.proj', '1']) expect(dtypes[`${l}.weight`], l).toBe('float16');
    for (const [n, d] of Object.entries(dtypes)) if (!n.endsWith('.weight') || n.includes('ln') || n.includes('lora')) expect(d, n).toBe('float32');
    expect(adapted.parameters().every((p) => p.dtype === 'float32' && p.requiresGrad)).toBe(true);
    // The Linear weights: 3D·D + D·D + 4D·D + 4D·D + 7·D floats, each 2 bytes fewer (size classes are powers of two).
    const halved = (3 * D * D + D * D + 4 * D * D + 4 * D * D + 7 * D) * 2;
    expect(before - wg.memory().liveBytes).toBeGreaterThanOrEqual(halved);
    expect(() => m.requiresGrad(true)).toThrowError(/0\.attn\.inProj\.weight is stored in float16 .* call float\(\) first/);
    m.float();
    expect(m.parameters().every((p) => p.dtype === 'float32')).toBe(true);
    m.dispose();
  });

  const families: [string, MatmulConfig | null][] = [
    ['autotuned', null],
    ['direct', { family: 'direct', wgX: 8, wgY: 8, tm: 8, tn: 8, bk: 0 }],
    ['staged', { family: 'staged', wgX: 16, wgY: 16, tm: 4, tn: 4, bk: 16 }],
    ['shared', { family: 'shared', wgX: 8, wgY: 8, tm: 16, tn: 8, bk: 0 }],
    ['naive', NAIVE_CONFIG],
  ];
  for (const [name, config] of families) {
    it(`${name} matmul: the f32·f16 pipelines validate forward and backward (LoRA on a half model, batched and odd shapes)`, async () => {
      const m = block();
      wg.nn.lora(m, { rank: 2, alpha: 4 });
      m.half({ frozenOnly: true });
      setMatmulConfig(config);
      try {
        const names = await run(() => {
          for (const [b, t] of [[2, 5], [1, 33]]) {
            const x = wg.randn([b!, t!, D], { requiresGrad: true });
            m.forward(x).sum().backward();
          }
        });
        const mixed = new Set(names.filter((s) => s.startsWith('matmul.') && s.endsWith('.f32f16')));
        expect(mixed.size, [...new Set(names)].join(' ')).toBeGreaterThan(0);
        if (config) expect([...mixed].every((s) => s.startsWith(`matmul.${config.family}`)), [...mixed].join(' ')).toBe(true);
        expect(names.some((s) => s.endsWith('.f16') && s.startsWith('matmul'))).toBe(false); // activations stay f32
      } finally {
        setMatmulConfig(null);
        m.dispose();
      }
    });
  }

  it('refuses what f16 weights cannot do: half() of trainable weights, gradients through them, an f16 first operand', () => {
    const m = block();
    expect(() => m.half({} as { frozenOnly: true })).toThrowError(/only frozen weights can be stored in float16.*frozenOnly: true/);
    m.freeze().half({ frozenOnly: true });
    const w = (m.layers[1] as wg.nn.Linear).weight;
    expect(w.dtype).toBe('float16');
    const x = wg.randn([3, D]);
    const half = wg.tidy(() => wg.matmul(wg.randn([2, 7]), w)); // f32 [2, 7] @ f16 [7, 16]
    expect(half.shape).toEqual([2, D]);
    expect(() => wg.matmul(w, x.reshape([D, 3]))).toThrowError(/matmul.*first operand.*float16/);
    expect(() => wg.matmul(x, wg.randn([D]))).not.toThrow();
    w.requiresGrad = true;
    expect(() => wg.matmul(x, wg.transpose(w))).toThrowError(/float16 second operand of \[3, 16\] @ \[16, 7\] requires grad/);
    w.requiresGrad = false;
    for (const t of [x, half]) t.dispose();
    m.dispose();
  });
});
