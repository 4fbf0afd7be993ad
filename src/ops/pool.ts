// 2-D max and average pooling on NCHW tensors, forward and backward side by side. The input is
// read through its strides (no copy). Like PyTorch: the stride defaults to the kernel size,
// padding is at most half the kernel, max pooling pads with -inf, and average pooling counts
// padded zeros in its divisor (count_include_pad=True, the divisor is always kH·kW).
// Max pooling keeps the argmax of every window for its backward pass.

import poolWGSL from '../../shaders/pool.wgsl?raw';
import { record } from '../autograd/record';
import { checkDType, pair } from '../checks';
import { defineKernel, type Kernel } from '../kernels/kernel';
import { WG } from '../kernels/layout';
import { launch } from '../kernels/launch';
import { inBlocks } from '../kernels/segments';
import { sizeOf, type View } from '../kernels/view';
import { ShapeError } from '../runtime/errors';
import { empty, formatShape, type Tensor } from '../tensor';

const maxForwardKernel = defineKernel('maxPool2d', { code: poolWGSL, entry: 'max_forward', bindings: { src: 'read', out: 'write', argmax: 'write' }, wasm: 'max_pool_forward' });
const avgForwardKernel = defineKernel('avgPool2d', { code: poolWGSL, entry: 'avg_forward', bindings: { src: 'read', out: 'write' }, wasm: 'avg_pool_forward' });
const maxBackwardKernel = defineKernel('maxPool2d.backward', { code: poolWGSL, entry: 'max_backward', bindings: { src: 'read', argmax: 'read', dx: 'write' }, wasm: 'max_pool_backward' });
const maxBackwardTiledKernel = defineKernel('maxPool2d.backward_tiled', { code: poolWGSL, entry: 'max_backward_tiled', bindings: { src: 'read', argmax: 'read', dx: 'write' }, wasm: 'max_pool_backward_tiled' });
const avgBackwardKernel = defineKernel('avgPool2d.backward', { code: poolWGSL, entry: 'avg_backward', bindings: { src: 'read', dx: 'write' }, wasm: 'avg_pool_backward' });

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
  inBatches('maxPool2d', maxForwardKernel, geo, { src: x, out, argmax }, 'out');
  const result = record(
    'maxPool2d',
    out,
    [x],
    (g, [am]) => {
      const dx = empty(inShape, 'float32', 'maxPool2d.backward');
      // Windows that tile the input exactly: one invocation per window instead of per element.
      const tiled = tilesExactly(geo);
      inBatches('maxPool2d.backward', tiled ? maxBackwardTiledKernel : maxBackwardKernel, geo, { src: g, argmax: am!, dx }, tiled ? 'argmax' : 'dx');
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
  inBatches('avgPool2d', avgForwardKernel, geo, { src: x, out }, 'out');
  return record('avgPool2d', out, [x], (g) => {
    const dx = empty(inShape, 'float32', 'avgPool2d.backward');
    inBatches('avgPool2d.backward', avgBackwardKernel, geo, { src: g, dx }, 'dx');
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

/**
 * Launch a pooling kernel over the batch, in blocks of images when a tensor is larger than one
 * binding: every binding is cut along N. One invocation per element of the binding `per`.
 */
function inBatches(op: string, kernel: Kernel, geo: PoolGeometry, bind: Record<string, View>, per: string): void {
  const names = Object.keys(bind);
  inBlocks(op, 'image', geo.n, names.map((n) => [bind[n]!, 0] as const), (views) => {
    const block = Object.fromEntries(names.map((n, i) => [n, views[i]!]));
    const total = sizeOf(block[per]!.shape);
    launch(
      kernel,
      {
        bind: block,
        params: {
          total,
          channels: geo.c,
          in_h: geo.inH,
          in_w: geo.inW,
          out_h: geo.outH,
          out_w: geo.outW,
          k_h: geo.k[0],
          k_w: geo.k[1],
          s_h: geo.stride[0],
          s_w: geo.stride[1],
          p_h: geo.padding[0],
          p_w: geo.padding[1],
          src_strides: block.src!.strides,
        },
        constants: { WG },
        workgroups: Math.ceil(total / WG),
      },
      op,
    );
  });
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
