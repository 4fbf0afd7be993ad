// softmax and logSoftmax along any axis, max-subtracted for stability, with their backward
// rules. The slices along the axis are rows read in place through strides: the last axis of a
// contiguous tensor puts adjacent invocations on one row; other axes put them on adjacent rows.
// Tensors larger than one binding are cut into blocks along the first dimension (when it is not
// the axis): each block is a set of whole rows.

import softmaxWGSL from '../../shaders/softmax.wgsl?raw';
import { record } from '../autograd/record';
import { checkDType, checkRank, normAxis } from '../checks';
import type { Kernel } from '../kernels/kernel';
import { coalesce, MAX_RANK, padded } from '../kernels/layout';
import { launch } from '../kernels/launch';
import { rowKernel } from '../kernels/rows';
import { inBlocks } from '../kernels/segments';
import { contiguousStrides, sizeOf, type View } from '../kernels/view';
import { empty, type Tensor } from '../tensor';
import { reduceTile } from './reduce';

const forwardKernel = () => rowKernel('softmax', softmaxWGSL, 'forward', { x: 'read', out: 'write' }, 'softmax_forward');
const backwardKernel = () => rowKernel('softmax.backward', softmaxWGSL, 'backward', { g: 'read', y: 'read', out: 'write' }, 'softmax_backward');

/** exp(a) / Σ exp(a) along `axis`. */
export function softmax(a: Tensor, axis = -1): Tensor {
  return rowwise('softmax', a, axis, false);
}

/** a − log Σ exp(a) along `axis` (more accurate than log(softmax(a))). */
export function logSoftmax(a: Tensor, axis = -1): Tensor {
  return rowwise('logSoftmax', a, axis, true);
}

function rowwise(op: string, a: Tensor, axis: number, log: boolean): Tensor {
  checkDType(op, a);
  checkRank(op, a.shape);
  const ax = normAxis(op, axis, Math.max(a.ndim, 1)); // a 0-d tensor is one row of length 1
  const out = empty(a.shape, 'float32', op);
  if (a.size > 0) inRowBlocks(op, ax, { x: a, out }, (b) => run(forwardKernel(), b, b.x!, ax, log, true, op));
  // backward: softmax y·(g − Σ g·y); logSoftmax g − exp(y)·Σ g (exp(y) is the softmax).
  return record(
    op,
    out,
    [a],
    (g, [y]) => {
      const name = `${op}.backward`;
      const dx = empty(y!.shape, 'float32', name);
      if (dx.size > 0) inRowBlocks(name, ax, { g, y: y!, out: dx }, (b) => run(backwardKernel(), b, b.g!, ax, log, false, name));
      return [dx];
    },
    [out],
  );
}

/** `each` over the views whole, or over blocks of their first dimension when that holds whole rows. */
function inRowBlocks(op: string, axis: number, views: Record<string, View>, each: (block: Record<string, View>) => void): void {
  const names = Object.keys(views);
  const first = views[names[0]!]!;
  if (first.shape.length < 2 || axis === 0) {
    each(views);
    return;
  }
  inBlocks(op, 'row', first.shape[0]!, names.map((n) => [views[n]!, 0] as const), (vs) =>
    each(Object.fromEntries(names.map((n, i) => [n, vs[i]!]))),
  );
}

/**
 * Dispatch `kernel` over the rows along `axis`: `src` (x forward, g backward) is read through its
 * strides, the output (and, backward, y) is contiguous. The layout follows `src` forward and the
 * output backward, where two of the three operands are contiguous.
 */
function run(kernel: Kernel, bind: Record<string, View>, src: View, axis: number, log: boolean, followSrc: boolean, op: string): void {
  const shape = src.shape.length ? src.shape : [1];
  const inStrides = src.shape.length ? src.strides : [1];
  const outStrides = contiguousStrides(shape);
  const others = shape.map((_, d) => d).filter((d) => d !== axis);
  const rows = coalesce(
    others.map((d) => shape[d]!),
    [others.map((d) => inStrides[d]!), others.map((d) => outStrides[d]!)],
  );
  const k = shape[axis]!;
  const m = sizeOf(shape) / k;
  const axisStride = followSrc ? inStrides[axis]! : outStrides[axis]!;
  const rowStrides = rows.strides[followSrc ? 0 : 1]!.filter((s) => s > 0);
  const lanesFast = rowStrides.length === 0 || (axisStride > 0 && axisStride <= Math.min(...rowStrides));
  const { tx, lanes } = reduceTile(m, k, lanesFast);
  const blocks = Math.ceil(m / tx);
  launch(
    kernel,
    {
      bind,
      params: {
        m,
        k,
        blocks,
        krank: rows.shape.length,
        in_stride: inStrides[axis]!,
        out_stride: outStrides[axis]!,
        row_shape: padded(rows.shape, MAX_RANK, 1),
        in_rows: rows.strides[0]!,
        out_rows: rows.strides[1]!,
      },
      constants: { WG: tx * lanes, TX: tx, LANES_FAST: lanesFast, LOG: log },
      workgroups: blocks,
    },
    op,
  );
}
