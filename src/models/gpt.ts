// wg.models.gpt(config): a GPT-2-style decoder-only language model (as nanoGPT's model.py):
//
//   ids [B, T] → token embedding wte [V, D] + learned position embedding wpe [C, D] → dropout
//     → `layers` pre-LayerNorm TransformerBlocks (causal fused attention, GELU MLP of 4·D)
//     → final LayerNorm → logits [B, T, V] = h · wteᵀ (tied, the default) or an lmHead Linear.
//
// GPT-2's initialisation: every Linear weight and both embeddings N(0, 0.02), biases 0, LayerNorm
// weight 1 and bias 0, and the two projections that write into the residual stream of each block
// (the attention's output projection and the MLP's second Linear) N(0, 0.02/√(2·layers)), so that
// the residual stream's variance does not grow with depth. Drawn from the global generator:
// wg.manualSeed(n) before gpt() gives the same model every time.
//
// The positions' embeddings are a slice of wpe (a view: no gather, and a cheap backward), from
// the first position not yet in the KV caches when generating (see generate.ts).

import { noGrad } from '../autograd/grad-mode';
import { zeros } from '../creation';
import { Dropout } from '../nn/dropout';
import { KVCache, TransformerBlock } from '../nn/attention';
import { Embedding } from '../nn/embedding';
import { normal } from '../nn/init';
import { Linear } from '../nn/linear';
import { Module } from '../nn/module';
import { LayerNorm } from '../nn/normalization';
import { copyInto } from '../ops/copy';
import { add } from '../ops/elementwise';
import { matmul } from '../ops/matmul';
import { mT, narrow } from '../ops/shape';
import { DTypeError, LimitError, ShapeError, WebGradError } from '../runtime/errors';
import { tidy } from '../scope';
import { formatShape, type Tensor } from '../tensor';

export interface GPTConfig {
  /** Token ids are in [0, vocabSize). */
  vocabSize: number;
  /** The most positions a sequence may have (the position embedding's rows). */
  contextLength: number;
  /** Transformer blocks. */
  layers: number;
  /** Attention heads per block (dim must be a multiple). */
  heads: number;
  /** Width of the residual stream (the embeddings). */
  dim: number;
  /** Dropout after the embeddings, on the attention weights and on each residual branch, while training (default 0). */
  dropout?: number;
  /** Use the token embedding as the output projection (default true, as GPT-2). */
  tieWeights?: boolean;
  /** The MLP's GELU: 'gelu' (exact, the default) or 'gelu_tanh' (GPT-2's gelu_new; wg.models.gpt2 sets it). */
  activation?: 'gelu' | 'gelu_tanh';
  /** The LayerNorms' epsilon (default 1e-5, GPT-2's). */
  layerNormEps?: number;
}

export interface GPTCall {
  /** One KV cache per block (GPT.newCaches()): the call's positions follow those already cached. Inference only. */
  caches?: KVCache[];
}

/** GPT-2's standard deviation for weights. */
const INIT_STD = 0.02;

export class GPT extends Module {
  override readonly inputDType = 'int32';
  readonly config: Readonly<Required<GPTConfig>>;
  wte: Embedding;
  wpe: Embedding;
  drop: Dropout;
  blocks: TransformerBlock[];
  lnF: LayerNorm;
  /** The output projection when the weights are not tied (else the token embedding serves). */
  lmHead: Linear | null;

  constructor(config: GPTConfig) {
    super();
    const c = checkConfig(config);
    this.config = c;
    this.wte = new Embedding(c.vocabSize, c.dim);
    this.wpe = new Embedding(c.contextLength, c.dim);
    this.drop = new Dropout(c.dropout);
    this.blocks = Array.from(
      { length: c.layers },
      () => new TransformerBlock(c.dim, c.heads, { causal: true, dropout: c.dropout, activation: c.activation, layerNormEps: c.layerNormEps }),
    );
    this.lnF = new LayerNorm(c.dim, { eps: c.layerNormEps });
    this.lmHead = c.tieWeights ? null : new Linear(c.dim, c.vocabSize, { bias: false });
    this.initialise();
  }

  get vocabSize(): number {
    return this.config.vocabSize;
  }

  get contextLength(): number {
    return this.config.contextLength;
  }

  /** Parameters, tied ones counted once (GPT-2 small: 124,439,808). */
  get parameterCount(): number {
    return this.parameters().reduce((n, p) => n + p.size, 0);
  }

  /** Empty KV caches, one per block, for generation (dispose them after). */
  newCaches(): KVCache[] {
    return this.blocks.map(() => new KVCache(this.config.contextLength));
  }

  /** Logits [B, T, vocabSize] for token ids [B, T] (int32): position t sees tokens 0…t only. */
  forward(ids: Tensor, { caches }: GPTCall = {}): Tensor {
    const { vocabSize, contextLength, dim } = this.config;
    const what = `GPT(vocabSize ${vocabSize}, contextLength ${contextLength})`;
    if (ids.dtype !== 'int32') {
      throw new DTypeError(`${what}: token ids ${formatShape(ids.shape)} are ${ids.dtype}; they must be int32 (wg.tensor(ids, shape, { dtype: 'int32' }))`);
    }
    if (ids.ndim !== 2 || ids.shape[1] === 0) throw new ShapeError(`${what}: token ids must be [B, T] with T ≥ 1, got ${formatShape(ids.shape)}`);
    if (caches && caches.length !== this.blocks.length) {
      throw new WebGradError(`${what}: ${caches.length} KV caches for ${this.blocks.length} blocks (GPT.newCaches() makes them)`);
    }
    const t = ids.shape[1]!;
    const past = caches?.[0]?.length ?? 0;
    if (past + t > contextLength) {
      throw new LimitError(
        past
          ? `${what}: ${past} cached positions and ${t} new tokens make ${past + t}, more than the context length ${contextLength}`
          : `${what}: a sequence of ${t} tokens is longer than the context length ${contextLength} (feed at most the last ${contextLength})`,
      );
    }
    return tidy(() => {
      const pos = narrow(this.wpe.weight, 0, past, t); // [T, D]: positions past … past + T − 1
      let h = this.drop.forward(add(this.wte.forward(ids), pos));
      this.blocks.forEach((block, i) => {
        h = block.forward(h, caches ? { cache: caches[i]! } : {});
      });
      h = this.lnF.forward(h);
      if (this.lmHead) return this.lmHead.forward(h);
      if (h.shape[2] !== dim) throw new ShapeError(`${what}: hidden state ${formatShape(h.shape)} is not [B, T, ${dim}]`);
      return matmul(h, mT(this.wte.weight)); // wteᵀ read in place
    });
  }

  /** GPT-2's initialisation (see the top of this file), drawn in module order. */
  private initialise(): void {
    const std = INIT_STD;
    const residual = INIT_STD / Math.sqrt(2 * this.config.layers);
    const set = (p: Tensor | null, s: number) => {
      if (!p) return;
      tidy(() => noGrad(() => copyInto(p, s === 0 ? zeros(p.shape) : normal(p.shape, s))));
    };
    set(this.wte.weight, std);
    set(this.wpe.weight, std);
    for (const b of this.blocks) {
      for (const lin of [b.attn.inProj, b.attn.outProj, b.fc, b.proj]) {
        set(lin.weight, lin === b.attn.outProj || lin === b.proj ? residual : std);
        if (lin.bias) set(lin.bias, 0);
      }
    }
    if (this.lmHead) set(this.lmHead.weight, std);
  }
}

/** A GPT-2-style language model (see GPT). */
export function gpt(config: GPTConfig): GPT {
  return new GPT(config);
}

function checkConfig(config: GPTConfig): Required<GPTConfig> {
  const op = 'wg.models.gpt';
  if (typeof config !== 'object' || config === null) throw new WebGradError(`${op}: expected { vocabSize, contextLength, layers, heads, dim }`);
  for (const k of ['vocabSize', 'contextLength', 'layers', 'heads', 'dim'] as const) {
    const v = config[k];
    if (!Number.isSafeInteger(v) || v < 1) throw new WebGradError(`${op}: ${k} must be a positive integer, got ${String(v)}`);
  }
  if (config.dim % config.heads !== 0) {
    throw new ShapeError(`${op}: dim ${config.dim} must be a multiple of heads ${config.heads} (each head gets dim / heads features)`);
  }
  const dropout = config.dropout ?? 0;
  if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1)) throw new WebGradError(`${op}: dropout must be in [0, 1), got ${String(dropout)}`);
  const tieWeights = config.tieWeights ?? true;
  if (typeof tieWeights !== 'boolean') throw new WebGradError(`${op}: tieWeights must be true or false, got ${String(tieWeights)}`);
  const activation = config.activation ?? 'gelu';
  if (activation !== 'gelu' && activation !== 'gelu_tanh') throw new WebGradError(`${op}: activation must be 'gelu' or 'gelu_tanh', got ${JSON.stringify(activation)}`);
  const layerNormEps = config.layerNormEps ?? 1e-5;
  if (typeof layerNormEps !== 'number' || !(layerNormEps > 0) || !Number.isFinite(layerNormEps)) {
    throw new WebGradError(`${op}: layerNormEps must be a positive number, got ${String(layerNormEps)}`);
  }
  const { vocabSize, contextLength, layers, heads, dim } = config;
  return { vocabSize, contextLength, layers, heads, dim, dropout, tieWeights, activation, layerNormEps };
}
