// The checks and measurements that need a real GPU, in one go (docs/gpu-check.md):
//   1. the adapter: name, whether it is a software fallback, its features;
//   2. the f16 kernels (mixed precision) against the float64 reference on fresh random inputs:
//      matmul (each kernel family) and conv2d (each kind of operand sharing), forward and both
//      backward passes; and matmul reading a frozen weight stored in f16 (Module.half) against
//      f32 activations (each family), forward and the activations' gradient;
//   3. the subgroup row reductions against the workgroup-memory ones and the reference;
//   4. fused attention: on a GPU each kernel variant (no sharing; quads sharing loads by subgroup
//      swaps or through workgroup memory) against the float64 reference, and with shader-f16 its
//      f16-operand kernels, forward and the gradients of q, k and v;
//   5. a GPT (wg.models.gpt: embeddings, pre-LN blocks with fused causal attention, tied output)
//      against the float64 reference with the same weights: logits and loss in f32, and under
//      f16-mixed with shader-f16, with the gradients of f16-mixed against f32's;
//   6. f16-mixed against f32: matmul 1024² and 2048², conv2d N=32 C=32 28×28 O=64 k=5, attention
//      B=8 H=4 T=256 Dh=32 causal (forward + backward), a training step of an MLP and of a CNN,
//      and the benchmark's GPT step (vocab 96, context 64, 4 layers, 4 heads, dim 128, batch 16,
//      AdamW) through wg.Trainer.
// It writes a JSON summary ($OUT/gpu-check.json where $OUT is set, else ./gpu-check.json, or
// --out FILE) and exits 1 on a correctness failure. On an adapter without shader-f16 (such as
// SwiftShader) the f16 checks are skipped, saying so; --require-f16 makes that exit 2. On a
// software adapter the benchmarks run at small sizes unless --full.
//
// Tolerance of the f16 checks. Rounding an operand to f16 changes it by at most u = 2^-11
// relatively (round to nearest; inputs are drawn from ±[2^-6, 1], clear of f16's subnormals),
// products of f16 values are exact in f32 (11 + 11 significant bits ≤ 24), and the sum over K
// terms accumulates in f32 (error ≤ K·2^-24 of the sum of magnitudes, worst case). So each result
// element c = Σ a·b is off by at most (2u + u² + K·2^-24)·Σ|a|·|b|; the check is norm-relative:
//   max |c_gpu − c_exact| / max Σ|a|·|b|  ≤  2u + u² + K·2^-24.
// That bound is loose enough to hide a kernel that drops a term, so a second check compares with
// the float64 product of the f16-rounded operands, element by element, within the f32 part alone:
//   |c_gpu − c_rounded| ≤ K·2^-24 · Σ|a|·|b|  (per element).

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as wg from '../src/node';
import { autocastF16 } from '../src/ops/autocast';
import { setOperandSharing, type OperandSharing } from '../src/kernels/sharing';
import { halfToFloat } from '../src/tensor';
import { setRowCombine, type RowCombine } from '../src/kernels/rows';
import { runtime } from '../src/runtime/device';
import { NAIVE_CONFIG, setMatmulConfig, type MatmulConfig } from '../src/kernels/tuning/matmul-config';
import { setAttentionConfig, type AttentionConfig } from '../src/kernels/tuning/attention-config';
import * as attentionRef from '../test/reference/attention';
import { gptForward, meanCrossEntropy } from '../test/reference/gpt';
import * as convRef from '../test/reference/conv2d';
import * as ref from '../test/reference/reduce';

const U = 2 ** -11;
const EPS32 = 2 ** -24;

interface Check {
  name: string;
  ok: boolean;
  /** max |gpu − exact| / max Σ|a||b|, and its bound. */
  normRelError?: number;
  normRelBound?: number;
  /** Worst element's |gpu − rounded| / (K·2^-24·Σ|a||b|) (≤ 1 passes). */
  roundedRatio?: number;
  error?: string;
}

interface Bench {
  name: string;
  f32_ms: number;
  f16_ms: number | null;
  /** f32 time / f16-mixed time. */
  speedup: number | null;
  gflops_f32?: number;
  gflops_f16?: number | null;
}

// ---- random data and f16 rounding --------------------------------------------------------------

let seed = (Math.random() * 2 ** 31) | 0;
const startSeed = seed;
function uniform(): number {
  let t = (seed = (seed + 0x6d2b79f5) | 0);
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

/** n values of random sign and magnitude in [2^-6, 1] (float32-representable). */
function operands(n: number): Float64Array {
  return Float64Array.from({ length: n }, () => Math.fround((uniform() < 0.5 ? -1 : 1) * 2 ** (-6 * uniform())));
}

const f16Bits = new DataView(new ArrayBuffer(4));
/** x rounded to the nearest f16 (ties to even), via the float32 bits. */
function roundHalf(x: number): number {
  f16Bits.setFloat32(0, x);
  const b = f16Bits.getUint32(0);
  const sign = (b >>> 16) & 0x8000;
  const exp = ((b >>> 23) & 0xff) - 127 + 15;
  let mant = b & 0x7fffff;
  if (exp <= 0 || exp >= 31) return Math.fround(x) === 0 ? x : NaN; // outside what operands() draws
  const rest = mant & 0x1fff;
  mant >>>= 13;
  let h = sign | (exp << 10) | mant;
  if (rest > 0x1000 || (rest === 0x1000 && (mant & 1) === 1)) h++;
  return halfToFloat(h);
}
const rounded = (xs: Float64Array) => xs.map(roundHalf);
const abs = (xs: Float64Array) => xs.map(Math.abs);

/** Both checks of the header for one result: gpu against exact, rounded, and magnitudes S. */
function compare(name: string, gpu: ArrayLike<number>, exact: Float64Array, roundedRef: Float64Array, S: Float64Array, K: number): Check {
  let err = 0;
  let maxS = 0;
  let ratio = 0;
  for (let i = 0; i < exact.length; i++) {
    const g = gpu[i]!;
    err = Math.max(err, Number.isNaN(g) ? Infinity : Math.abs(g - exact[i]!));
    maxS = Math.max(maxS, S[i]!);
    const allowed = K * EPS32 * S[i]! + 1e-30;
    ratio = Math.max(ratio, Number.isNaN(g) ? Infinity : Math.abs(g - roundedRef[i]!) / allowed);
  }
  const bound = 2 * U + U * U + K * EPS32;
  const normRelError = err / Math.max(maxS, 1e-30);
  return { name, ok: normRelError <= bound && ratio <= 1, normRelError, normRelBound: bound, roundedRatio: ratio };
}

async function read(t: wg.Tensor): Promise<Float32Array> {
  return Float32Array.from(await t.toArray());
}

// ---- f16 matmul and conv2d against the reference -------------------------------------------------

/** Row-major C = A·B (float64) for A [M, K], B [K, N]. */
function gemm64(A: Float64Array, B: Float64Array, M: number, K: number, N: number): Float64Array {
  const C = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let k = 0; k < K; k++) {
      const a = A[m * K + k]!;
      if (a === 0) continue;
      const row = m * N;
      const brow = k * N;
      for (let n = 0; n < N; n++) C[row + n] += a * B[brow + n]!;
    }
  }
  return C;
}
const T = (X: Float64Array, R: number, C: number) => {
  const out = new Float64Array(R * C);
  for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) out[c * R + r] = X[r * C + c]!;
  return out;
};

async function checkMatmul(M: number, K: number, N: number, family: string): Promise<Check[]> {
  const A = operands(M * K);
  const B = operands(N * K); // stored as W [N, K], used as Wᵀ (a Linear layer's layout)
  const G = operands(M * N);
  const a = wg.tensor(Float32Array.from(A), [M, K], { requiresGrad: true });
  const w = wg.tensor(Float32Array.from(B), [N, K], { requiresGrad: true });
  const c = autocastF16(() => {
    const y = wg.matmul(a, wg.transpose(w));
    y.backward(wg.tensor(Float32Array.from(G), [M, N]));
    return y;
  });
  const [gc, ga, gw] = await Promise.all([read(c), read(a.grad!), read(w.grad!)]);
  const Bt = T(B, N, K); // [K, N]
  const [Ar, Btr, Gr] = [rounded(A), rounded(Bt), rounded(G)];
  const tag = `matmul ${family} ${M}×${K}×${N}`;
  const out = [
    compare(`${tag} forward`, gc, gemm64(A, Bt, M, K, N), gemm64(Ar, Btr, M, K, N), gemm64(abs(A), abs(Bt), M, K, N), K),
    // dA = G·Bᵀᵀ = G·W: [M, N]·[N, K]; dW = Gᵀ·A: [N, M]·[M, K]
    compare(`${tag} grad A`, ga, gemm64(G, B, M, N, K), gemm64(Gr, rounded(B), M, N, K), gemm64(abs(G), abs(B), M, N, K), N),
    compare(`${tag} grad W`, gw, gemm64(T(G, M, N), A, N, M, K), gemm64(T(Gr, M, N), Ar, N, M, K), gemm64(abs(T(G, M, N)), abs(A), N, M, K), M),
  ];
  for (const t of [a, w, c]) t.dispose();
  return out;
}

/**
 * A frozen weight stored in f16 (Module.half): W [N, K] rounded once to f16, read as it is by the
 * f32·f16 kernels against an f32 A, forward and A's gradient (the weight gets none). Against the
 * float64 product with the rounded W, only f32 accumulation may differ (the rounded check).
 */
async function checkFrozenHalf(M: number, K: number, N: number, family: string): Promise<Check[]> {
  const A = operands(M * K);
  const B = operands(N * K);
  const G = operands(M * N);
  const a = wg.tensor(Float32Array.from(A), [M, K], { requiresGrad: true });
  const layer = new wg.nn.Linear(K, N, { bias: false });
  layer.loadStateDict({ weight: wg.tensor(Float32Array.from(B), [N, K]) });
  layer.freeze().half({ frozenOnly: true });
  if (layer.weight.dtype !== 'float16') throw new Error('half() kept the weight in float32');
  const c = layer.forward(a);
  c.backward(wg.tensor(Float32Array.from(G), [M, N]));
  const [gc, ga] = await Promise.all([read(c), read(a.grad!)]);
  const Bt = T(B, N, K);
  const tag = `matmul f32·f16 (frozen weight) ${family} ${M}×${K}×${N}`;
  const out = [
    compare(`${tag} forward`, gc, gemm64(A, Bt, M, K, N), gemm64(A, rounded(Bt), M, K, N), gemm64(abs(A), abs(Bt), M, K, N), K),
    compare(`${tag} grad A`, ga, gemm64(G, B, M, N, K), gemm64(G, rounded(B), M, N, K), gemm64(abs(G), abs(B), M, N, K), N),
  ];
  for (const t of [a, c]) t.dispose();
  layer.dispose();
  return out;
}

async function checkConv(xs: number[], ws: number[], opts: wg.Conv2dOptions, sharing: OperandSharing): Promise<Check[]> {
  const g = convRef.geometry(xs, ws, opts as convRef.ConvGeometry & typeof opts);
  const X = operands(xs.reduce((p, d) => p * d, 1));
  const W = operands(ws.reduce((p, d) => p * d, 1));
  const G = operands(g.N * g.O * g.OH * g.OW);
  const x = wg.tensor(Float32Array.from(X), xs, { requiresGrad: true });
  const w = wg.tensor(Float32Array.from(W), ws, { requiresGrad: true });
  const y = autocastF16(() => {
    const out = wg.conv2d(x, w, null, opts);
    out.backward(wg.tensor(Float32Array.from(G), out.shape));
    return out;
  });
  const [gy, gx, gw] = await Promise.all([read(y), read(x.grad!), read(w.grad!)]);
  const [Xr, Wr, Gr] = [rounded(X), rounded(W), rounded(G)];
  const tag = `conv2d ${sharing} x ${xs.join('×')} w ${ws.join('×')} ${JSON.stringify(opts)}`;
  const out = [
    compare(`${tag} forward`, gy, convRef.conv2d(X, W, null, g), convRef.conv2d(Xr, Wr, null, g), convRef.conv2d(abs(X), abs(W), null, g), g.C * g.kH * g.kW),
    compare(`${tag} grad input`, gx, convRef.conv2dGradInput(G, W, g), convRef.conv2dGradInput(Gr, Wr, g), convRef.conv2dGradInput(abs(G), abs(W), g), g.O * g.kH * g.kW),
    compare(`${tag} grad weight`, gw, convRef.conv2dGradWeight(G, X, g), convRef.conv2dGradWeight(Gr, Xr, g), convRef.conv2dGradWeight(abs(G), abs(X), g), g.N * g.OH * g.OW),
  ];
  for (const t of [x, w, y]) t.dispose();
  return out;
}

// ---- fused attention -------------------------------------------------------------------------------

/** max |a − b| / max |b| (NaN in a counts as infinitely far). */
function normRel(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 1e-30;
  for (let i = 0; i < b.length; i++) {
    num = Math.max(num, Number.isNaN(a[i]!) ? Infinity : Math.abs(a[i]! - b[i]!));
    den = Math.max(den, Math.abs(b[i]!));
  }
  return num / den;
}

/**
 * Attention's output and gradients of q, k, v against the float64 reference, norm-relative (max
 * error / max value). f32 kernels: within 2e-5 of the exact result (measured on SwiftShader: about
 * 2e-7). f16 operands (autocast): the reference is computed twice — from the f16-rounded q, k, v
 * and dO, where only the kernels' f32 arithmetic differs (2e-5; f32 operands would miss it: the
 * rounding alone moves these results by 2–4e-4), and from the exact values (2e-3).
 */
async function checkAttention(tag: string, half: boolean, [B, H, Tq, Tk, Dh]: number[], causal: boolean): Promise<Check[]> {
  const [Q, K, V] = [Tq, Tk, Tk].map((t) => operands(B! * H! * t! * Dh!));
  const G = operands(B! * H! * Tq! * Dh!);
  const [q, k, v] = [[Q, Tq], [K, Tk], [V, Tk]].map(([x, t]) => wg.tensor(Float32Array.from(x as Float64Array), [B!, H!, t as number, Dh!], { requiresGrad: true }));
  const run = () => {
    const y = wg.scaledDotProductAttention(q!, k!, v!, { causal });
    y.backward(wg.tensor(Float32Array.from(G), y.shape));
    return y;
  };
  const o = half ? autocastF16(run) : run();
  const gpu = await Promise.all([read(o), read(q!.grad!), read(k!.grad!), read(v!.grad!)]);
  const opts = { B: B!, H: H!, Tq: Tq!, Tk: Tk!, Dh: Dh!, causal };
  const expect = (r: (x: Float64Array) => Float64Array) => {
    const [Qr, Kr, Vr, Gr] = [Q!, K!, V!, G].map(r);
    const grads = attentionRef.attentionGrads(Qr!, Kr!, Vr!, Gr!, opts);
    return [attentionRef.attention(Qr!, Kr!, Vr!, opts), grads.dq, grads.dk, grads.dv];
  };
  const exact = expect((x) => x);
  const close = half ? expect(rounded) : exact;
  const out: Check[] = ['forward', 'grad q', 'grad k', 'grad v'].map((what, i) => {
    const err = normRel(gpu[i]!, close[i]!);
    return { name: `attention ${tag} ${[B, H, Tq, Tk, Dh].join('×')}${causal ? ' causal' : ''} ${what}`, ok: err <= 2e-5, normRelError: err, normRelBound: 2e-5 };
  });
  if (half) {
    ['forward', 'grad q', 'grad k', 'grad v'].forEach((what, i) => {
      const err = normRel(gpu[i]!, exact[i]!);
      out.push({ name: `attention ${tag} ${[B, H, Tq, Tk, Dh].join('×')} ${what} vs exact operands`, ok: err <= 2e-3, normRelError: err, normRelBound: 2e-3 });
    });
  }
  for (const t of [q!, k!, v!, o]) t.dispose();
  return out;
}

/**
 * A GPT's logits and mean cross-entropy against the float64 reference with the same weights
 * (weights N(0, 0.3) and biases and norms moved off 0 and 1, so every parameter matters), in f32
 * (norm-relative 1e-4: about 1e-6 on SwiftShader), and under f16-mixed (autocast) within 1e-2 —
 * every matmul and the attention read f16-rounded operands (u = 2^-11 each), in series through
 * the blocks, and the check is meant to catch a kernel that is wrong, not to bound that drift
 * tightly. With f16 the gradients of every parameter are compared with f32's (norm-relative 2e-2).
 */
async function checkGpt(half: boolean): Promise<Check[]> {
  const config = { vocabSize: 29, contextLength: 33, layers: 2, heads: 2, dim: 32 };
  const [B, T] = [3, 33];
  wg.manualSeed(seed >>> 0);
  const model = wg.models.gpt(config);
  const weights: Record<string, Float64Array> = {};
  const moved: Record<string, wg.Tensor> = {};
  for (const [k, t] of Object.entries(model.stateDict())) {
    const scale = k.endsWith('bias') || k.includes('ln') ? 0.3 : 0.3 / Math.sqrt(t.shape.at(-1)!);
    const v = Float64Array.from({ length: t.size }, () => Math.fround((k.includes('ln') && k.endsWith('weight') ? 1 : 0) + scale * (2 * uniform() - 1)));
    weights[k] = v;
    moved[k] = wg.tensor(Float32Array.from(v), t.shape);
  }
  model.loadStateDict(moved);
  Object.values(moved).forEach((t) => t.dispose());
  const ids = Int32Array.from({ length: B * T }, () => Math.floor(uniform() * config.vocabSize));
  const targets = Int32Array.from({ length: B * T }, () => Math.floor(uniform() * config.vocabSize));
  const exactLogits = gptForward(config, weights, ids, B, T);
  const exactLoss = meanCrossEntropy(exactLogits, targets, config.vocabSize);
  const x = wg.tensor(ids, [B, T], { dtype: 'int32' });
  const y = wg.tensor(targets, [B * T], { dtype: 'int32' });
  const pass = async (f16: boolean) => {
    const run = () => {
      const logits = model.forward(x);
      const loss = wg.crossEntropy(logits.reshape([B * T, config.vocabSize]), y);
      loss.backward();
      return [logits, loss] as const;
    };
    const [logits, loss] = f16 ? autocastF16(run) : run();
    const grads = await Promise.all(model.parameters().map((p) => read(p.grad!)));
    const out = { logits: await read(logits), loss: (await read(loss))[0]!, grads };
    for (const p of model.parameters()) {
      p.grad?.dispose();
      p.grad = null;
    }
    logits.dispose();
    loss.dispose();
    return out;
  };
  const shape = `${config.layers} layers, dim ${config.dim}, ${B}×${T} tokens`;
  const out: Check[] = [];
  const f32 = await pass(false);
  const bound32 = 1e-4;
  const e32 = normRel(f32.logits, exactLogits);
  const l32 = Math.abs(f32.loss - exactLoss) / exactLoss;
  out.push({ name: `GPT f32 (${shape}) logits`, ok: e32 <= bound32, normRelError: e32, normRelBound: bound32 });
  out.push({ name: `GPT f32 (${shape}) loss`, ok: l32 <= bound32, normRelError: l32, normRelBound: bound32 });
  if (half) {
    const f16 = await pass(true);
    const e16 = normRel(f16.logits, exactLogits);
    const l16 = Math.abs(f16.loss - exactLoss) / exactLoss;
    out.push({ name: `GPT f16-mixed (${shape}) logits`, ok: e16 <= 1e-2, normRelError: e16, normRelBound: 1e-2 });
    out.push({ name: `GPT f16-mixed (${shape}) loss`, ok: l16 <= 1e-2, normRelError: l16, normRelBound: 1e-2 });
    const names = model.namedParameters().map(([n]) => n);
    const worst = f16.grads.map((g, i) => [normRel(g, f32.grads[i]!), i] as const).sort((a, b) => b[0] - a[0])[0]!;
    out.push({ name: `GPT f16-mixed gradients vs f32 (worst: ${names[worst[1]]})`, ok: worst[0] <= 2e-2, normRelError: worst[0], normRelBound: 2e-2 });
  }
  x.dispose();
  y.dispose();
  model.dispose();
  return out;
}

// ---- subgroup reductions --------------------------------------------------------------------------

async function checkRows(): Promise<Check[]> {
  const out: Check[] = [];
  for (const [m, l] of [[3, 5], [65, 259], [7, 1031], [2, 70001], [4099, 37]] as const) {
    const X = Float64Array.from({ length: m * l }, () => Math.fround(uniform() * 8 - 4));
    const labels = Int32Array.from({ length: m }, () => Math.floor(uniform() * l));
    const results: Record<RowCombine, Float32Array[]> = { subgroup: [], workgroup: [] };
    for (const v of ['subgroup', 'workgroup'] as const) {
      setRowCombine(v);
      const x = wg.tensor(Float32Array.from(X), [m, l]);
      const s = wg.sum(x, 1);
      const mx = wg.max(x, 1);
      const sm = wg.softmax(x, 1);
      const ce = wg.crossEntropy(x, labels);
      results[v] = await Promise.all([s, mx, sm, ce].map(read));
      for (const t of [x, s, mx, sm, ce]) t.dispose();
      setRowCombine(null);
    }
    const expected = [ref.sum(X, [m, l], 1).data, ref.max(X, [m, l], 1).data, ref.softmax(X, [m, l], 1), [ref.crossEntropy(X, m, l, labels)]];
    ['sum', 'max', 'softmax', 'crossEntropy'].forEach((op, i) => {
      const e = expected[i]!;
      const rel = (a: ArrayLike<number>, b: ArrayLike<number>) => {
        let num = 0;
        let den = 1e-6;
        for (let k = 0; k < b.length; k++) {
          num = Math.max(num, Number.isNaN(a[k]!) ? Infinity : Math.abs(a[k]! - b[k]!));
          den = Math.max(den, Math.abs(b[k]!));
        }
        return num / den;
      };
      const err = Math.max(rel(results.subgroup[i]!, e), rel(results.workgroup[i]!, e), rel(results.subgroup[i]!, results.workgroup[i]!));
      out.push({ name: `${op} [${m}, ${l}] subgroup vs workgroup vs float64`, ok: err < 1e-4, normRelError: err, normRelBound: 1e-4 });
    });
  }
  return out;
}

// ---- benchmarks -------------------------------------------------------------------------------------

/** Median milliseconds of `fn` (which enqueues GPU work) over `runs`, after `warmup` runs. */
async function time(fn: () => void | Promise<void>, warmup = 2, runs = 5): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < warmup + runs; i++) {
    const t0 = performance.now();
    await wg.tidy(async () => {
      await fn();
    });
    await wg.sync();
    if (i >= warmup) times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[runs >> 1]!;
}

async function benchPair(name: string, run: () => void | Promise<void>, half: boolean, flop?: number, runUnderF16?: () => void | Promise<void>): Promise<Bench> {
  const f32 = await time(run);
  const f16 = half ? await time(runUnderF16 ?? (() => autocastF16(() => run() as void))) : null;
  const b: Bench = { name, f32_ms: f32, f16_ms: f16, speedup: f16 ? f32 / f16 : null };
  if (flop) {
    b.gflops_f32 = flop / f32 / 1e6;
    b.gflops_f16 = f16 ? flop / f16 / 1e6 : null;
  }
  return b;
}

async function trainStep(model: () => wg.nn.Module, xShape: number[], precision: 'f32' | 'f16-mixed', tokens?: number): Promise<number> {
  wg.manualSeed(1);
  const m = model();
  // A GPT (token ids in, next tokens as targets) trains with AdamW; the MNIST models with SGD.
  const optimizer = tokens ? new wg.optim.AdamW(m.parameters(), { lr: 1e-3 }) : new wg.optim.SGD(m.parameters(), { lr: 0.01, momentum: 0.9 });
  const trainer = new wg.Trainer({ model: m, optimizer, loss: 'cross-entropy', precision });
  const n = xShape.reduce((a, b) => a * b, 1);
  const x = tokens ? wg.tensor(Int32Array.from({ length: n }, (_, i) => (i * 7) % tokens), xShape, { dtype: 'int32' }) : wg.randn(xShape);
  const y = tokens
    ? wg.tensor(Int32Array.from({ length: n }, (_, i) => (i * 5 + 1) % tokens), xShape, { dtype: 'int32' })
    : wg.tensor(Int32Array.from({ length: xShape[0]! }, (_, i) => i % 10), [xShape[0]!], { dtype: 'int32' });
  const ms = await time(async () => void (await trainer.step(x, y)));
  for (const t of [x, y]) t.dispose();
  optimizer.dispose();
  m.dispose();
  return ms;
}

// ---- main ---------------------------------------------------------------------------------------------

export async function main(args: string[] = []): Promise<void> {
  const flag = (f: string) => args.includes(f);
  const outIndex = args.indexOf('--out');
  const outFile = outIndex >= 0 ? args[outIndex + 1]! : join(process.env.OUT ?? '.', 'gpu-check.json');
  // WebGPU always: init()'s 'auto' would take the CPU backend on a software adapter, or where the
  // GPU's driver failed to load, and report a CPU's numbers as the GPU's.
  const info = await wg.init({ backend: 'webgpu', autotune: false });
  const a = info.adapterInfo;
  const hasF16 = info.features.includes('shader-f16');
  const software = a.isFallbackAdapter;
  console.log(`adapter: ${[a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(' / ') || '(unnamed)'}`);
  console.log(`software fallback: ${software}; features: ${info.features.join(', ') || 'none'}`);
  const limits = runtime().device!.limits;
  console.log(`limits: maxStorageBufferBindingSize ${limits.maxStorageBufferBindingSize}, maxComputeInvocationsPerWorkgroup ${limits.maxComputeInvocationsPerWorkgroup}`);
  console.log(`random seed ${startSeed}`);
  const summary: Record<string, unknown> = { date: new Date().toISOString(), adapter: a, features: info.features, seed: startSeed };
  const checks: Check[] = [];
  const notes: string[] = [];
  const guard = async (name: string, f: () => Promise<Check[]>) => {
    try {
      checks.push(...(await f()));
    } catch (e) {
      checks.push({ name, ok: false, error: String((e as Error).stack ?? e) });
    }
  };

  if (software) notes.push('a software (fallback) adapter: results say nothing about GPUs');
  if (hasF16) {
    const hasSubgroups = info.features.includes('subgroups');
    const sharings = hasSubgroups ? (['subgroup', 'workgroup'] as const) : (['workgroup'] as const);
    const shared: MatmulConfig = { family: 'shared', wgX: 8, wgY: 8, tm: 16, tn: 8, bk: 0 };
    const families: [string, MatmulConfig, OperandSharing | null][] = [
      ['direct', { family: 'direct', wgX: 8, wgY: 8, tm: 8, tn: 8, bk: 0 }, null],
      ['staged', { family: 'staged', wgX: 16, wgY: 16, tm: 4, tn: 4, bk: 16 }, null],
      ...sharings.map((s): [string, MatmulConfig, OperandSharing] => [`shared/${s}`, shared, s]),
      ['naive', NAIVE_CONFIG, null],
    ];
    for (const [family, config, sharing] of families) {
      setMatmulConfig(config);
      setOperandSharing(sharing);
      for (const [M, K, N] of [[33, 17, 9], [257, 131, 193], [512, 1024, 384]] as const) {
        if (family === 'naive' && M > 300) continue;
        await guard(`matmul ${family} ${M}×${K}×${N}`, () => checkMatmul(M, K, N, family));
        if (M < 300) await guard(`matmul f32·f16 ${family} ${M}×${K}×${N}`, () => checkFrozenHalf(M, K, N, family));
      }
    }
    setMatmulConfig(null);
    for (const sharing of sharings) {
      setOperandSharing(sharing);
      for (const [xs, ws, opts] of [
        [[2, 3, 17, 13], [5, 3, 3, 3], { padding: 1 }],
        [[3, 12, 9, 11], [10, 12, 3, 3], { stride: 2, padding: 1, dilation: [1, 2] }],
        [[4, 32, 28, 28], [64, 32, 5, 5], { padding: 2 }],
      ] as [number[], number[], wg.Conv2dOptions][]) {
        await guard(`conv2d ${sharing} ${xs.join('×')}`, () => checkConv(xs, ws, opts, sharing));
      }
    }
    setOperandSharing(null);
    for (const sharing of sharings) {
      setOperandSharing(sharing);
      await guard(`attention f16 ${sharing}`, () => checkAttention(`f16 shared/${sharing}`, true, [2, 3, 65, 65, 32], true));
      await guard(`attention f16 ${sharing}`, () => checkAttention(`f16 shared/${sharing}`, true, [1, 2, 17, 33, 17], false));
    }
    setOperandSharing(null);
  } else {
    const why = `the f16 checks were skipped: this adapter has no shader-f16`;
    console.log(why);
    notes.push(why);
  }
  await guard('GPT', () => checkGpt(hasF16));
  if (info.features.includes('subgroups')) await guard('subgroup reductions', checkRows);
  else notes.push('the subgroup checks were skipped: this adapter has no subgroups');
  if (!software) {
    // Every attention kernel variant (the test suite checks them on SwiftShader).
    const variants: [string, AttentionConfig, OperandSharing | null][] = [
      ['direct wg16', { shared: false, wg: 16 }, null],
      ...(info.features.includes('subgroups') ? [['shared/subgroup wg16', { shared: true, wg: 16 }, 'subgroup'] as [string, AttentionConfig, OperandSharing]] : []),
      ['shared/workgroup wg16', { shared: true, wg: 16 }, 'workgroup'],
    ];
    for (const [tag, config, sharing] of variants) {
      setAttentionConfig(config);
      setOperandSharing(sharing);
      await guard(`attention ${tag}`, () => checkAttention(tag, false, [2, 3, 65, 65, 32], true));
      await guard(`attention ${tag}`, () => checkAttention(tag, false, [1, 2, 17, 33, 17], false));
    }
    setAttentionConfig(null);
    setOperandSharing(null);
  }
  for (const c of checks) {
    const detail = c.error ?? `norm-relative ${c.normRelError?.toExponential(2)} ≤ ${c.normRelBound?.toExponential(2)}` +
      (c.roundedRatio !== undefined ? `, vs rounded operands ${c.roundedRatio.toFixed(3)} of the f32 bound` : '');
    console.log(`${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: ${detail}`);
  }

  // Benchmarks: sizes as asked on a GPU; small ones on a software adapter unless --full.
  const full = !software || flag('--full');
  const benches: Bench[] = [];
  const mm = full ? [1024, 2048] : [128, 256];
  for (const n of mm) {
    const A = wg.randn([n, n]);
    const B = wg.randn([n, n]);
    benches.push(await benchPair(`matmul ${n}² (f16: with the operand casts)`, () => void wg.matmul(A, B), hasF16, 2 * n ** 3));
    A.dispose();
    B.dispose();
  }
  const [N, C, HW, O, k] = full ? [32, 32, 28, 64, 5] : [2, 8, 14, 16, 5];
  {
    const x = wg.randn([N, C, HW, HW], { requiresGrad: true });
    const w = wg.randn([O, C, k, k], { requiresGrad: true });
    const flop = 2 * N * O * HW * HW * C * k * k;
    const name = `conv2d N=${N} C=${C} ${HW}×${HW} O=${O} k=${k} pad 2`;
    benches.push(await benchPair(`${name} forward`, () => void wg.noGrad(() => wg.conv2d(x, w, null, { padding: 2 })), hasF16, flop));
    const fb = () => {
      wg.conv2d(x, w, null, { padding: 2 }).sum().backward();
      x.grad?.dispose();
      w.grad?.dispose();
      x.grad = null;
      w.grad = null;
    };
    benches.push(await benchPair(`${name} forward + backward`, fb, hasF16, 3 * flop));
    x.dispose();
    w.dispose();
  }
  {
    const [B, H, T, Dh] = full ? [8, 4, 256, 32] : [2, 2, 64, 32];
    const [q, k, v] = [1, 2, 3].map((seed) => wg.randn([B, H, T, Dh], { seed, requiresGrad: true }));
    const fb = () => {
      wg.scaledDotProductAttention(q!, k!, v!, { causal: true }).sum().backward();
      for (const t of [q!, k!, v!]) {
        t.grad?.dispose();
        t.grad = null;
      }
    };
    benches.push(await benchPair(`attention B=${B} H=${H} T=${T} Dh=${Dh} causal forward + backward`, fb, hasF16));
    for (const t of [q!, k!, v!]) t.dispose();
  }
  const mlp = () => new wg.nn.Sequential(new wg.nn.Flatten(), new wg.nn.Linear(784, 512), new wg.nn.ReLU(), new wg.nn.Linear(512, 512), new wg.nn.ReLU(), new wg.nn.Linear(512, 10));
  const cnn = () => wg.models.mnistCNN({ channels: [32, 64] });
  for (const [name, model, batch] of [['MLP 784-512-512-10 SGD step', mlp, full ? 256 : 32], ['CNN conv5×5×32-pool-conv5×5×64-pool-fc10 SGD step', cnn, full ? 64 : 4]] as const) {
    const f32 = await trainStep(model, [batch, 1, 28, 28], 'f32');
    const f16 = hasF16 ? await trainStep(model, [batch, 1, 28, 28], 'f16-mixed') : null;
    benches.push({ name: `${name}, batch ${batch}`, f32_ms: f32, f16_ms: f16, speedup: f16 ? f32 / f16 : null });
  }
  {
    // The benchmark's gpt-step (bench/harness/workloads.ts), through the Trainer.
    const g = full ? { vocabSize: 96, contextLength: 64, layers: 4, heads: 4, dim: 128, batch: 16 } : { vocabSize: 96, contextLength: 32, layers: 2, heads: 2, dim: 32, batch: 4 };
    const model = () => wg.models.gpt(g);
    const f32 = await trainStep(model, [g.batch, g.contextLength], 'f32', g.vocabSize);
    const f16 = hasF16 ? await trainStep(model, [g.batch, g.contextLength], 'f16-mixed', g.vocabSize) : null;
    const name = `GPT ${g.layers} layers × ${g.heads} heads × dim ${g.dim}, vocab ${g.vocabSize}, context ${g.contextLength} AdamW step, batch ${g.batch}`;
    benches.push({ name, f32_ms: f32, f16_ms: f16, speedup: f16 ? f32 / f16 : null });
  }
  console.log('\nbenchmark (median ms; f16 = f16-mixed)');
  for (const b of benches) {
    const gf = b.gflops_f32 !== undefined ? `  GFLOP/s f32 ${b.gflops_f32.toFixed(1)}${b.gflops_f16 ? ` f16 ${b.gflops_f16.toFixed(1)}` : ''}` : '';
    console.log(`${b.name}: f32 ${b.f32_ms.toFixed(2)}  f16 ${b.f16_ms?.toFixed(2) ?? 'skipped'}${b.speedup ? `  ×${b.speedup.toFixed(2)}` : ''}${gf}`);
  }

  const failed = checks.filter((c) => !c.ok);
  Object.assign(summary, { checks, benchmarks: benches, notes, failed: failed.length, f16Checked: hasF16 });
  writeFileSync(outFile, JSON.stringify(summary, null, 1));
  console.log(`\n${checks.length - failed.length} checks passed, ${failed.length} failed; summary in ${outFile}`);
  wg.shutdown();
  if (failed.length) process.exitCode = 1;
  else if (flag('--require-f16') && (!hasF16 || software)) {
    console.log('--require-f16: this adapter is a software fallback or has no shader-f16');
    process.exitCode = 2;
  }
}

// Run directly (a bundle built by scripts/build-gpu-check.mjs); scripts/run.mjs calls main() itself.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
