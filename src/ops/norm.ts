// layerNorm and rmsNorm over the trailing `normalizedShape` dimensions, as PyTorch's
// F.layer_norm and F.rms_norm, fused (shaders/norm.wgsl): forward is one kernel (each row's
// statistics from one read of it, then its output), and backward keeps only x and two numbers per
// row (mean, 1/std). dx is one kernel per row; dweight and dbias are column sums over the rows, cut into
// chunks summed in a fixed order (the same bits on every run: no atomics). The normalized
// dimensions are merged into rows of K elements; tensors larger than one binding are cut into
// blocks of rows.

import normWGSL from '../../shaders/norm.wgsl?raw';
import width1WGSL from '../../shaders/width1.wgsl?raw';
import width4WGSL from '../../shaders/width4.wgsl?raw';
import { record } from '../autograd/record';
import { checkDType, checkRank, sameShape } from '../checks';
import { contiguousCopy, zeros } from '../creation';
import type { Access, Kernel } from '../kernels/kernel';
import { launch } from '../kernels/launch';
import { rowKernel } from '../kernels/rows';
import { blocksOf, inBlocks } from '../kernels/segments';
import { sliceView, subView, type View } from '../kernels/view';
import { ShapeError, WebGradError } from '../runtime/errors';
import { tidy } from '../scope';
import { contiguousStrides, empty, formatShape, sizeOf, type Tensor } from '../tensor';
import { reduceProfile, reduceTile, sum } from './reduce';

type NormOp = 'layerNorm' | 'rmsNorm';

/** Elements an invocation reads at once: 4 (vec4 loads) or 1 (shaders/width*.wgsl). */
type Width = 1 | 4;

function normKernel(name: string, width: Width, entry: string, bindings: Readonly<Record<string, Access>>): Kernel {
  return rowKernel(width === 4 ? `${name}.vec4` : name, [width === 4 ? width4WGSL : width1WGSL, normWGSL], entry, bindings, `norm_${entry}`);
}
const forwardKernel = (op: NormOp, width: Width) => normKernel(op, width, 'forward', { x: 'read', w: 'read', b: 'read', y: 'write', stats: 'write' });
const backwardKernel = (op: NormOp, width: Width) =>
  normKernel(`${op}.backward`, width, 'backward', { x: 'read', w: 'read', stats: 'read', g: 'read', dx: 'write' });
const columnsKernel = (op: NormOp, width: Width) =>
  normKernel(`${op}.columns`, width, 'columns', { x: 'read', stats: 'read', g: 'read', part: 'write' });

/** vec4 loads when rows and every view start on a multiple of 4 elements (stats are read as f32 alone). */
function widthFor(k: number, ...views: (View | null)[]): Width {
  return k % 4 === 0 && views.every((v) => !v || v.offset % 4 === 0) ? 4 : 1;
}

/** Invocations per workgroup of the column sums (one Vec of columns each). */
const COLUMN_WG = 64;

/** float32's machine epsilon: F.rms_norm's default eps (torch.finfo(float32).eps). */
const FLOAT32_EPS = 2 ** -23;

/**
 * (x − mean) / √(var + eps) · weight + bias, the mean and (biased) variance taken over the last
 * dimensions, `normalizedShape`; weight and bias (each optional) have that shape.
 */
export function layerNorm(x: Tensor, normalizedShape: number | readonly number[], weight?: Tensor | null, bias?: Tensor | null, eps = 1e-5): Tensor {
  return normalize('layerNorm', x, normalizedShape, weight ?? null, bias ?? null, eps);
}

/** x / √(mean(x²) + eps) · weight over the last dimensions, `normalizedShape` (eps: float32's machine epsilon by default, as PyTorch). */
export function rmsNorm(x: Tensor, normalizedShape: number | readonly number[], weight?: Tensor | null, eps = FLOAT32_EPS): Tensor {
  return normalize('rmsNorm', x, normalizedShape, weight ?? null, null, eps);
}

function normalize(op: NormOp, x: Tensor, normalizedShape: number | readonly number[], weight: Tensor | null, bias: Tensor | null, eps: number): Tensor {
  const shape = checkArgs(op, x, normalizedShape, weight, bias, eps);
  const k = sizeOf(shape);
  const m = sizeOf(x.shape.slice(0, x.ndim - shape.length));
  const center = op === 'layerNorm';
  return tidy(() => {
    const xc = x.isContiguous ? x : contiguousCopy(x, op);
    const wc = weight && (weight.isContiguous ? weight : contiguousCopy(weight, op));
    const bc = bias && (bias.isContiguous ? bias : contiguousCopy(bias, op));
    const y = empty(x.shape, 'float32', op);
    const stats = empty([m, 2], 'float32', op);
    if (m > 0 && k > 0) {
      const x2 = rows(xc, m, k);
      const width = widthFor(k, xc, wc, bc);
      inBlocks(op, 'row', m, [[x2, 0], [rows(y, m, k), 0], [stats, 0], [wc ?? x2, null], [bc ?? x2, null]], ([xb, yb, sb, wb, bb], _, n) => {
        const { tx, lanes } = reduceTile(n, k / width, true);
        const blocks = Math.ceil(n / tx);
        launch(
          forwardKernel(op, width),
          {
            // An absent weight or bias is bound to one Vec of x and never read.
            bind: { x: xb!, w: wc ? wb! : first(xb!, width), b: bc ? bb! : first(xb!, width), y: yb!, stats: sb! },
            params: { m: n, k, blocks, eps },
            constants: { WG: tx * lanes, TX: tx, CENTER: center, WEIGHT: !!wc, BIAS: !!bc },
            workgroups: blocks,
          },
          op,
        );
      });
    }
    const inputs = [x, ...(weight ? [weight] : []), ...(bias ? [bias] : [])];
    return record(
      op,
      y,
      inputs,
      (g, [xs, st, ws], needs) => {
        const name = `${op}.backward`;
        const gc = g.isContiguous ? g : contiguousCopy(g, name);
        const dx = needs[0] ? inputGradient(op, xs!, ws ?? null, st!, gc, m, k, center) : null;
        const wantColumns = needs.slice(1).some(Boolean);
        const [dw, db] = wantColumns ? columnSums(op, xs!, st!, gc, m, k, shape) : [null, null];
        return [dx, ...(weight ? [dw] : []), ...(bias ? [db] : [])];
      },
      [xc, stats, ...(wc ? [wc] : [])],
    );
  });
}

/** dx = rstd·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)) with ĝ = g·w (rmsNorm: without mean(ĝ)). */
function inputGradient(op: NormOp, x: Tensor, w: Tensor | null, stats: Tensor, g: Tensor, m: number, k: number, center: boolean): Tensor {
  const name = `${op}.backward`;
  const dx = empty(x.shape, 'float32', name);
  if (m === 0 || k === 0) return dx;
  const x2 = rows(x, m, k);
  const width = widthFor(k, x, g, w);
  inBlocks(name, 'row', m, [[x2, 0], [rows(g, m, k), 0], [rows(dx, m, k), 0], [stats, 0], [w ?? x2, null]], ([xb, gb, db, sb, wb], _, n) => {
    const { tx, lanes } = reduceTile(n, k / width, true);
    const blocks = Math.ceil(n / tx);
    launch(
      backwardKernel(op, width),
      {
        bind: { x: xb!, w: w ? wb! : first(xb!, width), stats: sb!, g: gb!, dx: db! },
        params: { m: n, k, blocks },
        constants: { WG: tx * lanes, TX: tx, CENTER: center, WEIGHT: !!w },
        workgroups: blocks,
      },
      name,
    );
  });
  return dx;
}

/**
 * dweight = Σ_rows g·x̂ and dbias = Σ_rows g, each of `shape`: the column kernel sums chunks of
 * rows into partials [chunks, 2, K] (chunks never straddle a block of rows), then the chunks are
 * summed (reduce.ts, a column sum in a fixed order).
 */
function columnSums(op: NormOp, x: Tensor, stats: Tensor, g: Tensor, m: number, k: number, shape: readonly number[]): [Tensor, Tensor] {
  const name = `${op}.backward`;
  const x2 = rows(x, m, k);
  const g2 = rows(g, m, k);
  const width = widthFor(k, x, g);
  const colGroups = Math.ceil(k / width / COLUMN_WG);
  const chunkLen = columnChunk(m, colGroups);
  const blocks = m > 0 ? blocksOf(name, 'row', m, [[x2, 0], [g2, 0], [stats, 0]]) : [];
  const chunksOf = (len: number) => Math.ceil(len / chunkLen);
  const total = blocks.reduce((s, [, len]) => s + chunksOf(len), 0);
  let sums: Tensor;
  if (total === 0 || k === 0) {
    sums = zeros([2, k]); // no rows: nothing to sum
  } else {
    const part = empty([total, 2, k], 'float32', name);
    let at = 0;
    for (const [start, len] of blocks) {
      const chunks = chunksOf(len);
      const groups = chunks * colGroups;
      launch(
        columnsKernel(op, width),
        {
          bind: { x: sliceView(x2, 0, start, len), stats: sliceView(stats, 0, start, len), g: sliceView(g2, 0, start, len), part: sliceView(part, 0, at, chunks) },
          params: { m: len, k, blocks: groups, chunk_len: chunkLen },
          constants: { WG: COLUMN_WG },
          workgroups: groups,
        },
        name,
      );
      at += chunks;
    }
    sums = total === 1 ? part : sum(part, 0);
  }
  const dw = sums.view(shape, contiguousStrides(shape), sums.offset);
  const db = sums.view(shape, contiguousStrides(shape), sums.offset + k);
  return [dw, db];
}

/**
 * Rows per chunk of the column sums: enough chunks that the GPU has work for many workgroups
 * (the profile's per-lane length is what one invocation should fold at least), few enough that
 * the partials stay small.
 */
function columnChunk(m: number, colGroups: number): number {
  const { perLane } = reduceProfile();
  const wantGroups = 512;
  const chunks = Math.max(1, Math.ceil(wantGroups / colGroups));
  return Math.max(perLane * 4, Math.ceil(m / chunks));
}

/** A contiguous tensor seen as [m, k]. */
function rows(t: View, m: number, k: number): View {
  return subView(t, [m, k], [k, 1], t.offset);
}

/** The first `n` elements of a view (a stand-in binding for an absent weight or bias). */
function first(v: View, n: number): View {
  return subView(v, [n], [1], v.offset);
}

/** The normalized shape as a list, after checking every argument against it. */
function checkArgs(op: NormOp, x: Tensor, normalizedShape: number | readonly number[], weight: Tensor | null, bias: Tensor | null, eps: number): number[] {
  checkDType(op, x);
  checkRank(op, x.shape);
  const shape = typeof normalizedShape === 'number' ? [normalizedShape] : Array.isArray(normalizedShape) ? [...normalizedShape] : null;
  if (!shape || shape.length === 0 || shape.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new ShapeError(`${op}: normalizedShape must be a non-negative integer or a non-empty list of them, got ${JSON.stringify(normalizedShape)}`);
  }
  const tail = x.shape.slice(x.ndim - shape.length);
  if (x.ndim < shape.length || !sameShape(tail, shape)) {
    throw new ShapeError(`${op}: input ${formatShape(x.shape)} does not end with normalizedShape ${formatShape(shape)}`);
  }
  for (const [what, t] of [['weight', weight], ['bias', bias]] as const) {
    if (!t) continue;
    checkDType(op, t, 'float32', what);
    if (!sameShape(t.shape, shape)) {
      throw new ShapeError(`${op}: ${what} ${formatShape(t.shape)} does not match normalizedShape ${formatShape(shape)} (input ${formatShape(x.shape)})`);
    }
  }
  if (typeof eps !== 'number' || !(eps >= 0) || !Number.isFinite(eps)) {
    throw new WebGradError(`${op}: eps must be a finite number ≥ 0, got ${String(eps)}`);
  }
  return shape;
}
