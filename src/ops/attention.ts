// scaledDotProductAttention(q, k, v, { causal, mask, scale, dropout, seed }) as PyTorch's
// F.scaled_dot_product_attention: softmax(scale · q·kᵀ + mask) · v over q [B, H, Tq, Dh] and
// k, v [B, H, Tk, Dh], with dropout on the attention weights.
//
// One fused kernel computes the forward pass with an online softmax over blocks of keys and saves
// only the output and each row's log-sum-exp (shaders/attention.wgsl): memory grows as B·H·T·Dh,
// never as T². The backward pass (FlashAttention-2, shaders/attention_backward.wgsl) recomputes
// the weights from the log-sum-exp, block by block: a pre-pass gives each query row
// D = rowsum(dO ∘ O), one kernel over query rows gives dQ, one over keys gives dK and dV — each
// gradient element summed by one invocation in a fixed order: deterministic, no atomics. Dropout's
// mask is a hash of (seed, b, h, i, j), drawn again in the backward pass instead of stored.
//
// q, k and v are read through their strides (slices and transposes of one QKV projection are not
// copied; only a view whose head dimension is not contiguous is). B·H is cut into blocks when the
// operands do not fit one storage binding. Under autocast ('f16-mixed') q, k, v and dO are
// converted to f16 once and the f16-operand kernels read them; everything else stays f32.

import attentionWGSL from '../../shaders/attention.wgsl?raw';
import backwardWGSL from '../../shaders/attention_backward.wgsl?raw';
import commonWGSL from '../../shaders/attention_common.wgsl?raw';
import loadScalarWGSL from '../../shaders/attention_load_scalar.wgsl?raw';
import loadVec4WGSL from '../../shaders/attention_load_vec4.wgsl?raw';
import dh16WGSL from '../../shaders/attention_dh16.wgsl?raw';
import dh32WGSL from '../../shaders/attention_dh32.wgsl?raw';
import dh64WGSL from '../../shaders/attention_dh64.wgsl?raw';
import dh128WGSL from '../../shaders/attention_dh128.wgsl?raw';
import dh256WGSL from '../../shaders/attention_dh256.wgsl?raw';
import operandF16WGSL from '../../shaders/operand_f16.wgsl?raw';
import operandF32WGSL from '../../shaders/operand_f32.wgsl?raw';
import { record } from '../autograd/record';
import { checkDType, sameShape } from '../checks';
import { isGradEnabled } from '../autograd/grad-mode';
import { contiguousCopy, randn } from '../creation';
import { copyView } from '../kernels/copy';
import { bindView } from '../kernels/binding';
import { defineKernel, type Kernel } from '../kernels/kernel';
import { broadcastStrides } from '../kernels/layout';
import { launch } from '../kernels/launch';
import { blocksOf } from '../kernels/segments';
import { operandSharing, sharingWGSL, type OperandSharing } from '../kernels/sharing';
import { autotuner } from '../kernels/tuning/autotune';
import {
  attentionTuningCandidates,
  defaultAttentionConfig,
  describeAttentionConfig,
  forcedAttentionConfig,
  type AttentionConfig,
} from '../kernels/tuning/attention-config';
import { sliceView, subView, type View } from '../kernels/view';
import { globalGenerator } from '../random';
import { runtime } from '../runtime/device';
import { LimitError, ShapeError, WebGradError } from '../runtime/errors';
import { keep, tidy } from '../scope';
import { empty, formatShape, type Tensor } from '../tensor';
import { autocastActive } from './autocast';
import { toHalf } from './half';

export interface AttentionOptions {
  /** Mask key j for query i when j > i (the top-left aligned lower triangle, as PyTorch). */
  causal?: boolean;
  /** An additive float mask broadcastable to [B, H, Tq, Tk] (-Infinity removes a key). */
  mask?: Tensor | null;
  /** The scores' factor (default 1/√Dh). */
  scale?: number;
  /** Dropout probability on the attention weights (default 0). */
  dropout?: number;
  /** The dropout mask's seed (default: drawn from the global generator, so wg.manualSeed() repeats it). */
  seed?: number;
}

/** The largest head dimension the kernels' register tiles hold (shaders/attention_dh*.wgsl). */
export const MAX_HEAD_DIM = 256;
const DH_PARTS: readonly [number, string][] = [
  [16, dh16WGSL],
  [32, dh32WGSL],
  [64, dh64WGSL],
  [128, dh128WGSL],
  [256, dh256WGSL],
];

/** Rows (queries or keys) each invocation computes: the kernels' 4×4 tiles. */
const ROWS = 4;
/** Invocations per workgroup of the backward's stats pass (one row each). */
const STATS_WG = 64;

const OP = 'scaledDotProductAttention';

interface Geometry {
  B: number;
  H: number;
  Tq: number;
  Tk: number;
  Dh: number;
}

/** What the forward and backward kernels share: sizes and the op's options, resolved. */
interface Settings extends Geometry {
  scale: number;
  drop: number;
  seed: number;
  causal: boolean;
  /** Causal with the queries after `shift` keys (a KV cache): key j is masked for query i when j > i + shift. */
  shift: number;
  /** The mask as a [B, H, Tq, Tk] view (zero strides where broadcast), or null. */
  mask: View | null;
}

function settings(g: Geometry, opts: AttentionOptions, shift = 0): Settings {
  const drop = opts.dropout ?? 0;
  const scores = [g.B, g.H, g.Tq, g.Tk];
  return {
    ...g,
    scale: opts.scale ?? 1 / Math.sqrt(g.Dh),
    drop,
    seed: drop > 0 ? (opts.seed ?? globalGenerator.nextU32()) >>> 0 : 0,
    causal: !!opts.causal,
    shift,
    mask: opts.mask ? subView(opts.mask, scores, broadcastStrides(opts.mask, scores), opts.mask.offset) : null,
  };
}

/** softmax(scale · q·kᵀ + mask) · v, with dropout on the weights; see AttentionOptions. */
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  const g = check(q, k, v, opts);
  const s = settings(g, opts);
  const half = autocastActive();
  return tidy(() => {
    const out = empty([...q.shape.slice(0, -1), g.Dh], 'float32', OP);
    if (out.size === 0) return out;
    const [qs, ks, vs] = [q, k, v].map((t) => readable(t, half)) as [Tensor, Tensor, Tensor];
    const lse = attendForward(s, qs, ks, vs, out);
    const shapes = [q.shape, k.shape, v.shape];
    return record(
      OP,
      out,
      [q, k, v],
      (dO, [qb, kb, vb, o, l, m], needs) => {
        // The mask is saved with the rest, so that it outlives the caller's handle.
        const sb = m ? { ...s, mask: subView(m, s.mask!.shape, s.mask!.strides, m.offset) } : s;
        const grads = needs.map((n, i) => (n ? empty(shapes[i]!, 'float32', `${OP}.backward`) : null));
        attendBackward(sb, qb!, kb!, vb!, o!, l!, readable(dO, half), grads[0] ?? null, grads[1] ?? null, grads[2] ?? null);
        return grads;
      },
      [qs, ks, vs, out, lse, ...(opts.mask ? [opts.mask] : [])],
    );
  });
}

/**
 * Keys and values of one attention layer's earlier positions, for generation: each call of
 * nn.MultiheadAttention with the cache appends its tokens' keys and values and attends to all of
 * them, so a new token costs one position's work. Made with the most positions it will hold;
 * its tensors ([B, H, capacity, Dh]) are allocated at the first use.
 */
export class KVCache {
  k: Tensor | null = null;
  v: Tensor | null = null;
  /** Positions filled so far. */
  length = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new ShapeError(`KVCache: capacity must be a positive integer, got ${capacity}`);
  }

  /** Forget the positions (the memory stays, for the next sequence of the same shape). */
  reset(): void {
    this.length = 0;
  }

  dispose(): void {
    this.k?.dispose();
    this.v?.dispose();
    this.k = this.v = null;
    this.length = 0;
  }
}

/**
 * Self-attention over a fused projection, as nn.MultiheadAttention computes it: `qkv` is
 * [B, T, 3·D] (queries, keys and values of every head side by side: [B, T, 3, H, Dh]) and the
 * result is [B, T, D] with the heads merged. Nothing is copied: the kernels read q, k and v where
 * they lie in qkv, write the output in [B, T, H, Dh] order, and the backward pass writes dQ, dK
 * and dV into their places of one [B, T, 3·D] gradient. With a cache, the new keys and values are
 * appended to it and the queries attend to every cached position (causal: each query sees the
 * positions up to its own); a cache is for inference only (no gradient flows through it).
 */
export function selfAttention(qkv: Tensor, heads: number, opts: Omit<AttentionOptions, 'mask'>, cache?: KVCache): Tensor {
  const op = 'MultiheadAttention';
  checkDType(op, qkv, 'float32', 'projection');
  if (qkv.ndim !== 3 || qkv.shape[2]! % (3 * heads) !== 0) {
    throw new ShapeError(`${op}: the fused projection ${formatShape(qkv.shape)} is not [B, T, 3·heads·Dh] for ${heads} heads`);
  }
  const [B, T, D3] = qkv.shape as [number, number, number];
  const D = D3 / 3;
  const Dh = D / heads;
  if (Dh > MAX_HEAD_DIM) throw new LimitError(`${op}: head dimension ${Dh} (${D} / ${heads} heads) is larger than the kernels hold (${MAX_HEAD_DIM})`);
  if (cache && isGradEnabled() && qkv.requiresGrad) {
    throw new WebGradError(`${op}: a KV cache is for inference: run it under wg.noGrad() (no gradient flows through cached keys)`);
  }
  const past = cache?.length ?? 0;
  const g: Geometry = { B, H: heads, Tq: T, Tk: past + T, Dh };
  const s = settings(g, opts, past);
  const half = autocastActive() && !cache;
  return tidy(() => {
    const out = empty([B, T, D], 'float32', op);
    if (out.size === 0) return out;
    const src = readable(qkv.isContiguous ? qkv : contiguousCopy(qkv, op), half);
    const part = (i: number) => src.view([B, heads, T, Dh], [T * D3, Dh, D3, 1], src.offset + i * D);
    const [q, k, v] = [part(0), part(1), part(2)];
    const merged = out.view([B, heads, T, Dh], [T * D, Dh, D, 1], 0);
    if (cache) {
      const [ck, cv] = appendToCache(op, cache, k, v, g);
      attendForward(s, q, ck, cv, merged);
      return out;
    }
    const lse = attendForward(s, q, k, v, merged);
    return record(
      op,
      out,
      [qkv],
      (dOut, [qb, kb, vb, o, l]) => {
        const dqkv = empty([B, T, D3], 'float32', `${op}.backward`);
        const grad = (i: number) => dqkv.view([B, heads, T, Dh], [T * D3, Dh, D3, 1], i * D);
        const dO = readable(dOut.isContiguous ? dOut : contiguousCopy(dOut, op), half);
        attendBackward(s, qb!, kb!, vb!, o!, l!, dO.view([B, heads, T, Dh], [T * D, Dh, D, 1], dO.offset), grad(0), grad(1), grad(2));
        return [dqkv];
      },
      [q, k, v, merged, lse],
    );
  });
}

/** Write the new keys and values at the cache's next positions; the cache's filled views. */
function appendToCache(op: string, cache: KVCache, k: Tensor, v: Tensor, g: Geometry): [Tensor, Tensor] {
  const { B, H, Tq: T, Dh } = g;
  const past = cache.length;
  if (past + T > cache.capacity) {
    throw new LimitError(`${op}: the KV cache holds ${cache.capacity} positions; ${past} are filled and ${T} more do not fit`);
  }
  const shape = [B, H, cache.capacity, Dh];
  if (cache.k && !sameShape(cache.k.shape, shape)) {
    throw new ShapeError(
      `${op}: the KV cache holds ${formatShape(cache.k.shape)}, this call needs ${formatShape(shape)} (batch, heads and head dimension must stay the same)`,
    );
  }
  cache.k ??= keep(empty(shape, 'float32', 'KV cache keys'));
  cache.v ??= keep(empty(shape, 'float32', 'KV cache values'));
  const slot = (t: Tensor, at: number, n: number) => t.view([B, H, n, Dh], t.strides, t.offset + at * t.strides[2]!);
  copyView(k, slot(cache.k, past, T), op);
  copyView(v, slot(cache.v, past, T), op);
  cache.length = past + T;
  return [slot(cache.k, 0, past + T), slot(cache.v, 0, past + T)];
}

/** Shapes and options, each wrong one a clear error naming the op and the shapes. */
function check(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions): Geometry {
  checkDType(OP, q, 'float32', 'q');
  checkDType(OP, k, 'float32', 'k');
  checkDType(OP, v, 'float32', 'v');
  const shapes = `q ${formatShape(q.shape)}, k ${formatShape(k.shape)}, v ${formatShape(v.shape)}`;
  if (![3, 4].includes(q.ndim) || k.ndim !== q.ndim || v.ndim !== q.ndim) {
    throw new ShapeError(`${OP}: q, k and v must all be [B, H, T, Dh] (or all [B, T, Dh]), got ${shapes}`);
  }
  const lead = q.shape.slice(0, -2);
  if (!sameShape(lead, k.shape.slice(0, -2)) || !sameShape(lead, v.shape.slice(0, -2))) {
    throw new ShapeError(`${OP}: q, k and v must have the same batch and head dimensions, got ${shapes}`);
  }
  const Dh = q.shape[q.ndim - 1]!;
  if (k.shape[k.ndim - 1] !== Dh) {
    throw new ShapeError(`${OP}: q and k must have the same head dimension, got ${Dh} and ${k.shape[k.ndim - 1]} (${shapes})`);
  }
  if (!sameShape(v.shape, k.shape)) throw new ShapeError(`${OP}: v must have k's shape, got ${shapes}`);
  if (Dh > MAX_HEAD_DIM) throw new LimitError(`${OP}: head dimension ${Dh} (${shapes}) is larger than the kernels hold (${MAX_HEAD_DIM})`);
  const B = q.shape[0]!;
  const H = q.ndim === 4 ? q.shape[1]! : 1;
  const Tq = q.shape[q.ndim - 2]!;
  const Tk = k.shape[k.ndim - 2]!;
  if (Tk === 0 && Tq > 0 && Dh > 0 && B * H > 0) throw new ShapeError(`${OP}: k and v have no keys (${shapes}): every query needs at least one`);
  const scores = [B, H, Tq, Tk];
  if (opts.mask) {
    const m = opts.mask;
    checkDType(OP, m, 'float32', 'mask');
    const fits = m.ndim <= 4 && m.shape.every((d, i) => d === 1 || d === scores[4 - m.ndim + i]);
    if (!fits) {
      throw new ShapeError(`${OP}: mask ${formatShape(m.shape)} cannot be broadcast to the scores' shape [B, H, Tq, Tk] = ${formatShape(scores)} (${shapes})`);
    }
    if (m.requiresGrad) {
      throw new WebGradError(`${OP}: the mask ${formatShape(m.shape)} requires grad, but its gradient is not computed: pass a mask that does not`);
    }
  }
  const drop = opts.dropout ?? 0;
  if (!(drop >= 0 && drop < 1)) throw new ShapeError(`${OP}: dropout must be in [0, 1), got ${drop}`);
  if (opts.scale !== undefined && !Number.isFinite(opts.scale)) throw new ShapeError(`${OP}: scale must be a finite number, got ${opts.scale}`);
  if (opts.seed !== undefined && !Number.isInteger(opts.seed)) throw new ShapeError(`${OP}: seed must be an integer, got ${opts.seed}`);
  return { B, H, Tq, Tk, Dh };
}

/** An operand as the kernels read it: its head dimension contiguous (else copied), f16 under autocast. */
function readable(t: Tensor, half: boolean): Tensor {
  const inner = t.ndim - 1;
  const r = t.shape[inner]! > 1 && t.strides[inner] !== 1 ? contiguousCopy(t, OP) : t;
  return half ? toHalf(r) : r;
}

/** A [B, H, T, Dh] view of a q, k, v (or a like tensor): [B, T, Dh] gets a head dimension of 1. */
function view4(t: View): View {
  if (t.shape.length === 4) return t;
  return subView(t, [t.shape[0]!, 1, t.shape[1]!, t.shape[2]!], [t.strides[0]!, 0, t.strides[1]!, t.strides[2]!], t.offset);
}

/** Element strides along b, h and t of a [B, H, T, …] view, as a Params vec4u. */
function strides3(v: View): number[] {
  return [v.strides[0]!, v.strides[1]!, v.strides[2]!, 0];
}

/** A block of B·H: batch elements b0 … b0 + nb − 1, heads h0 … h0 + nh − 1 (whole rows of heads when nb > 1). */
interface Block {
  b0: number;
  nb: number;
  h0: number;
  nh: number;
}

/**
 * How B·H is cut so that every view (each [B, H, …]) binds: whole batch elements when they fit,
 * else heads within one batch element (a single head too large is a LimitError naming it).
 */
function headBlocks(op: string, g: Geometry, views: readonly View[]): Block[] {
  try {
    return blocksOf(op, 'batch element', g.B, views.map((v) => [v, 0] as const)).map(([b0, nb]) => ({ b0, nb, h0: 0, nh: g.H }));
  } catch (e) {
    if (!(e instanceof LimitError)) throw e;
  }
  const out: Block[] = [];
  for (let b = 0; b < g.B; b++) {
    const row = views.map((v) => [sliceView(v, 0, b, 1), 1] as const);
    for (const [h0, nh] of blocksOf(op, 'head', g.H, row)) out.push({ b0: b, nb: 1, h0, nh });
  }
  return out;
}

/** Each view's part of a block. */
function cutBlock(views: readonly View[], b: Block): View[] {
  return views.map((v) => sliceView(sliceView(v, 0, b.b0, b.nb), 1, b.h0, b.nh));
}

const kernels = new Map<string, Kernel>();

/**
 * The kernel of `entry` for the operand precision, the device's sharing, the operands' loads
 * (vec4 where every streamed operand allows) and the head dimension.
 */
function kernel(file: 'forward' | 'backward', entry: string, half: boolean, vec4: boolean, Dh: number): Kernel {
  const sharing: OperandSharing = operandSharing();
  const [dhMax, dhPart] = DH_PARTS.find(([n]) => Dh <= n)!;
  const key = `${entry}|${half}|${sharing}|${vec4}|${dhMax}`;
  let k = kernels.get(key);
  if (!k) {
    const code = [
      half ? operandF16WGSL : operandF32WGSL,
      sharingWGSL(sharing),
      vec4 ? loadVec4WGSL : loadScalarWGSL,
      dhPart,
      commonWGSL,
      file === 'forward' ? attentionWGSL : backwardWGSL,
    ];
    k = defineKernel(`attention.${entry}${vec4 ? '.vec4' : ''}${half ? '.f16' : ''}`, { code, entry, bindings: BINDINGS[entry]!, wasm: `attention_${entry}` });
    kernels.set(key, k);
  }
  return k;
}

/** Whether the operands can be read as vec4s: Dh, strides and where each starts in its binding, multiples of 4. */
function vec4Aligned(Dh: number, ...views: View[]): boolean {
  return Dh % 4 === 0 && views.every((v) => v.strides.slice(0, 3).every((x) => x % 4 === 0) && bindView(OP, v).offset % 4 === 0);
}

const OPERANDS = { q: 'read', k: 'read', v: 'read', mask: 'read' } as const;
const BINDINGS: Record<string, Record<string, 'read' | 'write'>> = {
  forward: { ...OPERANDS, o: 'write', lse: 'write' },
  row_stats: { o: 'read', lse: 'read', dout: 'read', stats: 'write' },
  grad_q: { ...OPERANDS, stats: 'read', dout: 'read', dq: 'write' },
  grad_kv: { ...OPERANDS, stats: 'read', dout: 'read', dk: 'write', dv: 'write' },
  grad_kv_packed: { ...OPERANDS, stats: 'read', dout: 'read', dkv: 'write' },
};

/** Params every kernel of a block shares. */
function blockParams(s: Settings, b: Block, groups: number) {
  return {
    heads: b.nh,
    tq: s.Tq,
    tk: s.Tk,
    dh: s.Dh,
    groups,
    workgroups: groups * b.nb * b.nh,
    causal: s.causal,
    shift: s.shift,
    has_mask: s.mask !== null,
    scale: s.scale,
    drop: s.drop,
    seed: s.seed,
    b_base: b.b0,
    h_base: b.h0,
    heads_total: s.H,
  };
}

/** The mask's view, or (none) a small stand-in that the kernels never read. */
function maskView(s: Settings): View {
  return s.mask ?? empty([4], 'float32', `${OP} (no mask)`).view([s.B, s.H, s.Tq, s.Tk], [0, 0, 0, 0], 0);
}

/** Run the forward kernel: `out` ← attention (any [B, H, Tq, Dh] view); returns the rows' log-sum-exp [B, H, Tq]. */
function attendForward(s: Settings, q: Tensor, k: Tensor, v: Tensor, out: Tensor, config = chooseConfig(s, q.dtype === 'float16')): Tensor {
  const lse = empty([s.B, s.H, s.Tq], 'float32', `${OP} log-sum-exp`);
  const views = [view4(q), view4(k), view4(v), maskView(s), view4(out), lse];
  const groups = Math.ceil(s.Tq / (ROWS * config.wg));
  for (const b of headBlocks(OP, s, views)) {
    const [qb, kb, vb, mb, ob, lb] = cutBlock(views, b);
    const params = blockParams(s, b, groups);
    launch(
      kernel('forward', 'forward', q.dtype === 'float16', vec4Aligned(s.Dh, qb!, kb!, vb!), s.Dh),
      {
        bind: { q: qb!, k: kb!, v: vb!, mask: mb!, o: ob!, lse: lb! },
        params: { ...params, q_strides: strides3(qb!), k_strides: strides3(kb!), v_strides: strides3(vb!), o_strides: strides3(ob!), mask_strides: mb!.strides },
        constants: { WG: config.wg, SHARED: config.shared },
        workgroups: params.workgroups,
      },
      OP,
    );
  }
  return lse;
}

/**
 * Run the backward kernels: the gradients dq, dk, dv (views like q, k, v; null where not wanted)
 * from the forward's output, its log-sum-exp and the output's gradient dO.
 */
function attendBackward(
  s: Settings,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  out: Tensor,
  lse: Tensor,
  dO: Tensor,
  dq: Tensor | null,
  dk: Tensor | null,
  dv: Tensor | null,
  config = chooseConfig(s, q.dtype === 'float16'),
): void {
  const op = `${OP}.backward`;
  const half = q.dtype === 'float16';
  const kv = dk !== null || dv !== null;
  // grad_kv writes both: a scratch for the one not wanted (freed by the caller's scope).
  const dk_ = kv ? (dk ?? empty(k.shape, 'float32', op)) : k;
  const dv_ = kv ? (dv ?? empty(v.shape, 'float32', op)) : v;
  // dK and dV in one buffer (a fused projection's gradient) are bound once, as a view covering both.
  const packed = kv && dk_.buffer(op) === dv_.buffer(op);
  const [dkView, dvView] = [view4(dk_), view4(dv_)];
  const gap = dvView.offset - dkView.offset;
  if (packed && (gap < s.Dh || !sameShape(dkView.strides.slice(0, 3), dvView.strides.slice(0, 3)))) {
    throw new Error(`${op}: dK and dV share a buffer but not a layout with dV after dK`);
  }
  const dkv = packed ? subView(dkView, [s.B, s.H, s.Tk, gap + s.Dh], [...dkView.strides.slice(0, 3), 1], dkView.offset) : dkView;
  const stats = empty([s.B, s.H, s.Tq, 2], 'float32', `${op} row statistics`);
  const views = [view4(q), view4(k), view4(v), maskView(s), view4(out), lse, view4(dO), stats, view4(dq ?? q), dkv, dvView];
  for (const b of headBlocks(op, s, packed ? views.slice(0, -1) : views)) {
    const [qb, kb, vb, mb, ob, lb, gb, sb, dqb, dkb, dvb] = cutBlock(views, b);
    const operands = { q: qb!, k: kb!, v: vb!, mask: mb! };
    const strides = {
      q_strides: strides3(qb!),
      k_strides: strides3(kb!),
      v_strides: strides3(vb!),
      dout_strides: strides3(gb!),
      dq_strides: strides3(dqb!),
      dk_strides: strides3(dkb!),
      dv_strides: strides3(dvb!),
      mask_strides: mb!.strides,
    };
    const rows = b.nb * b.nh * s.Tq;
    const statGroups = Math.ceil(rows / STATS_WG);
    launch(
      kernel('backward', 'row_stats', half, false, s.Dh),
      {
        bind: { o: ob!, lse: lb!, dout: gb!, stats: sb! },
        params: { ...blockParams(s, b, 1), workgroups: statGroups, rows, o_strides: strides3(ob!), dout_strides: strides3(gb!) },
        constants: { WG: STATS_WG },
        workgroups: statGroups,
      },
      op,
    );
    const constants = { WG: config.wg, SHARED: config.shared };
    const vec4 = vec4Aligned(s.Dh, qb!, kb!, vb!, gb!);
    if (dq) {
      const params = blockParams(s, b, Math.ceil(s.Tq / (ROWS * config.wg)));
      launch(
        kernel('backward', 'grad_q', half, vec4, s.Dh),
        { bind: { ...operands, stats: sb!, dout: gb!, dq: dqb! }, params: { ...params, ...strides }, constants, workgroups: params.workgroups },
        op,
      );
    }
    if (kv) {
      const params = { ...blockParams(s, b, Math.ceil(s.Tk / (ROWS * config.wg))), ...strides };
      const common = { ...operands, stats: sb!, dout: gb! };
      if (packed) {
        const at = bindView(op, dkb!, 'dK and dV').offset;
        launch(
          kernel('backward', 'grad_kv_packed', half, vec4, s.Dh),
          { bind: { ...common, dkv: dkb! }, params: { ...params, dk_offset: at, dv_offset: at + gap }, constants, workgroups: params.workgroups },
          op,
        );
      } else {
        launch(kernel('backward', 'grad_kv', half, vec4, s.Dh), { bind: { ...common, dk: dkb!, dv: dvb! }, params, constants, workgroups: params.workgroups }, op);
      }
    }
  }
}

/**
 * The configuration: one forced with setAttentionConfig, else the autotuner's pick for this shape
 * class (sizes rounded up to powers of two, the head dimension's tile, causal, precision) — the
 * untimed default until the class has been timed (forward and backward together).
 */
function chooseConfig(s: Settings, half: boolean): AttentionConfig {
  const forced = forcedAttentionConfig();
  if (forced) return forced;
  const rt = runtime();
  const dh = DH_PARTS.find(([n]) => s.Dh <= n)![0];
  const cls = `${bucket(s.Tq)}x${bucket(s.Tk)}xd${dh}${s.causal ? 'c' : ''}${half ? 'h' : ''}`;
  return autotuner().pick('attention', cls, {
    candidates: attentionTuningCandidates(rt.info),
    fallback: defaultAttentionConfig(rt.info),
    id: describeAttentionConfig,
    prepare: () => {
      // Operands of this shape and precision, contiguous.
      const make = (T: number) => {
        const t = randn([s.B, s.H, T, s.Dh]);
        if (!half) return t;
        const h = toHalf(t);
        t.dispose();
        return h;
      };
      const plain: Settings = { ...s, mask: null, drop: 0 };
      const [q, k, v, dO] = [make(s.Tq), make(s.Tk), make(s.Tk), make(s.Tq)] as [Tensor, Tensor, Tensor, Tensor];
      return {
        run: (c) =>
          tidy(() => {
            const out = empty(q.shape, 'float32', OP);
            const lse = attendForward(plain, q, k, v, out, c);
            const grads = [q, k, v].map((t) => empty(t.shape, 'float32', OP));
            attendBackward(plain, q, k, v, out, lse, dO, grads[0]!, grads[1]!, grads[2]!, c);
          }),
        dispose: () => [q, k, v, dO].forEach((t) => t.dispose()),
      };
    },
  });
}

/** The power of two at or above n (at least 16): the size part of a shape class. */
function bucket(n: number): number {
  return Math.max(16, 2 ** Math.ceil(Math.log2(Math.max(1, n))));
}
