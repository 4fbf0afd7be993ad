// conv2d (NCHW, zero padding, PyTorch's output size) and its backward rule. Three tiled kernels:
// the forward pass as an implicit GEMM (shaders/conv2d.wgsl), the input gradient as a transposed
// convolution (conv2d_grad_input.wgsl) and the weight gradient as a GEMM over N·OH·OW, split
// across workgroups when its tiles are few (conv2d_grad_weight.wgsl), plus a bias-gradient sum.
// The weight is repacked per call into the layout each kernel reads as vec4 tiles; it is small
// next to the activations.
//
// Each tiled kernel accumulates a 16×8 register tile (shaders/tile_16x8.wgsl) and shares one
// 16-value operand per reduction step among groups of four invocations: by quad swaps where the
// device has subgroups (of at least 4 lanes), through workgroup memory otherwise
// (share_*.wgsl). Both are prepended to each kernel's module, so the kernels are written once.
// Under autocast (mixed precision) the operands — x, dy and the packed weights — are f16
// (operand_f16.wgsl prepended instead of operand_f32.wgsl); accumulation and results stay f32.

import conv2dWGSL from '../../shaders/conv2d.wgsl?raw';
import gradInputWGSL from '../../shaders/conv2d_grad_input.wgsl?raw';
import gradWeightWGSL from '../../shaders/conv2d_grad_weight.wgsl?raw';
import operandF16WGSL from '../../shaders/operand_f16.wgsl?raw';
import operandF32WGSL from '../../shaders/operand_f32.wgsl?raw';
import tileWGSL from '../../shaders/tile_16x8.wgsl?raw';
import { record } from '../autograd/record';
import { runtime } from '../runtime/device';
import { LimitError, ShapeError } from '../runtime/errors';
import { defineKernel, type Kernel } from '../kernels/kernel';
import { Params } from '../kernels/params';
import { assembleWGSL } from '../kernels/wgsl';
import { empty, formatShape, type Tensor } from '../tensor';
import { autocastActive } from './autocast';
import { gather } from './copy';
import { toHalf } from './half';
import { operandSharing, sharingWGSL } from '../kernels/sharing';
import { checkDType, WG } from './util';

export interface Conv2dOptions {
  stride?: number | [number, number];
  padding?: number | [number, number];
  dilation?: number | [number, number];
}

/** Sizes of one convolution: input [N, C, H, W], weight [O, C, kH, kW], output [N, O, OH, OW]. */
interface Geometry {
  N: number; C: number; H: number; W: number;
  O: number; kH: number; kW: number; OH: number; OW: number;
  sh: number; sw: number; ph: number; pw: number; dh: number; dw: number;
}

/** Channels per tile (the shared operand) and pixels or columns per invocation. */
const TILE_CHANNELS = 16;
const TILE_PIXELS = 8;
/** Invocations per workgroup of the forward and input-gradient kernels (32 to 128 measured alike). */
const TILE_WG = 64;
/**
 * Up to this many channels in the reduction, the forward and input-gradient kernels loop over taps
 * inside and channels outside (see conv2d.wgsl): measured faster on SwiftShader up to 8, slower from 16.
 */
const TAPS_INNER_MAX_CHANNELS = 8;
/** The weight gradient splits its reduction until about this many workgroups run… */
const GRAD_WEIGHT_GROUPS = 64;
/** …but gives each split at least this many rows (n, oh). */
const GRAD_WEIGHT_MIN_ROWS = 16;

interface Kernels {
  pack: Kernel;
  forward: Kernel;
  gradInput: Kernel;
  gradWeight: Kernel;
  reducePartials: Kernel;
  gradBias: Kernel;
}

const kernelSets = new Map<string, Kernels>();
/** The kernels for this device's sharing, with f32 operands or (`half`) f16 ones. */
function kernels(half = false): Kernels {
  const s = operandSharing();
  const v = half ? `${s}/f16` : s;
  let k = kernelSets.get(v);
  if (!k) {
    const parts = [half ? operandF16WGSL : operandF32WGSL, sharingWGSL(s), tileWGSL];
    const fwd = assembleWGSL(...parts, conv2dWGSL);
    const gi = assembleWGSL(...parts, gradInputWGSL);
    const gw = assembleWGSL(...parts, gradWeightWGSL);
    k = {
      pack: defineKernel(`conv2d.pack/${v}`, fwd, ['read', 'write'], 'pack_weight'),
      forward: defineKernel(`conv2d/${v}`, fwd, ['read', 'read', 'read', 'write'], 'conv2d'),
      gradInput: defineKernel(`conv2d.grad_input/${v}`, gi, ['read', 'read', 'write'], 'grad_input'),
      gradWeight: defineKernel(`conv2d.grad_weight/${v}`, gw, ['read', 'read', 'write'], 'grad_weight'),
      reducePartials: defineKernel(`conv2d.reduce_partials/${v}`, gw, ['read', 'write'], 'reduce_partials'),
      gradBias: defineKernel(`conv2d.grad_bias/${v}`, gw, ['read', 'write'], 'grad_bias'),
    };
    kernelSets.set(v, k);
  }
  return k;
}

/**
 * 2-D convolution of x [N, C, H, W] with w [O, C, kH, kW] plus an optional bias b [O], giving
 * [N, O, OH, OW] with OH = floor((H + 2·padding − dilation·(kH − 1) − 1) / stride) + 1.
 */
export function conv2d(x: Tensor, w: Tensor, b?: Tensor | null, opts: Conv2dOptions = {}): Tensor {
  const bias = b ?? null;
  const g = geometry(x, w, bias, opts);
  // Under autocast, x is converted once: the forward pass reads it and the backward pass keeps it.
  const half = autocastActive();
  const xs = half ? toHalf(rowMajor(x)) : x;
  const out = forward(xs, w, bias, g, half);
  const inputs = bias ? [x, w, bias] : [x, w];
  const result = record(
    'conv2d',
    out,
    inputs,
    (gy, [xk, wk], needs) => {
      const dy = rowMajor(gy);
      const dyOp = half ? toHalf(dy) : dy;
      const grads = [needs[0] ? gradInput(dyOp, wk!, g, half) : null, needs[1] ? gradWeight(dyOp, xk!, g) : null];
      if (bias) grads.push(needs[2] ? gradBias(dy, g) : null);
      if (dyOp !== dy) dyOp.dispose();
      return grads;
    },
    [xs, w],
  );
  if (xs !== x) xs.dispose();
  return result;
}

function geometry(x: Tensor, w: Tensor, b: Tensor | null, opts: Conv2dOptions): Geometry {
  checkDType('conv2d', x, 'float32', 'input');
  checkDType('conv2d', w, 'float32', 'weight');
  if (x.ndim !== 4) throw new ShapeError(`conv2d: input must be 4-D [N, C, H, W], got ${formatShape(x.shape)}`);
  if (w.ndim !== 4) throw new ShapeError(`conv2d: weight must be 4-D [O, C, kH, kW], got ${formatShape(w.shape)}`);
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const [O, wC, kH, kW] = w.shape as [number, number, number, number];
  if (wC !== C) {
    throw new ShapeError(`conv2d: input ${formatShape(x.shape)} has ${C} channels but weight ${formatShape(w.shape)} expects ${wC}`);
  }
  const [sh, sw] = pair('stride', opts.stride, 1, 1);
  const [ph, pw] = pair('padding', opts.padding, 0, 0);
  const [dh, dw] = pair('dilation', opts.dilation, 1, 1);
  const spanH = dh * (kH - 1) + 1;
  const spanW = dw * (kW - 1) + 1;
  if (kH === 0 || kW === 0 || spanH > H + 2 * ph || spanW > W + 2 * pw) {
    throw new ShapeError(
      `conv2d: kernel ${kH}×${kW} (dilation ${dh}×${dw}, spanning ${spanH}×${spanW}) does not fit the padded input ` +
        `${H + 2 * ph}×${W + 2 * pw} (input ${formatShape(x.shape)}, padding ${ph}×${pw})`,
    );
  }
  if (b) {
    checkDType('conv2d', b, 'float32', 'bias');
    if (b.ndim !== 1 || b.shape[0] !== O) {
      throw new ShapeError(`conv2d: bias ${formatShape(b.shape)} does not match the ${O} output channels of weight ${formatShape(w.shape)}`);
    }
  }
  const OH = Math.floor((H + 2 * ph - spanH) / sh) + 1;
  const OW = Math.floor((W + 2 * pw - spanW) / sw) + 1;
  // The kernels compute element addresses in 32-bit signed arithmetic.
  for (const [what, t] of [['input', [N, C, H, W]], ['output', [N, O, OH, OW]]] as const) {
    if (t.reduce((a, d) => a * d, 1) >= 2 ** 31) {
      throw new LimitError(`conv2d: the ${what} ${formatShape(t)} has 2^31 elements or more, which the kernels cannot index`);
    }
  }
  return { N, C, H, W, O, kH, kW, OH, OW, sh, sw, ph, pw, dh, dw };
}

function pair(what: string, v: number | [number, number] | undefined, dflt: number, min: number): [number, number] {
  const p = v === undefined ? [dflt, dflt] : typeof v === 'number' ? [v, v] : v;
  if (!Array.isArray(p) || p.length !== 2 || p.some((d) => !Number.isInteger(d) || d < min)) {
    const need = min === 0 ? 'non-negative' : 'positive';
    throw new ShapeError(`conv2d: ${what} must be a ${need} integer or a pair of them, got ${JSON.stringify(v)}`);
  }
  return p as [number, number];
}

/** `t` in row-major order (a view with an offset is fine: the kernels take the offset). */
function rowMajor(t: Tensor): Tensor {
  return t.isContiguous ? t : gather(t);
}

const roundUp = (n: number, m: number) => Math.ceil(n / m) * m;

/**
 * The weight repacked as [kH·kW, R, L padded to 16] for a kernel that reduces over R and tiles
 * over L: (R, L) = (C, O) for the forward pass, (O, C) for the input gradient.
 */
function packWeight(w: Tensor, g: Geometry, forInput: boolean, half: boolean): Tensor {
  const [rows, cols] = forInput ? [g.O, g.C] : [g.C, g.O];
  const [strideRow, strideCol] = forInput ? [w.strides[0]!, w.strides[1]!] : [w.strides[1]!, w.strides[0]!];
  const colsPad = roundUp(cols, TILE_CHANNELS);
  const n = g.kH * g.kW * rows * colsPad;
  const out = empty([n], half ? 'float16' : 'float32', 'conv2d');
  const params = new Params().u32(rows, cols, colsPad, g.kW, strideRow, strideCol, w.strides[2]!, w.strides[3]!, w.offset, n);
  runtime().executor.dispatch(kernels(half).pack, {
    constants: { WG },
    buffers: [w.buffer('conv2d'), out.buffer()],
    params,
    workgroups: Math.ceil(n / WG),
  });
  return out;
}

/** The Params fields every tiled kernel starts with, in their WGSL order. */
function geometryParams(g: Geometry, eighth: number): Params {
  return new Params()
    .u32(g.N, g.C, g.H, g.W, g.O, g.OH, g.OW, eighth)
    .u32(g.kH, g.kW, g.sh, g.sw)
    .i32(g.ph, g.pw)
    .u32(g.dh, g.dw);
}

/** The forward pass; x is f16 (from toHalf, row-major) when `half`, else float32 in any layout. */
function forward(x: Tensor, w: Tensor, b: Tensor | null, g: Geometry, half: boolean): Tensor {
  const out = empty([g.N, g.O, g.OH, g.OW], 'float32', 'conv2d');
  if (out.size === 0) return out;
  const xs = rowMajor(x);
  const bs = b && !b.isContiguous ? gather(b) : b;
  const wp = packWeight(w, g, false, half);
  const pixelGroups = Math.ceil((g.N * g.OH * g.OW) / (TILE_WG * TILE_PIXELS));
  const groups = pixelGroups * Math.ceil(g.O / TILE_CHANNELS);
  const params = geometryParams(g, roundUp(g.O, TILE_CHANNELS)).u32(xs.offset, bs?.offset ?? 0, pixelGroups, groups);
  runtime().executor.dispatch(kernels(half).forward, {
    constants: { WG: TILE_WG, HAS_BIAS: bs !== null, TAPS_INNER: g.C <= TAPS_INNER_MAX_CHANNELS },
    buffers: [xs.buffer('conv2d'), wp.buffer(), (bs ?? wp).buffer('conv2d'), out.buffer()],
    params,
    workgroups: groups,
  });
  wp.dispose();
  if (xs !== x) xs.dispose();
  if (bs && bs !== b) bs.dispose();
  return out;
}

/**
 * dx from dy [N, O, OH, OW] and w: one dispatch per stride phase (see conv2d_grad_input.wgsl).
 * With `half`, dy is f16 (row-major) and the weight is packed as f16.
 */
function gradInput(dy: Tensor, w: Tensor, g: Geometry, half: boolean): Tensor {
  const dx = empty([g.N, g.C, g.H, g.W], 'float32', 'conv2d backward');
  if (dx.size === 0) return dx;
  const dys = rowMajor(dy);
  const wp = packWeight(w, g, true, half);
  const k = kernels(half).gradInput;
  for (let phaseH = 0; phaseH < Math.min(g.sh, g.H); phaseH++) {
    for (let phaseW = 0; phaseW < Math.min(g.sw, g.W); phaseW++) {
      const rows = Math.ceil((g.H - phaseH) / g.sh);
      const cols = Math.ceil((g.W - phaseW) / g.sw);
      const pixelGroups = Math.ceil((g.N * rows * cols) / (TILE_WG * TILE_PIXELS));
      const groups = pixelGroups * Math.ceil(g.C / TILE_CHANNELS);
      const params = geometryParams(g, roundUp(g.C, TILE_CHANNELS)).u32(dys.offset, phaseH, phaseW, rows, cols, pixelGroups, groups);
      runtime().executor.dispatch(k, {
        constants: { WG: TILE_WG, TAPS_INNER: g.O <= TAPS_INNER_MAX_CHANNELS },
        buffers: [dys.buffer('conv2d backward'), wp.buffer(), dx.buffer()],
        params,
        workgroups: groups,
      });
    }
  }
  wp.dispose();
  if (dys !== dy) dys.dispose();
  return dx;
}

/**
 * Invocations per workgroup of the weight-gradient kernel: the one that leaves the fewest unused
 * columns (each workgroup covers WG·8 of them), the larger on a tie. Software adapters run a
 * workgroup as a task on one core, so workgroups of a single SIMD group (4) cost nothing there
 * (measured at 800 columns: WG 4, 16, 64 → 1.06, 0.94, 0.81 GFLOP per CPU-second, the padding);
 * GPUs keep at least a warp's worth.
 */
function gradWeightWorkgroup(cols: number): number {
  const sizes = runtime().info.adapterInfo.isFallbackAdapter ? [64, 32, 16, 8, 4] : [64, 32];
  let best = 64;
  for (const wg of sizes) {
    if (roundUp(cols, wg * TILE_PIXELS) < roundUp(cols, best * TILE_PIXELS)) best = wg;
  }
  return best;
}

/**
 * dw from dy [N, O, OH, OW] and x, with the reduction over N·OH·OW split when tiles are few. Both
 * are f16 (row-major) under autocast, float32 otherwise.
 */
function gradWeight(dy: Tensor, x: Tensor, g: Geometry): Tensor {
  const dw = empty([g.O, g.C, g.kH, g.kW], 'float32', 'conv2d backward');
  if (dw.size === 0) return dw;
  const dys = rowMajor(dy);
  const xs = rowMajor(x);
  const half = x.dtype === 'float16';
  const ks = kernels(half);
  const cols = g.C * g.kH * g.kW;
  const wg = gradWeightWorkgroup(cols);
  const colGroups = Math.ceil(cols / (wg * TILE_PIXELS));
  const oGroups = Math.ceil(g.O / TILE_CHANNELS);
  const rows = g.N * g.OH;
  const wanted = Math.min(Math.ceil(GRAD_WEIGHT_GROUPS / (colGroups * oGroups)), Math.ceil(rows / GRAD_WEIGHT_MIN_ROWS));
  const rowsPerSplit = Math.max(1, Math.ceil(rows / Math.max(1, wanted)));
  const splits = Math.max(1, Math.ceil(rows / rowsPerSplit));
  const target = splits === 1 ? dw : empty([splits * dw.size], 'float32', 'conv2d backward');
  const groups = colGroups * oGroups * splits;
  const params = geometryParams(g, cols).u32(dys.offset, xs.offset, colGroups, oGroups, rowsPerSplit, groups);
  runtime().executor.dispatch(ks.gradWeight, {
    constants: { WG: wg },
    buffers: [dys.buffer('conv2d backward'), xs.buffer('conv2d backward'), target.buffer()],
    params,
    workgroups: groups,
  });
  if (target !== dw) {
    runtime().executor.dispatch(ks.reducePartials, {
      constants: { WG },
      buffers: [target.buffer(), dw.buffer()],
      params: new Params().u32(dw.size, splits, 0, 0),
      workgroups: Math.ceil(dw.size / WG),
    });
    target.dispose();
  }
  if (dys !== dy) dys.dispose();
  if (xs !== x) xs.dispose();
  return dw;
}

/** db[o] = Σ dy[n, o, oh, ow]: one workgroup per channel. */
function gradBias(dy: Tensor, g: Geometry): Tensor {
  const db = empty([g.O], 'float32', 'conv2d backward');
  if (db.size === 0) return db;
  const dys = rowMajor(dy);
  runtime().executor.dispatch(kernels().gradBias, {
    constants: { WG: TILE_WG },
    buffers: [dys.buffer('conv2d backward'), db.buffer()],
    params: new Params().u32(g.O, g.N, g.OH * g.OW, dys.offset),
    workgroups: g.O,
  });
  if (dys !== dy) dys.dispose();
  return db;
}
