// A float64 GPT-2-style forward pass written from nanoGPT's model.py, for checking
// wg.models.gpt: token + position embeddings, pre-LayerNorm blocks (causal self-attention with a
// fused QKV projection laid out [q | k | v], heads of dim / heads features each; a GELU MLP),
// final LayerNorm, logits through the tied token embedding (or lmHead.weight when present).
// Weights come by their state-dict names (GPT.stateDict()).

import { gelu } from './elementwise';
import { layerNorm } from './norm';

export interface GPTRefConfig {
  vocabSize: number;
  layers: number;
  heads: number;
  dim: number;
}

type Weights = Record<string, ArrayLike<number>>;

/** y [n, out] = x [n, in] · Wᵀ + b, W [out, in]. */
function linear(x: ArrayLike<number>, n: number, inF: number, w: ArrayLike<number>, b: ArrayLike<number> | undefined, outF: number): Float64Array {
  const y = new Float64Array(n * outF);
  for (let r = 0; r < n; r++) {
    for (let o = 0; o < outF; o++) {
      let s = b ? b[o]! : 0;
      for (let i = 0; i < inF; i++) s += x[r * inF + i]! * w[o * inF + i]!;
      y[r * outF + o] = s;
    }
  }
  return y;
}

/** Causal multi-head self-attention of one sequence: qkv [T, 3·D] → [T, D] (heads merged). */
function causalAttention(qkv: Float64Array, t: number, d: number, heads: number): Float64Array {
  const dh = d / heads;
  const out = new Float64Array(t * d);
  const at = (row: number, part: number, h: number, c: number) => qkv[row * 3 * d + part * d + h * dh + c]!;
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < t; i++) {
      const scores = new Float64Array(i + 1);
      for (let j = 0; j <= i; j++) {
        let s = 0;
        for (let c = 0; c < dh; c++) s += at(i, 0, h, c) * at(j, 1, h, c);
        scores[j] = s / Math.sqrt(dh);
      }
      const max = Math.max(...scores);
      let total = 0;
      for (let j = 0; j <= i; j++) total += (scores[j] = Math.exp(scores[j]! - max));
      for (let c = 0; c < dh; c++) {
        let s = 0;
        for (let j = 0; j <= i; j++) s += (scores[j]! / total) * at(j, 2, h, c);
        out[i * d + h * dh + c] = s;
      }
    }
  }
  return out;
}

/** Logits [B, T, V] (flat) for ids [B, T]. */
export function gptForward(cfg: GPTRefConfig, w: Weights, ids: ArrayLike<number>, b: number, t: number): Float64Array {
  const { vocabSize: v, dim: d, heads, layers } = cfg;
  const logits = new Float64Array(b * t * v);
  for (let s = 0; s < b; s++) {
    let x = new Float64Array(t * d);
    for (let i = 0; i < t; i++) {
      const id = ids[s * t + i]!;
      for (let c = 0; c < d; c++) x[i * d + c] = w['wte.weight']![id * d + c]! + w['wpe.weight']![i * d + c]!;
    }
    for (let l = 0; l < layers; l++) {
      const p = `blocks.${l}.`;
      const h1 = layerNorm(x, d, w[`${p}ln1.weight`]!, w[`${p}ln1.bias`]!);
      const qkv = linear(h1, t, d, w[`${p}attn.inProj.weight`]!, w[`${p}attn.inProj.bias`], 3 * d);
      const att = linear(causalAttention(qkv, t, d, heads), t, d, w[`${p}attn.outProj.weight`]!, w[`${p}attn.outProj.bias`], d);
      x = x.map((xi, k) => xi + att[k]!);
      const h2 = layerNorm(x, d, w[`${p}ln2.weight`]!, w[`${p}ln2.bias`]!);
      const hidden = w[`${p}fc.bias`]!.length;
      const f = linear(h2, t, d, w[`${p}fc.weight`]!, w[`${p}fc.bias`], hidden).map(gelu);
      const mlp = linear(f, t, hidden, w[`${p}proj.weight`]!, w[`${p}proj.bias`], d);
      x = x.map((xi, k) => xi + mlp[k]!);
    }
    const hf = layerNorm(x, d, w['lnF.weight']!, w['lnF.bias']!);
    const head = w['lmHead.weight'] ?? w['wte.weight']!;
    logits.set(linear(hf, t, d, head, undefined, v), s * t * v);
  }
  return logits;
}

/** Mean cross-entropy of logits [N, V] against targets [N]. */
export function meanCrossEntropy(logits: ArrayLike<number>, targets: ArrayLike<number>, v: number): number {
  let total = 0;
  for (let n = 0; n < targets.length; n++) {
    let max = -Infinity;
    for (let k = 0; k < v; k++) max = Math.max(max, logits[n * v + k]!);
    let s = 0;
    for (let k = 0; k < v; k++) s += Math.exp(logits[n * v + k]! - max);
    total += max + Math.log(s) - logits[n * v + targets[n]!]!;
  }
  return total / targets.length;
}
