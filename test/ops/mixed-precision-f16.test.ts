// The f16 kernels on a device that has shader-f16: Dawn's null backend, which offers every
// feature and validates every pipeline, binding and dispatch but computes nothing (its readbacks
// are garbage, so nothing is read here). This checks that autocast selects the f16 kernels — and
// only inside its scope — and that every f16 pipeline (matmul families, conv2d forward and both
// backward passes with each kind of sharing) is created and bound without a validation error.
// Their numbers are checked against the float64 reference on a real GPU: scripts/gpu-check.ts.
import { create } from 'webgpu';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { operandSharing, setOperandSharing } from '../../src/kernels/sharing';
import { runtime } from '../../src/runtime/device';
import { NAIVE_CONFIG, setMatmulConfig, type MatmulConfig } from '../../src/kernels/tuning/matmul-config';
import { MixedPrecision } from '../../src/train/mixed-precision';
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
  setOperandSharing(null);
  wg.shutdown();
});

/** Kernel names dispatched by fn, and whether the device reported a validation error. */
async function run(fn: () => void): Promise<string[]> {
  const names: string[] = [];
  const ex = runtime().executor;
  ex.observer = { onDispatch: (k) => void names.push(k.name) };
  try {
    wg.tidy(fn);
  } finally {
    ex.observer = null;
  }
  await wg.sync(); // throws GPUValidationError if the device rejected a pipeline, binding or dispatch
  return names;
}

function forwardBackward(): void {
  const w = wg.randn([6, 3, 3, 3], { requiresGrad: true });
  const l = wg.randn([10, 6 * 5 * 5], { requiresGrad: true });
  const x = wg.randn([2, 3, 7, 7], { requiresGrad: true });
  const y = wg.conv2d(x, w, null);
  wg.matmul(y.reshape([2, 150]), wg.transpose(l)).sum().backward();
}

describe("precision 'f16-mixed' on a device with shader-f16 (Dawn's null backend: validation only)", () => {
  it('runs matmul and conv2d (forward, both gradients) with f16 kernels inside the scope, f32 outside', async () => {
    const mixed = new MixedPrecision('f16-mixed');
    const inside = await run(() => mixed.run(forwardBackward));
    for (const k of ['cast.f16', 'conv2d.pack', 'conv2d/', 'conv2d.grad_input/', 'conv2d.grad_weight/', 'matmul.']) {
      expect(inside.filter((n) => n.startsWith(k) && /f16/.test(n)), k).not.toEqual([]);
    }
    const outside = await run(forwardBackward);
    expect(outside.filter((n) => /f16/.test(n))).toEqual([]);
    expect(new MixedPrecision('f32').lossFactor).toBe(1);
  });

  const families: [string, MatmulConfig][] = [
    ['direct', { family: 'direct', wgX: 8, wgY: 8, tm: 8, tn: 8, bk: 0 }],
    ['staged', { family: 'staged', wgX: 16, wgY: 16, tm: 4, tn: 4, bk: 16 }],
    ['shared', { family: 'shared', wgX: 8, wgY: 8, tm: 16, tn: 8, bk: 0 }],
    ['naive', NAIVE_CONFIG],
  ];
  for (const [name, config] of families) {
    it(`matmul ${name}: f16 pipelines validate for row- and column-major, aligned and unaligned operands`, async () => {
      setMatmulConfig(config);
      const mixed = new MixedPrecision('f16-mixed');
      const names = await run(() =>
        mixed.run(() => {
          for (const [m, k, n] of [[33, 17, 9], [32, 64, 16]]) {
            const a = wg.randn([m!, k!], { requiresGrad: true });
            const b = wg.randn([n!, k!], { requiresGrad: true });
            wg.matmul(a, wg.transpose(b)).sum().backward();
            wg.matmul(wg.randn([3, m!, k!]), wg.randn([3, k!, n!])); // batched
          }
        }),
      );
      setMatmulConfig(null);
      const used = new Set(names.filter((s) => s.startsWith('matmul.')));
      expect([...used].every((s) => s.endsWith('.f16'))).toBe(true);
      if (name === 'direct') expect(used).toEqual(new Set(['matmul.direct.f16', 'matmul.direct_vec4.f16']));
      else expect(used).toEqual(new Set([name === 'shared' ? `matmul.shared.${operandSharing()}.f16` : `matmul.${name}.f16`]));
    });
  }

  for (const sharing of ['subgroup', 'workgroup'] as const) {
    it(`conv2d with ${sharing} sharing: f16 pipelines validate (strides, padding, bias, split weight gradients)`, async () => {
      setOperandSharing(sharing);
      const mixed = new MixedPrecision('f16-mixed');
      const names = await run(() =>
        mixed.run(() => {
          const x = wg.randn([4, 3, 17, 13], { requiresGrad: true });
          const w = wg.randn([5, 3, 3, 3], { requiresGrad: true });
          const b = wg.randn([5], { requiresGrad: true });
          wg.conv2d(x, w, b, { stride: 2, padding: 1 }).sum().backward();
          const x2 = wg.randn([2, 12, 9, 11], { requiresGrad: true });
          const w2 = wg.randn([10, 12, 3, 3], { requiresGrad: true });
          wg.conv2d(x2, w2, null, { dilation: [1, 2], padding: 1 }).sum().backward();
        }),
      );
      setOperandSharing(null);
      expect(names.filter((n) => n.startsWith('conv2d') && n.includes(`/${sharing}/f16`)).length).toBeGreaterThanOrEqual(4);
    });
  }
});
