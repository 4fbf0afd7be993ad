// Self-attention layers: MultiheadAttention (one fused QKV projection, the fused attention op,
// an output projection) and TransformerBlock (pre-norm, as GPT-2: x + attn(ln1(x)), then
// x + mlp(ln2(x)) with a GELU MLP). Both take a KVCache for generation: each call appends its
// tokens' keys and values and attends to every cached position, so a new token costs one
// position's work (see ops/attention.ts).

import { selfAttention, type KVCache } from '../ops/attention';
import { add } from '../ops/elementwise';
import { ShapeError } from '../runtime/errors';
import { formatShape, type Tensor } from '../tensor';
import { GELU } from './activations';
import { Dropout } from './dropout';
import { Linear } from './linear';
import { Module } from './module';
import { LayerNorm } from './normalization';

export { KVCache } from '../ops/attention';

export interface MultiheadAttentionOptions {
  /** Each position attends only to itself and earlier ones (a language model). Default false. */
  causal?: boolean;
  /** Dropout on the attention weights while training. Default 0. */
  dropout?: number;
  /** Biases in the projections. Default true. */
  bias?: boolean;
}

/** What a layer's forward takes besides its input. */
export interface AttentionCall {
  /** Append this call's keys and values to the cache and attend to all of it (inference only). */
  cache?: KVCache;
}

/**
 * Multi-head self-attention on [B, T, dim]: one Linear(dim, 3·dim) gives every head's queries,
 * keys and values at once ([B, T, 3, heads, dim / heads]), the fused kernel attends per head
 * reading them in place, and Linear(dim, dim) projects the merged heads.
 */
export class MultiheadAttention extends Module {
  readonly headDim: number;
  readonly causal: boolean;
  readonly dropout: number;
  inProj: Linear;
  outProj: Linear;

  constructor(readonly dim: number, readonly heads: number, { causal = false, dropout = 0, bias = true }: MultiheadAttentionOptions = {}) {
    super();
    if (!Number.isInteger(heads) || heads < 1 || !Number.isInteger(dim) || dim < 1 || dim % heads !== 0) {
      throw new ShapeError(`MultiheadAttention: dim ${dim} must be a positive multiple of the number of heads ${heads}`);
    }
    if (!(dropout >= 0 && dropout < 1)) throw new ShapeError(`MultiheadAttention: dropout must be in [0, 1), got ${dropout}`);
    this.headDim = dim / heads;
    this.causal = causal;
    this.dropout = dropout;
    this.inProj = new Linear(dim, 3 * dim, { bias });
    this.outProj = new Linear(dim, dim, { bias });
  }

  forward(x: Tensor, { cache }: AttentionCall = {}): Tensor {
    if (x.ndim !== 3 || x.shape[2] !== this.dim) {
      throw new ShapeError(`MultiheadAttention(${this.dim}, ${this.heads}): input ${formatShape(x.shape)} is not [B, T, ${this.dim}]`);
    }
    // Dropout's seed comes from the global generator (wg.manualSeed repeats it).
    const attended = selfAttention(this.inProj.forward(x), this.heads, { causal: this.causal, dropout: this.training ? this.dropout : 0 }, cache);
    return this.outProj.forward(attended);
  }
}

export interface TransformerBlockOptions {
  /** Hidden width of the MLP as a multiple of dim. Default 4. */
  mlpRatio?: number;
  /** Dropout on the attention weights and on both residual branches while training. Default 0. */
  dropout?: number;
  /** Causal self-attention (a language model). Default false. */
  causal?: boolean;
  /** The MLP's GELU: 'gelu' (exact, the default) or 'gelu_tanh' (the tanh approximation: GPT-2's gelu_new). */
  activation?: 'gelu' | 'gelu_tanh';
  /** The LayerNorms' epsilon. Default 1e-5 (GPT-2's). */
  layerNormEps?: number;
}

/**
 * A pre-norm transformer block, as GPT-2's: x + drop(attn(ln1(x))), then x + drop(mlp(ln2(x)))
 * with mlp = Linear(dim, mlpRatio·dim) → GELU → Linear(mlpRatio·dim, dim).
 */
export class TransformerBlock extends Module {
  ln1: LayerNorm;
  attn: MultiheadAttention;
  ln2: LayerNorm;
  fc: Linear;
  act: GELU;
  proj: Linear;
  drop: Dropout;

  constructor(readonly dim: number, readonly heads: number, { mlpRatio = 4, dropout = 0, causal = false, activation = 'gelu', layerNormEps = 1e-5 }: TransformerBlockOptions = {}) {
    super();
    const hidden = Math.round(mlpRatio * dim);
    if (!(mlpRatio > 0) || hidden < 1) throw new ShapeError(`TransformerBlock: mlpRatio must be positive, got ${mlpRatio}`);
    if (activation !== 'gelu' && activation !== 'gelu_tanh') {
      throw new ShapeError(`TransformerBlock: activation must be 'gelu' or 'gelu_tanh', got ${JSON.stringify(activation)}`);
    }
    this.ln1 = new LayerNorm(dim, { eps: layerNormEps });
    this.attn = new MultiheadAttention(dim, heads, { causal, dropout });
    this.ln2 = new LayerNorm(dim, { eps: layerNormEps });
    this.fc = new Linear(dim, hidden);
    this.act = new GELU({ approximate: activation === 'gelu_tanh' ? 'tanh' : 'none' });
    this.proj = new Linear(hidden, dim);
    this.drop = new Dropout(dropout);
  }

  /** A block is the unit of checkpointing (Module.checkpointBlocks()). */
  override checkpointBlocks(): Module[] {
    return [this];
  }

  forward(x: Tensor, call: AttentionCall = {}): Tensor {
    const h = add(x, this.drop.forward(this.attn.forward(this.ln1.forward(x), call)));
    return add(h, this.drop.forward(this.proj.forward(this.act.forward(this.fc.forward(this.ln2.forward(h))))));
  }
}
