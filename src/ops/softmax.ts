// softmax and logSoftmax along any axis, max-subtracted for stability, with their backward
// rules. The slices along the axis are rows read in place through strides: the last axis of a
// contiguous tensor puts adjacent invocations on one row; other axes put them on adjacent rows.

import softmaxWGSL from '../../shaders/softmax.wgsl?raw';
import { record } from '../autograd/record';
import { runtime } from '../runtime/device';
import type { Kernel } from '../kernels/kernel';
import { Params } from '../kernels/params';
import { contiguousStrides, empty, type Tensor } from '../tensor';
import { reduceTile } from './reduce';
import { rowKernel } from '../kernels/rows';
import { checkDType, checkRank, coalesce, MAX_RANK, normAxis } from './util';

const forwardKernel = () => rowKernel('softmax', softmaxWGSL, ['read', 'write'], 'forward');
const backwardKernel = () => rowKernel('softmax.backward', softmaxWGSL, ['read', 'read', 'write'], 'backward');

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
  if (a.size > 0) run(forwardKernel(), a, out, ax, log, [a.buffer(op), out.buffer()], true);
  // backward: softmax y·(g − Σ g·y); logSoftmax g − exp(y)·Σ g (exp(y) is the softmax).
  return record(
    op,
    out,
    [a],
    (g, [y]) => {
      const name = `${op}.backward`;
      const dx = empty(y!.shape, 'float32', name);
      if (dx.size > 0) run(backwardKernel(), g, dx, ax, log, [g.buffer(name), y!.buffer(name), dx.buffer()], false);
      return [dx];
    },
    [out],
  );
}

/**
 * Dispatch `kernel` over the rows along `axis`: `src` is read through its strides, the output
 * (and, backward, y) is contiguous. The layout follows `src` forward and the output backward,
 * where two of the three operands are contiguous.
 */
function run(
  kernel: Kernel,
  src: Tensor,
  out: Tensor,
  axis: number,
  log: boolean,
  buffers: GPUBuffer[],
  followSrc: boolean,
): void {
  const shape = src.ndim ? src.shape : [1];
  const inStrides = src.ndim ? src.strides : [1];
  const outStrides = contiguousStrides(shape);
  const others = shape.map((_, d) => d).filter((d) => d !== axis);
  const rows = coalesce(
    others.map((d) => shape[d]!),
    [others.map((d) => inStrides[d]!), others.map((d) => outStrides[d]!)],
  );
  const m = out.size / shape[axis]!;
  const k = shape[axis]!;
  const guide = followSrc ? 0 : 1; // the operand whose strides pick the layout
  const axisStride = followSrc ? inStrides[axis]! : outStrides[axis]!;
  const rowStrides = rows.strides[guide]!.filter((s) => s > 0);
  const lanesFast = rowStrides.length === 0 || (axisStride > 0 && axisStride <= Math.min(...rowStrides));
  const { tx, lanes } = reduceTile(m, k, lanesFast);
  const blocks = Math.ceil(m / tx);
  const params = new Params()
    .u32(m, k, blocks, rows.shape.length, src.offset, inStrides[axis]!, outStrides[axis]!)
    .vecU32(rows.shape, MAX_RANK, 1)
    .vecU32(rows.strides[0]!, MAX_RANK)
    .vecU32(rows.strides[1]!, MAX_RANK);
  runtime().executor.dispatch(kernel, {
    constants: { WG: tx * lanes, TX: tx, LANES_FAST: lanesFast, LOG: log },
    buffers,
    params,
    workgroups: blocks,
  });
}
