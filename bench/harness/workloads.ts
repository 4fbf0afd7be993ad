// The work every engine does, described once: the same shapes, the same float32 data, the same
// loss and the same plain-SGD update. Engines turn this into their own calls and layouts.

import { normal, seededRandom, uniform } from './random';

/**
 * On WebGPU: webgrad, TF.js, jax-js. On the CPU (WebAssembly): webgrad's CPU backend, jax-js and
 * TF.js, each in a Web Worker of its own (their runtimes are global: one backend per context).
 */
export type EngineName = 'webgrad' | 'tfjs-webgpu' | 'jax-js-webgpu' | WasmEngineName;
export type WasmEngineName = 'webgrad-wasm' | WasmPeerName;
/** The peers' WebAssembly backends. */
export type WasmPeerName = 'jax-js-wasm' | 'tfjs-wasm';
export const ENGINES: readonly EngineName[] = ['webgrad', 'tfjs-webgpu', 'jax-js-webgpu', 'webgrad-wasm', 'jax-js-wasm', 'tfjs-wasm'];

export interface MatmulWork { kind: 'matmul'; name: string; n: number }
export interface ConvWork {
  kind: 'conv2d'; name: 'conv2d-fwd-bwd';
  N: number; C: number; H: number; W: number; O: number; k: number; padding: number;
}
/** Linear layers with ReLU between them; `sizes` = [in, hidden…, classes]. */
export interface MlpWork { kind: 'mlp'; name: 'mlp-step'; batch: number; sizes: number[]; lr: number }
/**
 * conv k×k×c1 (same padding) → ReLU → maxpool 2 → conv k×k×c2 → ReLU → maxpool 2 → linear to
 * `classes`, on size×size single-channel images.
 */
export interface CnnWork {
  kind: 'cnn'; name: 'cnn-step'; batch: number; size: number; k: number; channels: [number, number]; classes: number; lr: number;
}
/** layerNorm over the last dimension of x [rows, dim], with weight and bias: forward and the three gradients. */
export interface LayerNormWork { kind: 'layernorm'; name: 'layernorm-fwd-bwd'; rows: number; dim: number; eps: number }
/**
 * Scaled dot-product attention, forward and the gradients of q, k and v, for q, k, v of shape
 * [B, H, T, Dh] (each engine takes them in its own layout) and an upstream gradient of the output.
 */
export interface AttentionWork { kind: 'attention'; name: 'attention-fwd-bwd'; B: number; H: number; T: number; Dh: number; causal: boolean }
/**
 * One training step of a GPT-2-style character model: token + learned position embeddings,
 * `layers` pre-LayerNorm blocks (causal self-attention with a fused QKV projection, GELU MLP of
 * 4·dim), a final LayerNorm, logits through the tied token embedding; mean cross-entropy over
 * the batch's tokens; AdamW (betas 0.9/0.999, eps 1e-8, weight decay 0.01 on every parameter).
 */
export interface GptWork {
  kind: 'gpt'; name: 'gpt-step'; vocab: number; context: number; layers: number; heads: number; dim: number; batch: number; lr: number;
}
export type Work = MatmulWork | ConvWork | MlpWork | CnnWork | LayerNormWork | AttentionWork | GptWork;

/** The full benchmark, or (quick) tiny sizes that only show that everything runs. */
export function workloads(quick = false): Work[] {
  const matmuls = (quick ? [32, 64] : [256, 512, 1024, 2048]).map((n): MatmulWork => ({ kind: 'matmul', name: `matmul-${n}`, n }));
  return [
    ...matmuls,
    quick
      ? { kind: 'conv2d', name: 'conv2d-fwd-bwd', N: 2, C: 3, H: 9, W: 9, O: 4, k: 5, padding: 2 }
      : { kind: 'conv2d', name: 'conv2d-fwd-bwd', N: 32, C: 32, H: 28, W: 28, O: 64, k: 5, padding: 2 },
    { kind: 'mlp', name: 'mlp-step', batch: quick ? 8 : 256, sizes: quick ? [784, 32, 32, 10] : [784, 512, 512, 10], lr: 0.01 },
    { kind: 'cnn', name: 'cnn-step', batch: quick ? 4 : 64, size: 28, k: 5, channels: quick ? [4, 8] : [32, 64], classes: 10, lr: 0.01 },
    { kind: 'layernorm', name: 'layernorm-fwd-bwd', rows: quick ? 9 : 4096, dim: quick ? 33 : 512, eps: 1e-5 },
    quick
      ? { kind: 'attention', name: 'attention-fwd-bwd', B: 2, H: 2, T: 17, Dh: 8, causal: true }
      : { kind: 'attention', name: 'attention-fwd-bwd', B: 8, H: 4, T: 256, Dh: 32, causal: true },
    quick
      ? { kind: 'gpt', name: 'gpt-step', vocab: 11, context: 9, layers: 2, heads: 2, dim: 16, batch: 3, lr: 1e-3 }
      : { kind: 'gpt', name: 'gpt-step', vocab: 96, context: 64, layers: 4, heads: 4, dim: 128, batch: 16, lr: 1e-3 },
  ];
}

/** Floating-point operations of one run, where a throughput figure means something. */
export function flops(w: Work): number | undefined {
  if (w.kind === 'matmul') return 2 * w.n ** 3;
  if (w.kind === 'conv2d') {
    const { OH, OW } = convOut(w);
    // forward, input gradient and weight gradient each cost one forward's multiply-adds
    return 3 * 2 * w.N * w.O * OH * OW * w.C * w.k * w.k;
  }
  return undefined;
}

/** A short human description of the shapes. */
export function describe(w: Work): string {
  switch (w.kind) {
    case 'matmul':
      return `${w.n}×${w.n} · ${w.n}×${w.n}`;
    case 'conv2d':
      return `x ${w.N}×${w.C}×${w.H}×${w.W}, w ${w.O}×${w.C}×${w.k}×${w.k}, padding ${w.padding}: forward + both gradients`;
    case 'mlp':
      return `${w.sizes.join('-')}, batch ${w.batch}, SGD, cross-entropy`;
    case 'layernorm':
      return `x ${w.rows}×${w.dim}, weight and bias [${w.dim}]: forward + the gradients of x, weight and bias`;
    case 'cnn':
      return `conv${w.k}×${w.k}×${w.channels[0]}-pool2-conv${w.k}×${w.k}×${w.channels[1]}-pool2-fc${w.classes} on ${w.size}×${w.size}×1, batch ${w.batch}, SGD`;
    case 'attention':
      return `q, k, v ${w.B}×${w.H}×${w.T}×${w.Dh}${w.causal ? ', causal' : ''}: forward + gradients of q, k, v`;
    case 'gpt':
      return `GPT ${w.layers} layers × ${w.heads} heads × dim ${w.dim}, vocab ${w.vocab}, context ${w.context}, batch ${w.batch}, AdamW`;
  }
}

export function convOut(w: Pick<ConvWork, 'H' | 'W' | 'k' | 'padding'>): { OH: number; OW: number } {
  return { OH: w.H + 2 * w.padding - w.k + 1, OW: w.W + 2 * w.padding - w.k + 1 };
}

/** A layer's parameters in PyTorch's layout: Linear weight [out, in], Conv2d weight [O, C, kH, kW]. */
export interface LayerParams { w: Float32Array; b: Float32Array }

export interface MatmulData { a: Float32Array; b: Float32Array }
/** x [N, C, H, W], w [O, C, k, k], dy [N, O, OH, OW] (the upstream gradient). */
export interface ConvData { x: Float32Array; w: Float32Array; dy: Float32Array }
/** x is [batch, features] (MLP) or [batch, 1, size, size] (CNN); layers in forward order. */
export interface StepData { x: Float32Array; labels: Int32Array; layers: LayerParams[] }

/** x [rows, dim], weight and bias [dim], dy [rows, dim] (the upstream gradient). */
export interface NormData { x: Float32Array; w: Float32Array; b: Float32Array; dy: Float32Array }

/** q, k, v and the output's upstream gradient dO, each [B, H, T, Dh] (PyTorch's layout). */
export interface AttentionData { q: Float32Array; k: Float32Array; v: Float32Array; dO: Float32Array }

/** One block's parameters, PyTorch layouts: Linear weights [out, in]; qkv's rows are [q | k | v], each head's dim / heads rows in order. */
export interface GptBlockParams {
  ln1w: Float32Array; ln1b: Float32Array;
  qkvw: Float32Array; qkvb: Float32Array; // [3·dim, dim], [3·dim]
  projw: Float32Array; projb: Float32Array; // [dim, dim], [dim]
  ln2w: Float32Array; ln2b: Float32Array;
  fcw: Float32Array; fcb: Float32Array; // [4·dim, dim], [4·dim]
  fc2w: Float32Array; fc2b: Float32Array; // [dim, 4·dim], [dim]
}

/** Token ids x and next tokens y [batch, context]; GPT-2's initialisation (N(0, 0.02), residual projections /√(2·layers)). */
export interface GptData {
  x: Int32Array; y: Int32Array;
  wte: Float32Array; wpe: Float32Array; // [vocab, dim], [context, dim]
  blocks: GptBlockParams[];
  lnfw: Float32Array; lnfb: Float32Array;
}

export type WorkData<W extends Work> = W extends MatmulWork
  ? MatmulData
  : W extends ConvWork
    ? ConvData
    : W extends LayerNormWork
      ? NormData
      : W extends AttentionWork
        ? AttentionData
        : W extends GptWork
          ? GptData
          : StepData;

/** The inputs and initial parameters of a work item, the same for every engine (seeded). */
export function workData<W extends Work>(w: W): WorkData<W> {
  const rand = seededRandom(20240601);
  switch (w.kind) {
    case 'matmul':
      return { a: normal(rand, w.n * w.n), b: normal(rand, w.n * w.n) } as WorkData<W>;
    case 'conv2d': {
      const { OH, OW } = convOut(w);
      const fanIn = w.C * w.k * w.k;
      return {
        x: normal(rand, w.N * w.C * w.H * w.W),
        w: uniform(rand, w.O * fanIn, 1 / Math.sqrt(fanIn)),
        dy: normal(rand, w.N * w.O * OH * OW),
      } as WorkData<W>;
    }
    case 'mlp': {
      const layers = w.sizes.slice(1).map((out, i) => linear(rand, w.sizes[i]!, out));
      return { x: normal(rand, w.batch * w.sizes[0]!), labels: labels(rand, w.batch, w.sizes.at(-1)!), layers } as WorkData<W>;
    }
    case 'layernorm': {
      const n = w.rows * w.dim;
      // Rows with a mean away from zero, as activations have; weights near 1.
      const x = Float32Array.from(normal(rand, n), (v) => 2 * v + 0.5);
      const weight = Float32Array.from(uniform(rand, w.dim, 0.5), (v) => 1 + v);
      return { x, w: weight, b: uniform(rand, w.dim, 0.5), dy: normal(rand, n) } as WorkData<W>;
    }
    case 'cnn': {
      const [c1, c2] = w.channels;
      const { flat } = cnnShapes(w);
      const layers = [conv(rand, c1, 1, w.k), conv(rand, c2, c1, w.k), linear(rand, flat, w.classes)];
      return { x: normal(rand, w.batch * w.size * w.size), labels: labels(rand, w.batch, w.classes), layers } as WorkData<W>;
    }
    case 'attention': {
      const n = w.B * w.H * w.T * w.Dh;
      return { q: normal(rand, n), k: normal(rand, n), v: normal(rand, n), dO: normal(rand, n) } as WorkData<W>;
    }
    case 'gpt': {
      const { vocab: v, context: c, dim: d, batch: b } = w;
      const scaled = (n: number, std: number) => normal(rand, n).map((x) => x * std);
      const residual = 0.02 / Math.sqrt(2 * w.layers);
      const blocks = Array.from({ length: w.layers }, (): GptBlockParams => ({
        ln1w: new Float32Array(d).fill(1), ln1b: new Float32Array(d),
        qkvw: scaled(3 * d * d, 0.02), qkvb: new Float32Array(3 * d),
        projw: scaled(d * d, residual), projb: new Float32Array(d),
        ln2w: new Float32Array(d).fill(1), ln2b: new Float32Array(d),
        fcw: scaled(4 * d * d, 0.02), fcb: new Float32Array(4 * d),
        fc2w: scaled(4 * d * d, residual), fc2b: new Float32Array(d),
      }));
      return {
        x: labels(rand, b * c, v), y: labels(rand, b * c, v),
        wte: scaled(v * d, 0.02), wpe: scaled(c * d, 0.02), blocks,
        lnfw: new Float32Array(d).fill(1), lnfb: new Float32Array(d),
      } as WorkData<W>;
    }
  }
}

/** The CNN's feature map after the second pooling, and the flattened feature count. */
export function cnnShapes(w: CnnWork): { pooled: number; flat: number } {
  const pooled = Math.floor(Math.floor(w.size / 2) / 2);
  return { pooled, flat: w.channels[1] * pooled * pooled };
}

/** PyTorch's default initialisation bounds: uniform in ±1/√fan-in. */
function linear(rand: () => number, inF: number, outF: number): LayerParams {
  const bound = 1 / Math.sqrt(inF);
  return { w: uniform(rand, outF * inF, bound), b: uniform(rand, outF, bound) };
}

function conv(rand: () => number, out: number, inC: number, k: number): LayerParams {
  const bound = 1 / Math.sqrt(inC * k * k);
  return { w: uniform(rand, out * inC * k * k, bound), b: uniform(rand, out, bound) };
}

function labels(rand: () => number, n: number, classes: number): Int32Array {
  return Int32Array.from({ length: n }, () => Math.floor(rand() * classes));
}

/** The work items named (all when `names` is absent), in benchmark order. */
export function selectWorks(quick: boolean, names?: readonly string[]): Work[] {
  const all = workloads(quick);
  if (!names) return all;
  const unknown = names.filter((n) => !all.some((w) => w.name === n));
  if (unknown.length) throw new Error(`unknown work ${unknown.join(', ')}; ${quick ? 'quick ' : ''}work items are ${all.map((w) => w.name).join(', ')}`);
  return all.filter((w) => names.includes(w.name));
}

/** The engines named (all when `names` is absent), in benchmark order. */
export function selectEngines(names?: readonly string[]): EngineName[] {
  if (!names) return [...ENGINES];
  const unknown = names.filter((n) => !ENGINES.includes(n as EngineName));
  if (unknown.length) throw new Error(`unknown engine ${unknown.join(', ')}; engines are ${ENGINES.join(', ')}`);
  return ENGINES.filter((e) => names.includes(e));
}
