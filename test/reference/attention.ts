// Float64 reference of scaledDotProductAttention: the composite q·kᵀ → scale → mask → softmax →
// dropout → ·v, per (b, h), with the kernels' dropout hash (shaders/attention_common.wgsl), so
// that values with dropout can be checked exactly and differentiated by finite differences.

export interface AttentionRefOptions {
  B: number;
  H: number;
  Tq: number;
  Tk: number;
  Dh: number;
  causal?: boolean;
  /** Causal with the queries after `shift` keys (key j masked for query i when j > i + shift). */
  shift?: number;
  /** The additive mask's values and shape (broadcast to [B, H, Tq, Tk]). */
  mask?: { data: ArrayLike<number>; shape: number[] };
  scale?: number;
  dropout?: number;
  seed?: number;
}

/** lowbias32, as the kernels' hash_u32. */
export function hashU32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d) >>> 0;
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

/** Whether dropout keeps the weight of key j for query i of head bh (b·H + h). */
export function kept(seed: number, bh: number, Tq: number, i: number, j: number, p: number): boolean {
  const rowKey = hashU32((hashU32(seed) ^ ((Math.imul(bh, Tq) + i) >>> 0)) >>> 0);
  const r = (hashU32((rowKey ^ j) >>> 0) >>> 8) / 16777216;
  return r >= Math.fround(p);
}

/** The value of the mask at (b, h, i, j), broadcast. */
function maskAt(m: { data: ArrayLike<number>; shape: number[] }, idx: number[]): number {
  const shape = [...Array(4 - m.shape.length).fill(1), ...m.shape];
  let o = 0;
  for (let d = 0; d < 4; d++) o = o * shape[d]! + (shape[d] === 1 ? 0 : idx[d]!);
  return m.data[o]!;
}

/** The attention weights after dropout, [B, H, Tq, Tk] (flat); with `beforeDropout`, the softmax alone. */
export function attentionWeights(q: ArrayLike<number>, k: ArrayLike<number>, o: AttentionRefOptions, beforeDropout = false): Float64Array {
  const { B, H, Tq, Tk, Dh } = o;
  const scale = o.scale ?? 1 / Math.sqrt(Dh);
  const p = o.dropout ?? 0;
  const shift = o.shift ?? 0;
  const w = new Float64Array(B * H * Tq * Tk);
  const s = new Float64Array(Tk);
  for (let bh = 0; bh < B * H; bh++) {
    for (let i = 0; i < Tq; i++) {
      let mx = -Infinity;
      for (let j = 0; j < Tk; j++) {
        let dot = 0;
        for (let d = 0; d < Dh; d++) dot += q[(bh * Tq + i) * Dh + d]! * k[(bh * Tk + j) * Dh + d]!;
        let x = scale * dot;
        if (o.mask) x += maskAt(o.mask, [Math.floor(bh / H), bh % H, i, j]);
        if (o.causal && j > i + shift) x = -Infinity;
        s[j] = x;
        mx = Math.max(mx, x);
      }
      let sum = 0;
      for (let j = 0; j < Tk; j++) sum += Math.exp(s[j]! - mx);
      for (let j = 0; j < Tk; j++) {
        let x = Math.exp(s[j]! - mx) / sum;
        if (p > 0 && !beforeDropout) x = kept(o.seed ?? 0, bh, Tq, i, j, p) ? x / (1 - p) : 0;
        w[(bh * Tq + i) * Tk + j] = x;
      }
    }
  }
  return w;
}

/** softmax(scale · q·kᵀ + mask) · v (with dropout), [B, H, Tq, Dh] flat; q, k, v contiguous. */
export function attention(q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, o: AttentionRefOptions): Float64Array {
  const { B, H, Tq, Tk, Dh } = o;
  const w = attentionWeights(q, k, o);
  const out = new Float64Array(B * H * Tq * Dh);
  for (let bh = 0; bh < B * H; bh++) {
    for (let i = 0; i < Tq; i++) {
      for (let j = 0; j < Tk; j++) {
        const x = w[(bh * Tq + i) * Tk + j]!;
        if (x === 0) continue;
        for (let d = 0; d < Dh; d++) out[(bh * Tq + i) * Dh + d] += x * v[(bh * Tk + j) * Dh + d]!;
      }
    }
  }
  return out;
}

/**
 * The gradients of q, k and v for the output's gradient dO, analytically in float64: with the
 * softmax P, the dropped weights W = P ∘ Z / (1 − p) and O = W·v,
 * dV = Wᵀ·dO, dP = (dO·vᵀ) ∘ Z / (1 − p), dS = P ∘ (dP − rowsum(P ∘ dP)), dQ = scale·dS·k,
 * dK = scale·dSᵀ·q. (Checked against finite differences in test/ops/attention.test.ts.)
 */
export function attentionGrads(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  dO: ArrayLike<number>,
  o: AttentionRefOptions,
): { dq: Float64Array; dk: Float64Array; dv: Float64Array } {
  const { B, H, Tq, Tk, Dh } = o;
  const scale = o.scale ?? 1 / Math.sqrt(Dh);
  const P = attentionWeights(q, k, o, true);
  const W = attentionWeights(q, k, o);
  const dq = new Float64Array(B * H * Tq * Dh);
  const dk = new Float64Array(B * H * Tk * Dh);
  const dv = new Float64Array(B * H * Tk * Dh);
  const dP = new Float64Array(Tk);
  for (let bh = 0; bh < B * H; bh++) {
    for (let i = 0; i < Tq; i++) {
      let D = 0;
      for (let j = 0; j < Tk; j++) {
        const w = W[(bh * Tq + i) * Tk + j]!;
        const p = P[(bh * Tq + i) * Tk + j]!;
        let g = 0;
        for (let d = 0; d < Dh; d++) {
          const go = dO[(bh * Tq + i) * Dh + d]!;
          g += go * v[(bh * Tk + j) * Dh + d]!;
          dv[(bh * Tk + j) * Dh + d] += w * go;
        }
        // dP ∘ Z / (1 − p): the dropped weight's factor over the kept one's softmax value.
        dP[j] = p === 0 ? 0 : (g * w) / p;
        D += p * dP[j]!;
      }
      for (let j = 0; j < Tk; j++) {
        const ds = P[(bh * Tq + i) * Tk + j]! * (dP[j]! - D);
        for (let d = 0; d < Dh; d++) {
          dq[(bh * Tq + i) * Dh + d] += scale * ds * k[(bh * Tk + j) * Dh + d]!;
          dk[(bh * Tk + j) * Dh + d] += scale * ds * q[(bh * Tq + i) * Dh + d]!;
        }
      }
    }
  }
  return { dq, dk, dv };
}
