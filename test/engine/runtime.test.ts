import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { expectClose, gpu, Rng, wg } from '../helpers';
import { runtime } from '../../src/runtime/device';
import { defineKernel } from '../../src/kernels/kernel';
import { fold } from '../../src/runtime/gpu-executor';
import { sizeClass } from '../../src/runtime/buffer-pool';
import { empty } from '../../src/tensor';
import { Generator } from '../../src/random';
import copyWGSL from '../../shaders/copy.wgsl?raw';

let info: wg.DeviceInfo;
beforeAll(async () => {
  info = await gpu();
});
afterAll(() => wg.shutdown());

describe('init', () => {
  it('reports the adapter, the limits it requested and the features in use', async () => {
    expect(info.limits.maxStorageBufferBindingSize).toBeGreaterThanOrEqual(128 * 1024 * 1024);
    expect(info.limits.maxComputeInvocationsPerWorkgroup).toBeGreaterThanOrEqual(256);
    expect(Array.isArray(info.features)).toBe(true);
    expect(typeof info.adapterInfo.isFallbackAdapter).toBe('boolean');
    // Idempotent: a second call returns the same device.
    expect(await wg.init()).toBe(info);
  });
});

describe('outputs are poisoned before dispatch in tests', () => {
  it('an element no kernel wrote reads as NaN', async () => {
    const t = empty([5]);
    expect(Array.from(await t.toArray()).every(Number.isNaN)).toBe(true);
    t.dispose();
  });
});

describe('dispatch folding', () => {
  it('splits workgroup counts past the per-dimension limit into a grid that covers them', () => {
    for (const count of [1, 65535, 65536, 65535 * 3 + 1, 65535 * 65535 + 5]) {
      const [x, y, z] = fold(count, 65535);
      expect(x).toBeLessThanOrEqual(65535);
      expect(y).toBeLessThanOrEqual(65535);
      expect(x * y * z).toBeGreaterThanOrEqual(count);
      expect(x * y * z - count).toBeLessThan(x * y); // little waste
    }
  });

  it('an elementwise op over more than 65,535 × 256 elements writes every element', async () => {
    const n = 65535 * 256 + 17;
    const rng = new Rng();
    const c = rng.uniform();
    const x = wg.full([n], c);
    const y = wg.add(x, 1);
    const out = await y.toArray();
    let bad = -1;
    for (let i = 0; i < n; i++) if (out[i] !== Math.fround(Math.fround(c) + 1)) { bad = i; break; }
    expect(bad, `element ${bad} = ${out[bad]}`).toBe(-1);
    x.dispose();
    y.dispose();
  });
});

describe('buffer pool and memory()', () => {
  it('size classes leave at most 25% slack and are stable', () => {
    for (const n of [1, 4, 100, 257, 1000, 4096, 123457, 1 << 20]) {
      const c = sizeClass(n);
      expect(c).toBeGreaterThanOrEqual(n);
      expect(c).toBeLessThanOrEqual(Math.max(16, n * 1.25 + 16));
      expect(sizeClass(c)).toBe(c);
    }
  });

  it('a freed buffer is reused, and live bytes return to where they were', async () => {
    const before = wg.memory();
    const a = wg.zeros([1000]);
    const mid = wg.memory();
    expect(mid.liveTensors).toBe(before.liveTensors + 1);
    expect(mid.liveBytes).toBeGreaterThanOrEqual(before.liveBytes + 4000);
    a.dispose();
    await wg.sync();
    const after = wg.memory();
    expect(after.liveBytes).toBe(before.liveBytes);
    expect(after.pooledBytes).toBeGreaterThan(0);
    const b = wg.zeros([1000]);
    expect(wg.memory().pooledBytes).toBe(after.pooledBytes - (mid.liveBytes - before.liveBytes));
    b.dispose();
    expect(wg.memory().peakBytes).toBeGreaterThanOrEqual(mid.liveBytes);
  });

  it('views share storage: disposing the base keeps the view readable', async () => {
    const a = wg.tensor([[1, 2], [3, 4]]);
    const v = a.transpose();
    a.dispose();
    expect(Array.from(await v.toArray())).toEqual([1, 3, 2, 4]);
    v.dispose();
  });
});

describe('dry runs', () => {
  it('count what ops would allocate without touching the GPU', async () => {
    const x = wg.ones([10, 10]);
    const before = wg.memory();
    const dispatches = runtime().executor.dispatchCount;
    const stats = runtime().dryRun(() => {
      const y = wg.tidy(() => x.add(1).mul(2).exp()); // three 400-byte outputs, two freed by tidy
      expect(y.shape).toEqual([10, 10]);
      const z = wg.zeros([1000]);
      y.dispose();
      z.dispose();
    });
    expect(runtime().executor.dispatchCount).toBe(dispatches);
    // Size classes: the tidy scope freed two of the three 400-byte outputs before zeros ran.
    expect(stats.peakBytes).toBe(sizeClass(400) + sizeClass(4000));
    expect(stats.largestBytes).toBe(4000);
    expect(wg.memory().liveBytes).toBe(before.liveBytes);
    expect(wg.memory().liveTensors).toBe(before.liveTensors);
    x.dispose();
  });
});

describe('GPU errors become WebGradErrors', () => {
  it('a validation error surfaces at the next readback as GPUValidationError', async () => {
    // A dispatch whose bound buffer is too small for the kernel's declared layout: bind a
    // 4-byte range to a kernel that needs the params struct (the runtime never does this).
    const k = defineKernel('broken', { code: copyWGSL, entry: 'fill', bindings: { out: 'write' } });
    const t = wg.zeros([4]);
    runtime().executor.dispatch(k, {
      buffers: [{ buffer: t.buffer(), offset: 3, size: 4 }], // misaligned offset: invalid
      values: { n: 1 },
      workgroups: 1,
    });
    await expect(t.toArray()).rejects.toThrowError(wg.GPUValidationError);
    // The engine keeps working afterwards.
    expectClose(await wg.ones([3]).toArray(), [1, 1, 1]);
  });
});

describe('errors before init and after dispose', () => {
  it('item() on a tensor with more than one element names its shape', async () => {
    await expect(wg.zeros([2, 3]).item()).rejects.toThrowError(/item\(\): tensor \[2, 3\] has 6 elements/);
  });
  it('a disposed tensor cannot be read', async () => {
    const t = wg.ones([2]);
    t.dispose();
    await expect(t.toArray()).rejects.toThrowError(wg.DisposedError);
  });
});

describe('tensor() checks its values against the dtype', () => {
  it('int32 data must be integers in range: no silent wrapping of 3e9, NaN or 1.5', async () => {
    const cases: [wg.TensorData, RegExp][] = [
      [[3e9, NaN], /^tensor: value 3000000000 \(element 0\) does not fit int32 \(integers from -2147483648 to 2147483647\)$/],
      [[1, NaN], /value NaN \(element 1\) does not fit int32/],
      [new Float32Array([0, 1.5]), /value 1\.5 \(element 1\) does not fit int32/],
      [[[1, 2], [3, -Infinity]], /value -Infinity \(element 3\) does not fit int32/],
      [-2147483649, /value -2147483649 \(element 0\) does not fit int32/],
    ];
    for (const [data, message] of cases) {
      expect(() => wg.tensor(data, undefined, { dtype: 'int32' }), String(data)).toThrowError(wg.DTypeError);
      expect(() => wg.tensor(data, undefined, { dtype: 'int32' }), String(data)).toThrowError(message);
    }
    const ok = wg.tensor([2147483647, -2147483648, 0], undefined, { dtype: 'int32' });
    expect(Array.from(await ok.toArray())).toEqual([2147483647, -2147483648, 0]);
    ok.dispose();
  });
});

describe('checks come before work', () => {
  it('randn and rand of a tensor over the device limits fail before drawing a single number', () => {
    const normal = vi.spyOn(Generator.prototype, 'fillNormal');
    const uniform = vi.spyOn(Generator.prototype, 'fillUniform');
    try {
      const n = Math.ceil(runtime().limits.maxBufferSize / 4) + 1;
      expect(() => wg.randn([n])).toThrowError(wg.LimitError);
      expect(() => wg.rand([n], { seed: 1 })).toThrowError(/more than the device's maxBufferSize/);
      expect(normal).not.toHaveBeenCalled();
      expect(uniform).not.toHaveBeenCalled();
    } finally {
      normal.mockRestore();
      uniform.mockRestore();
    }
  });

  it('an op on a disposed operand throws DisposedError naming the op, and allocates nothing', async () => {
    const gone = () => {
      const t = wg.ones([2, 3, 4, 4]);
      t.dispose();
      return t;
    };
    const live = wg.ones([2, 3, 4, 4]);
    const w = wg.ones([5, 3, 3, 3]);
    const m = wg.ones([4, 2]);
    await wg.sync();
    const cases: [string, () => unknown][] = [
      ['relu', () => wg.relu(gone())],
      ['exp', () => wg.exp(gone())],
      ['add', () => wg.add(live, gone())],
      ['add', () => wg.add(gone(), live)],
      ['affine', () => wg.add(gone(), 1)],
      ['mul', () => wg.mul(gone(), live)],
      ['maximum', () => wg.maximum(live, gone())],
      ['clamp', () => wg.clamp(gone(), 0, 1)],
      ['dropout', () => wg.dropout(gone(), 0.5, 1)],
      ['matmul', () => wg.matmul(gone(), m)],
      ['matmul', () => wg.matmul(wg.ones([3, 4]), (() => { const t = wg.ones([4, 2]); t.dispose(); return t; })())],
      ['conv2d', () => wg.conv2d(gone(), w)],
      ['conv2d', () => wg.conv2d(live, (() => { const t = wg.ones([5, 3, 3, 3]); t.dispose(); return t; })())],
      ['sum', () => wg.sum(gone(), 1)],
      ['mean', () => wg.mean(gone())],
      ['max', () => wg.max(gone(), -1)],
      ['argmax', () => wg.argmax(gone(), -1)],
      ['softmax', () => wg.softmax(gone(), -1)],
      ['maxPool2d', () => wg.maxPool2d(gone(), 2)],
      ['avgPool2d', () => wg.avgPool2d(gone(), 2)],
      ['mse', () => wg.mse(gone(), live)],
      ['crossEntropy', () => wg.crossEntropy(wg.reshape(gone(), [6, 16]), Int32Array.from({ length: 6 }, () => 1))],
      ['crossEntropy', () => wg.crossEntropy(wg.ones([6, 16]), (() => { const l = wg.zeros([6], { dtype: 'int32' }); l.dispose(); return l; })())],
    ];
    for (const [op, run] of cases) {
      const before = wg.memory();
      let err: unknown;
      try {
        wg.tidy(() => void run());
      } catch (e) {
        err = e;
      }
      expect(err, op).toBeInstanceOf(wg.DisposedError);
      expect((err as Error).message, op).toMatch(new RegExp(`^(${op}|view|reshape)\\b`));
      const after = wg.memory();
      expect([after.liveTensors, after.liveBytes], `${op}: what it allocated before failing`).toEqual([before.liveTensors, before.liveBytes]);
    }
    for (const t of [live, w, m]) t.dispose();
  });
});
