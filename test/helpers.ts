// Shared test helpers: fresh random inputs (seed printed on failure), comparison against float64
// references, and finite-difference gradient checks.

import { expect } from 'vitest';
import * as wg from '../src/node';

export { wg };

/**
 * The tests run on the CPU backend ($WEBGRAD_BACKEND=wasm: vitest's wasm project) rather than
 * WebGPU: for the few tests of what only one backend has.
 */
export const wasmBackend = process.env.WEBGRAD_BACKEND === 'wasm';

/** Initialise webgrad once per test file (Dawn on SwiftShader here, or the CPU backend). */
export async function gpu(opts: wg.InitOptions = {}): Promise<wg.DeviceInfo> {
  return wg.init(opts);
}

/** A seeded generator: a fresh seed per call unless given; the seed goes into failure messages. */
export class Rng {
  readonly seed: number;
  private s: number;
  constructor(seed?: number) {
    this.seed = seed ?? (Math.random() * 2 ** 31) | 0;
    this.s = this.seed || 1;
  }
  uniform(): number {
    // mulberry32
    let t = (this.s = (this.s + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  normal(): number {
    return Math.sqrt(-2 * Math.log(1 - this.uniform())) * Math.cos(2 * Math.PI * this.uniform());
  }
  /** n values in [lo, hi), as float32-representable doubles. */
  array(n: number, lo = -1, hi = 1): Float64Array {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = Math.fround(lo + (hi - lo) * this.uniform());
    return out;
  }
  normalArray(n: number, std = 1): Float64Array {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = Math.fround(std * this.normal());
    return out;
  }
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }
}

export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** A float32 GPU tensor holding `data` (float64 values rounded to float32). */
export function gpuTensor(data: ArrayLike<number>, shape: readonly number[], requiresGrad = false): wg.Tensor {
  return wg.tensor(Float32Array.from(data), shape, { requiresGrad });
}

/**
 * Every element within atol + rtol·|expected| (NaN never passes). The message names the worst
 * element, its index and the seed.
 */
export function expectClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  { rtol = 1e-4, atol = 1e-5, seed, what = 'result' }: { rtol?: number; atol?: number; seed?: number; what?: string } = {},
): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (a === e) continue; // exact, infinities included
    const excess = Math.abs(a - e) - (atol + rtol * Math.abs(e));
    if (Number.isNaN(a) || Number.isNaN(excess) || excess > worstExcess || (a !== e && !Number.isFinite(a))) {
      if (worst < 0 || Number.isNaN(a) || excess > worstExcess) {
        worst = i;
        worstExcess = Number.isNaN(excess) ? Infinity : excess;
      }
    }
  }
  if (worst >= 0) {
    expect.fail(
      `${what}: element ${worst} is ${actual[worst]}, expected ${expected[worst]} ` +
        `(rtol ${rtol}, atol ${atol}${seed !== undefined ? `, seed ${seed}` : ''})`,
    );
  }
}

/** ‖a − e‖∞ / max(‖e‖∞, floor): for results where cancellation makes per-element tolerances unfair. */
export function relErr(actual: ArrayLike<number>, expected: ArrayLike<number>, floor = 1e-6): number {
  let num = 0;
  let den = floor;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i]! - expected[i]!);
    num = Number.isNaN(d) ? Infinity : Math.max(num, d);
    den = Math.max(den, Math.abs(expected[i]!));
  }
  return num / den;
}

/**
 * Finite-difference check of a backward rule. `gpuFn` builds the op on GPU tensors; `refFn`
 * computes the same function in float64 on the CPU. The scalar checked is L = Σ out·R for a
 * random R, so every output element's gradient counts. Analytic gradients come from webgrad's
 * backward (float32); numeric ones from central differences of refFn in float64.
 */
export async function gradCheck(opts: {
  inputs: { data: Float64Array; shape: number[] }[];
  gpuFn: (xs: wg.Tensor[]) => wg.Tensor;
  refFn: (xs: Float64Array[]) => Float64Array;
  rng: Rng;
  /** Which inputs to differentiate (default: all). */
  wrt?: number[];
  eps?: number;
  rtol?: number;
  atol?: number;
}): Promise<void> {
  const { inputs, gpuFn, refFn, rng } = opts;
  const wrt = opts.wrt ?? inputs.map((_, i) => i);
  const eps = opts.eps ?? 1e-3;
  const xs = inputs.map((x, i) => gpuTensor(x.data, x.shape, wrt.includes(i)));
  const out = gpuFn(xs);
  const R = rng.array(out.size, -1, 1);
  out.backward(gpuTensor(R, out.shape));
  for (const i of wrt) {
    const analytic = await xs[i]!.grad!.toArray();
    const base = inputs.map((x) => Float64Array.from(x.data));
    const numeric = new Float64Array(inputs[i]!.data.length);
    const loss = (vals: Float64Array[]): number => {
      const y = refFn(vals);
      let s = 0;
      for (let k = 0; k < y.length; k++) s += y[k]! * R[k]!;
      return s;
    };
    for (let k = 0; k < numeric.length; k++) {
      const orig = base[i]![k]!;
      base[i]![k] = orig + eps;
      const up = loss(base);
      base[i]![k] = orig - eps;
      const down = loss(base);
      base[i]![k] = orig;
      numeric[k] = (up - down) / (2 * eps);
    }
    expectClose(analytic, numeric, {
      rtol: opts.rtol ?? 2e-3,
      atol: opts.atol ?? 2e-4 * Math.max(1, ...Array.from(numeric, Math.abs)),
      seed: rng.seed,
      what: `gradient of input ${i}`,
    });
  }
  for (const x of xs) x.dispose();
  out.dispose();
}

/**
 * Collect garbage and let FinalizationRegistry callbacks run, so that wg.memory() counts only what
 * is still referenced: a tensor an earlier test dropped without dispose() gives its buffer back at
 * some garbage collection, which would otherwise land at a random point of a memory check.
 */
export async function settleGarbage(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let i = 0; i < 2; i++) {
    gc?.();
    await new Promise((done) => setTimeout(done, 0));
  }
}
