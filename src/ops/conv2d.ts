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
//
// The CPU backend's convolutions (wasm/conv2d.ts) differ in two ways, each a branch marked
// "CPU backend" below: they read the weight where it lies, through its four strides (no packing
// pass), and the input gradient computes every stride phase in one run. Its weight gradient
// splits rows by thread count rather than by GPU workgroups.

import conv2dWGSL from '../../shaders/conv2d.wgsl?raw';
import gradInputWGSL from '../../shaders/conv2d_grad_input.wgsl?raw';
import gradWeightWGSL from '../../shaders/conv2d_grad_weight.wgsl?raw';
import operandF16WGSL from '../../shaders/operand_f16.wgsl?raw';
import operandF32WGSL from '../../shaders/operand_f32.wgsl?raw';
import tileWGSL from '../../shaders/tile_16x8.wgsl?raw';
import { record } from '../autograd/record';
import { checkDType, pair } from '../checks';
import { contiguousCopy } from '../creation';
import { defineKernel, type Kernel } from '../kernels/kernel';
import { WG } from '../kernels/layout';
import { cpuBackend, launch } from '../kernels/launch';
import { inBlocks } from '../kernels/segments';
import { operandSharing, sharingWGSL } from '../kernels/sharing';
import type { View } from '../kernels/view';
import { runtime } from '../runtime/device';
import { LimitError, ShapeError } from '../runtime/errors';
import { empty, formatShape, type Tensor } from '../tensor';
import { tidy } from '../scope';
import { autocastActive } from './autocast';
import { toHalf } from './half';
import { axpyInPlace } from './pointwise';

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

/** The CPU backend's forward and input-gradient kernels: they bind the weight itself. */
const cpuKernels = {
  forward: defineKernel('conv2d', { bindings: { x: 'read', w: 'read', bias: 'read', out: 'write' }, wasm: 'conv2d' }),
  gradInput: defineKernel('conv2d.grad_input', { bindings: { dy: 'read', w: 'read', dx: 'write' }, wasm: 'conv2d_grad_input' }),
};

/** The CPU backend: where each weight element lies (the kernels read any view of it). */
function weightStrides(w: View) {
  return { w_stride_o: w.strides[0]!, w_stride_c: w.strides[1]!, w_stride_kh: w.strides[2]!, w_stride_kw: w.strides[3]! };
}

const kernelSets = new Map<string, Kernels>();
/** The kernels for this device's sharing, with f32 operands or (`half`) f16 ones. */
function kernels(half = false): Kernels {
  const s = operandSharing();
  const v = half ? `${s}/f16` : s;
  let k = kernelSets.get(v);
  if (!k) {
    const parts = [half ? operandF16WGSL : operandF32WGSL, sharingWGSL(s), tileWGSL];
    const fwd = [...parts, conv2dWGSL];
    const gi = [...parts, gradInputWGSL];
    const gw = [...parts, gradWeightWGSL];
    const sum = { src: 'read', sum: 'write' } as const;
    k = {
      pack: defineKernel(`conv2d.pack/${v}`, { code: fwd, entry: 'pack_weight', bindings: { w: 'read', packed: 'write' }, paramsStruct: 'PackParams' }),
      forward: defineKernel(`conv2d/${v}`, { code: fwd, entry: 'conv2d', bindings: { x: 'read', wp: 'read', bias: 'read', out: 'write' } }),
      gradInput: defineKernel(`conv2d.grad_input/${v}`, { code: gi, entry: 'grad_input', bindings: { dy: 'read', wp: 'read', dx: 'write' } }),
      gradWeight: defineKernel(`conv2d.grad_weight/${v}`, { code: gw, entry: 'grad_weight', bindings: { dy: 'read', x: 'read', dw: 'write' }, wasm: 'conv2d_grad_weight' }),
      reducePartials: defineKernel(`conv2d.reduce_partials/${v}`, { code: gw, entry: 'reduce_partials', bindings: sum, paramsStruct: 'SumParams', wasm: 'conv2d_reduce_partials' }),
      gradBias: defineKernel(`conv2d.grad_bias/${v}`, { code: gw, entry: 'grad_bias', bindings: sum, paramsStruct: 'SumParams', wasm: 'conv2d_grad_bias' }),
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
  return tidy(() => {
    const xs = half ? toHalf(rowMajor(x)) : x;
    const out = forward(xs, w, bias, g, half);
    const inputs = bias ? [x, w, bias] : [x, w];
    // (A backward rule runs in a tidy scope of its own: dy's copies are freed after it.)
    return record(
      'conv2d',
      out,
      inputs,
      (gy, [xk, wk], needs) => {
        const dy = rowMajor(gy);
        const dyOp = half ? toHalf(dy) : dy;
        const grads = [needs[0] ? gradInput(dyOp, wk!, g, half) : null, needs[1] ? gradWeight(dyOp, xk!, g) : null];
        if (bias) grads.push(needs[2] ? gradBias(dy, g) : null);
        return grads;
      },
      [xs, w],
    );
  });
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
  const [sh, sw] = pair('conv2d', 'stride', opts.stride ?? 1, 1);
  const [ph, pw] = pair('conv2d', 'padding', opts.padding ?? 0, 0);
  const [dh, dw] = pair('conv2d', 'dilation', opts.dilation ?? 1, 1);
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

/** `t` in row-major order (a view with an offset is fine: the kernels take the offset). */
function rowMajor(t: Tensor): Tensor {
  return t.isContiguous ? t : contiguousCopy(t, 'conv2d');
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
  const packed = empty([n], half ? 'float16' : 'float32', 'conv2d');
  launch(
    kernels(half).pack,
    {
      bind: { w, packed },
      params: {
        rows, cols, cols_pad: colsPad, kw: g.kW,
        stride_row: strideRow, stride_col: strideCol, stride_kh: w.strides[2]!, stride_kw: w.strides[3]!,
        n,
      },
      constants: { WG },
      workgroups: Math.ceil(n / WG),
    },
    'conv2d',
  );
  return packed;
}

/** The geometry fields every tiled kernel's Params starts with, for a block of `n` images. */
function geometryParams(g: Geometry, n: number) {
  return {
    n, c: g.C, h: g.H, w: g.W, o: g.O, oh: g.OH, ow: g.OW,
    kh: g.kH, kw: g.kW, stride_h: g.sh, stride_w: g.sw, pad_h: g.ph, pad_w: g.pw, dil_h: g.dh, dil_w: g.dw,
  };
}

/**
 * Run `each(views, start, count)` over the images of the batch: at once, or in blocks of images
 * when a batch-sized tensor (`batched`, each cut along N) is larger than one binding.
 */
function overImages(op: string, g: Geometry, batched: readonly View[], each: (views: View[], start: number, count: number) => void): void {
  inBlocks(op, 'image', g.N, batched.map((v) => [v, 0] as const), each);
}

/** The forward pass; x is f16 (from toHalf, row-major) when `half`, else float32 in any layout. */
function forward(x: Tensor, w: Tensor, b: Tensor | null, g: Geometry, half: boolean): Tensor {
  const out = empty([g.N, g.O, g.OH, g.OW], 'float32', 'conv2d');
  if (out.size > 0) tidy(() => forwardInto(out, x, w, b, g, half));
  return out;
}

function forwardInto(out: Tensor, x: Tensor, w: Tensor, b: Tensor | null, g: Geometry, half: boolean): void {
  const xs = rowMajor(x);
  const bs = b && !b.isContiguous ? contiguousCopy(b, 'conv2d') : b;
  if (cpuBackend()) {
    overImages('conv2d', g, [xs, out], ([xb, ob], _, n) =>
      launch(
        cpuKernels.forward,
        // Without a bias, the weight is bound in its place, unread.
        { bind: { x: xb!, w, bias: bs ?? w, out: ob! }, params: { ...geometryParams(g, n), ...weightStrides(w) }, constants: { HAS_BIAS: bs !== null }, workgroups: 1 },
        'conv2d',
      ),
    );
    return;
  }
  const wp = packWeight(w, g, false, half);
  overImages('conv2d', g, [xs, out], ([xb, ob], _, n) => {
    const pixelGroups = Math.ceil((n * g.OH * g.OW) / (TILE_WG * TILE_PIXELS));
    const groups = pixelGroups * Math.ceil(g.O / TILE_CHANNELS);
    launch(
      kernels(half).forward,
      {
        // Without a bias, the packed weights are bound in its place, unread.
        bind: { x: xb!, wp, bias: bs ?? wp, out: ob! },
        params: { ...geometryParams(g, n), o_pad: roundUp(g.O, TILE_CHANNELS), pixel_groups: pixelGroups, groups },
        constants: { WG: TILE_WG, HAS_BIAS: bs !== null, TAPS_INNER: g.C <= TAPS_INNER_MAX_CHANNELS },
        workgroups: groups,
      },
      'conv2d',
    );
  });
}

/**
 * dx from dy [N, O, OH, OW] and w: one dispatch per stride phase (see conv2d_grad_input.wgsl).
 * With `half`, dy is f16 (row-major) and the weight is packed as f16.
 */
function gradInput(dy: Tensor, w: Tensor, g: Geometry, half: boolean): Tensor {
  const dx = empty([g.N, g.C, g.H, g.W], 'float32', 'conv2d backward');
  if (dx.size > 0) tidy(() => gradInputInto(dx, dy, w, g, half));
  return dx;
}

function gradInputInto(dx: Tensor, dy: Tensor, w: Tensor, g: Geometry, half: boolean): void {
  const dys = rowMajor(dy);
  if (cpuBackend()) {
    overImages('conv2d backward', g, [dys, dx], ([dyb, dxb], _, n) =>
      launch(cpuKernels.gradInput, { bind: { dy: dyb!, w, dx: dxb! }, params: { ...geometryParams(g, n), ...weightStrides(w) }, workgroups: 1 }, 'conv2d backward'),
    );
    return;
  }
  const wp = packWeight(w, g, true, half);
  const k = kernels(half).gradInput;
  overImages('conv2d backward', g, [dys, dx], ([dyb, dxb], _, n) => {
    for (let phaseH = 0; phaseH < Math.min(g.sh, g.H); phaseH++) {
      for (let phaseW = 0; phaseW < Math.min(g.sw, g.W); phaseW++) {
        const rows = Math.ceil((g.H - phaseH) / g.sh);
        const cols = Math.ceil((g.W - phaseW) / g.sw);
        const pixelGroups = Math.ceil((n * rows * cols) / (TILE_WG * TILE_PIXELS));
        const groups = pixelGroups * Math.ceil(g.C / TILE_CHANNELS);
        launch(
          k,
          {
            bind: { dy: dyb!, wp, dx: dxb! },
            params: {
              ...geometryParams(g, n),
              c_pad: roundUp(g.C, TILE_CHANNELS),
              phase_h: phaseH, phase_w: phaseW, rows, cols, pixel_groups: pixelGroups, groups,
            },
            constants: { WG: TILE_WG, TAPS_INNER: g.O <= TAPS_INNER_MAX_CHANNELS },
            workgroups: groups,
          },
          'conv2d backward',
        );
      }
    }
  });
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
 * A gradient summed over the batch (weight, bias): the first block of images writes `out`, each
 * later block (a batch over one binding) writes a temporary that is added into it.
 */
function sumOverImages(op: string, g: Geometry, batched: readonly View[], out: Tensor, write: (views: View[], n: number, into: Tensor) => void): void {
  overImages(op, g, batched, (views, start, n) => {
    if (start === 0) {
      write(views, n, out);
      return;
    }
    const part = empty(out.shape, 'float32', op);
    write(views, n, part);
    axpyInPlace(out, part, 1);
    part.dispose();
  });
}

/**
 * dw from dy [N, O, OH, OW] and x, with the reduction over N·OH·OW split when tiles are few. Both
 * are f16 (row-major) under autocast, float32 otherwise.
 */
function gradWeight(dy: Tensor, x: Tensor, g: Geometry): Tensor {
  const dw = empty([g.O, g.C, g.kH, g.kW], 'float32', 'conv2d backward');
  if (dw.size > 0) tidy(() => gradWeightInto(dw, dy, x, g));
  return dw;
}

function gradWeightInto(dw: Tensor, dy: Tensor, x: Tensor, g: Geometry): void {
  const dys = rowMajor(dy);
  const xs = rowMajor(x);
  const half = x.dtype === 'float16';
  const ks = kernels(half);
  const cols = g.C * g.kH * g.kW;
  const wg = gradWeightWorkgroup(cols);
  const colGroups = Math.ceil(cols / (wg * TILE_PIXELS));
  const oGroups = Math.ceil(g.O / TILE_CHANNELS);
  sumOverImages('conv2d backward', g, [dys, xs], dw, ([dyb, xb], n, into) => {
    const rows = n * g.OH;
    const wanted = cpuBackend()
      ? cpuGradWeightSplits(g, rows)
      : Math.min(Math.ceil(GRAD_WEIGHT_GROUPS / (colGroups * oGroups)), Math.ceil(rows / GRAD_WEIGHT_MIN_ROWS));
    const rowsPerSplit = Math.max(1, Math.ceil(rows / Math.max(1, wanted)));
    const splits = Math.max(1, Math.ceil(rows / rowsPerSplit));
    const target = splits === 1 ? into : empty([splits * into.size], 'float32', 'conv2d backward');
    const groups = colGroups * oGroups * splits;
    launch(
      ks.gradWeight,
      {
        bind: { dy: dyb!, x: xb!, dw: target },
        params: { ...geometryParams(g, n), cols, col_groups: colGroups, o_groups: oGroups, rows_per_split: rowsPerSplit, groups },
        constants: { WG: wg },
        workgroups: groups,
      },
      'conv2d backward',
    );
    if (target !== into) {
      launch(
        ks.reducePartials,
        { bind: { src: target, sum: into }, params: { m: into.size, splits }, constants: { WG }, workgroups: Math.ceil(into.size / WG) },
        'conv2d backward',
      );
    }
  });
}

/**
 * The CPU backend: how many splits of the rows a weight gradient takes. Its output tiles (blocks of
 * 96 × 256 weights, wasm/gemm.ts) are the threads' tasks; when there are fewer than four per
 * thread (a first layer: 32 × 25 weights is one tile) the rows are split so that every thread
 * has work, and conv2d_reduce_partials adds the splits up.
 */
function cpuGradWeightSplits(g: Geometry, rows: number): number {
  const threads = runtime().info.wasm?.threads ?? 1;
  const tiles = Math.ceil(g.O / 96) * Math.ceil((g.C * g.kH * g.kW) / 256);
  return threads > 1 && tiles < 4 * threads ? Math.min(rows, Math.ceil((4 * threads) / tiles)) : 1;
}

/** db[o] = Σ dy[n, o, oh, ow]: one workgroup per channel. */
function gradBias(dy: Tensor, g: Geometry): Tensor {
  const db = empty([g.O], 'float32', 'conv2d backward');
  if (db.size === 0) return db;
  tidy(() =>
    sumOverImages('conv2d backward', g, [rowMajor(dy)], db, ([dyb], n, into) => {
      const params = { m: g.O, splits: n, inner: g.OH * g.OW };
      launch(kernels().gradBias, { bind: { src: dyb!, sum: into }, params, constants: { WG: TILE_WG }, workgroups: g.O }, 'conv2d backward');
    }),
  );
  return db;
}
