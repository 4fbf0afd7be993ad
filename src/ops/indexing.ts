// Reading by index: embedding(ids, weight), indexSelect(a, axis, ids) and gather(a, axis, index),
// with PyTorch's semantics. One kernel reads them all (shaders/gather.wgsl): each output element
// finds its id and reads the source element it names. Their backward pass is the deterministic
// scatter-add of scatter-add.ts. Ids are int32; one out of range sets the device-side assert (the
// next readback throws) and reads as 0. A source larger than one storage binding (a large
// embedding table) is read in blocks of the indexed dimension; a large output in blocks of its
// first dimension.

import gatherWGSL from '../../shaders/gather.wgsl?raw';
import { record } from '../autograd/record';
import { checkRank, normAxis } from '../checks';
import { defineKernel } from '../kernels/kernel';
import { coalesce, MAX_RANK, padded, WG } from '../kernels/layout';
import { launch } from '../kernels/launch';
import { inBlocks } from '../kernels/segments';
import { contiguousStrides, sizeOf, sliceView, type View } from '../kernels/view';
import { runtime } from '../runtime/device';
import { DTypeError, ShapeError } from '../runtime/errors';
import { empty, formatShape, type Tensor } from '../tensor';
import { scatterAdd, type Scatter } from './scatter-add';

const gatherKernel = defineKernel('gather', {
  code: gatherWGSL,
  entry: 'gather',
  bindings: { idx: 'read', src: 'read', out: 'write', status: 'write' },
  wasm: 'gather',
});

/**
 * Rows of `weight` [V, D] picked by `ids` (int32, any shape): [...ids.shape, D]. The gradient adds
 * each output row into the weight row it came from (the same bits on every run).
 */
export function embedding(ids: Tensor, weight: Tensor): Tensor {
  checkIds('embedding', ids, 'ids');
  checkValues('embedding', weight, 'weight');
  if (weight.ndim !== 2) throw new ShapeError(`embedding: weight must be [V, D], got ${formatShape(weight.shape)} (ids ${formatShape(ids.shape)})`);
  const [v, d] = weight.shape as [number, number];
  const k = ids.ndim;
  return indexed({
    op: 'embedding',
    what: `ids ${formatShape(ids.shape)} for weight ${formatShape(weight.shape)} (ids must be in [0, ${v - 1}])`,
    src: weight,
    axis: 0,
    idx: ids,
    shape: [...ids.shape, d],
    srcDims: [...new Array<null>(k).fill(null), 1],
    idxDims: [...ids.shape.map((_, i) => i), null],
    rows: true,
  });
}

/**
 * The slices of `a` along `axis` at `ids` (int32, 1-D or a single id), in that order: `a`'s shape
 * with the axis's size replaced by the number of ids (torch.index_select).
 */
export function indexSelect(a: Tensor, axis: number, ids: Tensor): Tensor {
  checkIds('indexSelect', ids, 'ids');
  checkValues('indexSelect', a, 'input');
  if (a.ndim === 0) throw new ShapeError(`indexSelect: input ${formatShape(a.shape)} has no dimension to select from`);
  const ax = normAxis('indexSelect', axis, a.ndim);
  if (ids.ndim > 1) throw new ShapeError(`indexSelect: ids must be 1-D, got ${formatShape(ids.shape)} (input ${formatShape(a.shape)})`);
  const n = ids.size;
  const shape = [...a.shape];
  shape[ax] = n;
  // A single id (0-d) walks no dimension: read it as a one-element vector.
  const idx = ids.ndim === 0 ? ids.view([1], [1], ids.offset) : ids;
  const out = indexed({
    op: 'indexSelect',
    what: `ids ${formatShape(ids.shape)} for dimension ${ax} of input ${formatShape(a.shape)} (ids must be in [0, ${a.shape[ax]! - 1}])`,
    src: a,
    axis: ax,
    idx,
    shape,
    srcDims: shape.map((_, i) => (i === ax ? null : i)),
    idxDims: shape.map((_, i) => (i === ax ? 0 : null)),
    rows: true,
  });
  if (idx !== ids) idx.dispose();
  return out;
}

/**
 * out[i][j][k] = a[i][index[i][j][k]][k] for axis 1 (and so on for other axes), as torch.gather:
 * `index` (int32) has a's rank and, outside `axis`, sizes at most a's; the output has its shape.
 */
export function gather(a: Tensor, axis: number, index: Tensor): Tensor {
  checkIds('gather', index, 'index');
  checkValues('gather', a, 'input');
  if (a.ndim === 0) throw new ShapeError(`gather: input ${formatShape(a.shape)} has no dimension to gather from`);
  const ax = normAxis('gather', axis, a.ndim);
  if (index.ndim !== a.ndim || index.shape.some((d, i) => i !== ax && d > a.shape[i]!)) {
    throw new ShapeError(
      `gather: index ${formatShape(index.shape)} does not fit input ${formatShape(a.shape)} along axis ${ax} ` +
        `(same rank, and sizes at most the input's outside the axis)`,
    );
  }
  return indexed({
    op: 'gather',
    what: `index ${formatShape(index.shape)} for dimension ${ax} of input ${formatShape(a.shape)} (indices must be in [0, ${a.shape[ax]! - 1}])`,
    src: a,
    axis: ax,
    idx: index,
    shape: [...index.shape],
    srcDims: index.shape.map((_, i) => (i === ax ? null : i)),
    idxDims: index.shape.map((_, i) => i),
    rows: false,
  });
}

/** One indexed read: which source and id dimension each output dimension walks. */
interface Indexed {
  op: string;
  /** The ids and what they index, for the out-of-range error. */
  what: string;
  src: Tensor;
  /** The indexed dimension of src. */
  axis: number;
  idx: Tensor;
  /** The output's shape. */
  shape: number[];
  /** Per output dimension: the src dimension it walks (null: none; the axis is never one). */
  srcDims: (number | null)[];
  /** Per output dimension: the idx dimension it walks (null: none). */
  idxDims: (number | null)[];
  /** Each id picks a whole slice of src (embedding, indexSelect), not one element (gather). */
  rows: boolean;
}

function indexed(x: Indexed): Tensor {
  checkRank(x.op, x.shape);
  const out = empty(x.shape, x.src.dtype, x.op);
  if (out.size > 0) gatherInto(x, out);
  return record(x.op, out, [x.src], (g, [idx]) => [scatterAdd(scatterOf(x, idx!), g)], [x.idx]);
}

/** Launch the gather kernel: output in blocks of its first dimension, src in blocks of the axis. */
function gatherInto(x: Indexed, out: Tensor): void {
  const check = runtime().executor.deviceAssert(`${x.op}: an id is out of range: ${x.what}`, (m) => new ShapeError(m));
  const lead = x.idxDims[0] ?? null;
  const srcLead = x.srcDims[0] ?? null;
  inBlocks(x.op, 'slice along the first dimension', x.shape[0]!, [[out, 0], [x.idx, lead]], ([o, idx], start, len) => {
    const src = srcLead === null ? x.src : sliceView(x.src, srcLead, start, len);
    const limit = x.src.shape[x.axis]!;
    inBlocks(x.op, `slice of the source along dimension ${x.axis}`, limit, [[src, x.axis]], ([s], lo, blockLen) => {
      const strides = (view: View, dims: (number | null)[]) => dims.map((d) => (d === null ? 0 : view.strides[d]!));
      const dims = coalesce(o!.shape, [strides(idx!, x.idxDims), strides(s!, x.srcDims), contiguousStrides(o!.shape)]);
      const n = sizeOf(o!.shape);
      launch(
        gatherKernel,
        {
          bind: { idx: idx!, src: s!, out: o!, status: check.buffer },
          params: {
            n,
            limit,
            lo,
            len: blockLen,
            axis_stride: s!.strides[x.axis]!,
            code: check.code,
            shape: padded(dims.shape, MAX_RANK, 1),
            idx_strides: dims.strides[0]!,
            src_strides: dims.strides[1]!,
          },
          constants: { WG, RANK: Math.max(1, dims.shape.length) },
          workgroups: Math.ceil(n / WG),
        },
        x.op,
      );
    });
  });
}

/** The scatter-add that is this read's backward pass: into a contiguous tensor of src's shape. */
function scatterOf(x: Indexed, idx: Tensor): Scatter {
  const shape = x.src.shape;
  const strides = contiguousStrides(shape);
  const limit = shape[x.axis]!;
  if (x.rows) {
    // Entry e is the e-th id; its columns are src's other dimensions, [outer, (axis), inner].
    const inner = sizeOf(shape.slice(x.axis + 1));
    const outer = sizeOf(shape.slice(0, x.axis));
    return {
      op: x.op, shape, idx, limit,
      keyStrides: idx.shape.map(() => 0),
      axisStride: inner,
      width: outer * inner,
      inner,
      gOuter: idx.size * inner,
      gEntry: inner,
      outOuter: limit * inner,
      blockable: x.axis === 0,
    };
  }
  // gather: entry e is the e-th element of the index, its key the offset it adds into.
  return {
    op: x.op, shape, idx, limit,
    keyStrides: strides.map((s, i) => (i === x.axis ? 0 : s)),
    axisStride: strides[x.axis]!,
    width: 1,
    inner: 1,
    gOuter: 0,
    gEntry: 1,
    outOuter: 0,
    blockable: true,
  };
}

function checkIds(op: string, ids: Tensor, what: string): void {
  if (ids.dtype !== 'int32') {
    throw new DTypeError(`${op}: ${what} ${formatShape(ids.shape)} are ${ids.dtype}, expected int32 (convert float ids to int32 first)`);
  }
}

function checkValues(op: string, t: Tensor, what: string): void {
  if (t.dtype !== 'float32' && t.dtype !== 'int32') throw new DTypeError(`${op}: ${what} ${formatShape(t.shape)} is ${t.dtype}, expected float32 or int32`);
}
