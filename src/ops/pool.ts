// 2-D max and average pooling on NCHW tensors, forward and backward side by side. The input is
// read through its strides (no copy). Like PyTorch: the stride defaults to the kernel size,
// padding is at most half the kernel, max pooling pads with -inf, and average pooling counts
// padded zeros in its divisor (count_include_pad=True, the divisor is always kH·kW).
// Max pooling keeps the argmax of every window for its backward pass.

import poolWGSL from '../../shaders/pool.wgsl?raw';
import { record } from '../autograd/record';
import { runtime } from '../runtime/device';
import { ShapeError } from '../runtime/errors';
import { defineKernel } from '../kernels/kernel';
import { Params } from '../kernels/params';
import { empty, formatShape, type Tensor } from '../tensor';
import { checkDType, WG } from './util';

const maxForwardKernel = defineKernel('maxPool2d', poolWGSL, ['read', 'write', 'write'], 'max_forward');
const avgForwardKernel = defineKernel('avgPool2d', poolWGSL, ['read', 'write'], 'avg_forward');
const maxBackwardKernel = defineKernel('maxPool2d.backward', poolWGSL, ['read', 'read', 'write'], 'max_backward');
const maxBackwardTiledKernel = defineKernel('maxPool2d.backward', poolWGSL, ['read', 'read', 'write'], 'max_backward_tiled');
const avgBackwardKernel = defineKernel('avgPool2d.backward', poolWGSL, ['read', 'write'], 'avg_backward');

export interface Pool2dOptions {
  /** Step between windows (default: the kernel size). */
  stride?: number | [number, number];
  /** Implicit padding on each side, at most half the kernel (default 0). */
  padding?: number | [number, number];
}

/** The resolved geometry of one pooling call. */
interface PoolGeometry {
  n: number;
  c: number;
  inH: number;
  inW: number;
  outH: number;
  outW: number;
  k: [number, number];
  stride: [number, number];
  padding: [number, number];
}

/** Max over each kH×kW window of x [N, C, H, W] → [N, C, outH, outW]. */
export function maxPool2d(x: Tensor, k: number | [number, number], opts: Pool2dOptions = {}): Tensor {
  const geo = geometry('maxPool2d', x, k, opts);
  const inShape = x.shape;
  const outShape = [geo.n, geo.c, geo.outH, geo.outW];
  const out = empty(outShape, 'float32', 'maxPool2d');
  const argmax = empty(outShape, 'int32', 'maxPool2d');
  runtime().executor.dispatch(maxForwardKernel, {
    constants: { WG },
    buffers: [x.buffer('maxPool2d'), out.buffer(), argmax.buffer()],
    params: poolParams(geo, out.size, x),
    workgroups: Math.ceil(out.size / WG),
  });
  const result = record(
    'maxPool2d',
    out,
    [x],
    (g, [am]) => {
      const dx = empty(inShape, 'float32', 'maxPool2d.backward');
      // Windows that tile the input exactly: one invocation per window instead of per element.
      const tiled = tilesExactly(geo);
      const invocations = tiled ? am!.size : dx.size;
      runtime().executor.dispatch(tiled ? maxBackwardTiledKernel : maxBackwardKernel, {
        constants: { WG },
        buffers: [g.buffer('maxPool2d.backward'), am!.buffer('maxPool2d.backward'), dx.buffer()],
        params: poolParams(geo, invocations, g),
        workgroups: Math.ceil(invocations / WG),
      });
      return [dx];
    },
    [argmax],
  );
  // The graph holds its own view of the argmax when it needs one.
  argmax.dispose();
  return result;
}

/** Mean over each kH×kW window of x [N, C, H, W] → [N, C, outH, outW]; padded zeros count. */
export function avgPool2d(x: Tensor, k: number | [number, number], opts: Pool2dOptions = {}): Tensor {
  const geo = geometry('avgPool2d', x, k, opts);
  const inShape = x.shape;
  const out = empty([geo.n, geo.c, geo.outH, geo.outW], 'float32', 'avgPool2d');
  runtime().executor.dispatch(avgForwardKernel, {
    constants: { WG },
    buffers: [x.buffer('avgPool2d'), out.buffer()],
    params: poolParams(geo, out.size, x),
    workgroups: Math.ceil(out.size / WG),
  });
  return record('avgPool2d', out, [x], (g) => {
    const dx = empty(inShape, 'float32', 'avgPool2d.backward');
    runtime().executor.dispatch(avgBackwardKernel, {
      constants: { WG },
      buffers: [g.buffer('avgPool2d.backward'), dx.buffer()],
      params: poolParams(geo, dx.size, g),
      workgroups: Math.ceil(dx.size / WG),
    });
    return [dx];
  });
}

/** Stride equal to the kernel, no padding, and windows covering every input element exactly once. */
function tilesExactly(geo: PoolGeometry): boolean {
  const [kh, kw] = geo.k;
  return (
    geo.stride[0] === kh && geo.stride[1] === kw && geo.padding[0] === 0 && geo.padding[1] === 0 &&
    geo.outH * kh === geo.inH && geo.outW * kw === geo.inW
  );
}

/** Params of every pooling kernel; `src` is the tensor the kernel reads through its strides. */
function poolParams(geo: PoolGeometry, total: number, src: Tensor): Params {
  return new Params()
    .u32(total, geo.c, geo.inH, geo.inW, geo.outH, geo.outW)
    .u32(...geo.k, ...geo.stride, ...geo.padding)
    .vecU32(src.strides, 4)
    .u32(src.offset);
}

function geometry(op: string, x: Tensor, k: number | [number, number], opts: Pool2dOptions): PoolGeometry {
  checkDType(op, x);
  if (x.ndim !== 4) {
    throw new ShapeError(`${op}: input must be 4-D [N, C, H, W], got ${formatShape(x.shape)}`);
  }
  const [n, c, inH, inW] = x.shape as [number, number, number, number];
  if (inH === 0 || inW === 0) {
    throw new ShapeError(`${op}: input ${formatShape(x.shape)} has an empty spatial dimension`);
  }
  const kernel = pair(op, 'kernel size', k, 1);
  const stride = opts.stride === undefined ? kernel : pair(op, 'stride', opts.stride, 1);
  const padding = pair(op, 'padding', opts.padding ?? 0, 0);
  if (padding[0] > kernel[0] / 2 || padding[1] > kernel[1] / 2) {
    throw new ShapeError(
      `${op}: padding ${formatShape(padding)} must be at most half the kernel size ${formatShape(kernel)}`,
    );
  }
  const outH = Math.floor((inH + 2 * padding[0] - kernel[0]) / stride[0]) + 1;
  const outW = Math.floor((inW + 2 * padding[1] - kernel[1]) / stride[1]) + 1;
  if (outH <= 0 || outW <= 0) {
    throw new ShapeError(
      `${op}: kernel ${formatShape(kernel)} is larger than the padded input ` +
        `(input ${formatShape(x.shape)}, padding ${formatShape(padding)})`,
    );
  }
  return { n, c, inH, inW, outH, outW, k: kernel, stride, padding };
}

/** A number or an [h, w] pair of integers ≥ min, as a pair. */
function pair(op: string, what: string, v: number | [number, number], min: number): [number, number] {
  const p: [number, number] | null =
    typeof v === 'number' ? [v, v] : Array.isArray(v) && v.length === 2 ? [v[0], v[1]] : null;
  if (!p || p.some((d) => !Number.isInteger(d) || d < min)) {
    throw new ShapeError(
      `${op}: ${what} must be ${min === 1 ? 'a positive' : 'a non-negative'} integer or an [h, w] pair of them, ` +
        `got ${JSON.stringify(v)}`,
    );
  }
  return p;
}
