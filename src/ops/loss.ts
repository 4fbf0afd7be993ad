// Losses: crossEntropy (fused: log-softmax, pick and mean in two kernels, backward in one) and
// mse.

import crossEntropyWGSL from '../../shaders/cross_entropy.wgsl?raw';
import { record } from '../autograd/record';
import { tensor } from '../creation';
import { runtime } from '../runtime/device';
import { DTypeError, kindOf, ShapeError } from '../runtime/errors';
import { Params } from '../kernels/params';
import { tidy } from '../scope';
import { empty, formatShape, Tensor } from '../tensor';
import { mul, sub } from './elementwise';
import { mean, reduceTile } from './reduce';
import { rowKernel } from '../kernels/rows';
import { checkDType, sameShape, WG } from './util';

const forwardKernel = () => rowKernel('crossEntropy', crossEntropyWGSL, ['read', 'read', 'write', 'write', 'write'], 'forward');
const backwardKernel = () => rowKernel('crossEntropy.backward', crossEntropyWGSL, ['read', 'read', 'read', 'read', 'write'], 'backward');

/**
 * Mean over rows of −log softmax(logits)[label]: logits [N, K] float32, labels [N] as an int32
 * tensor or an Int32Array. A label outside [0, K) is an error: at once for an Int32Array, at the
 * next readback for a GPU tensor (only the GPU sees its values).
 */
export function crossEntropy(logits: Tensor, labels: Tensor | Int32Array): Tensor {
  checkDType('crossEntropy', logits, 'float32', 'logits');
  if (logits.ndim !== 2) {
    throw new ShapeError(`crossEntropy: logits must be [N, K], got ${formatShape(logits.shape)}`);
  }
  if (!(labels instanceof Int32Array) && !(labels instanceof Tensor)) {
    const convertible = Array.isArray(labels) || ArrayBuffer.isView(labels);
    throw new DTypeError(
      `crossEntropy: labels must be an int32 tensor or an Int32Array of class indices, got ${kindOf(labels)}` +
        (convertible ? ' (Int32Array.from(labels) converts them)' : ''),
    );
  }
  const [n, k] = logits.shape as [number, number];
  if (n === 0 || k === 0) {
    throw new ShapeError(`crossEntropy: logits ${formatShape(logits.shape)} have no ${n === 0 ? 'rows to average over' : 'classes'}`);
  }
  const labelTensor = labels instanceof Int32Array ? uploadLabels(labels, n, k) : checkLabels(labels, logits);

  const rt = runtime();
  const check = rt.executor.deviceAssert(
    `crossEntropy: a label is out of range for logits ${formatShape(logits.shape)} (labels must be in [0, ${k - 1}])`,
    (m) => new ShapeError(m),
  );
  const losses = empty([n], 'float32', 'crossEntropy');
  const lse = empty([n], 'float32', 'crossEntropy');
  const [rowStride, colStride] = logits.strides as [number, number];
  const lanesFast = colStride <= rowStride;
  const { tx, lanes } = reduceTile(n, k, lanesFast);
  const groups = Math.ceil(n / tx);
  rt.executor.dispatch(forwardKernel(), {
    constants: { WG: tx * lanes, TX: tx, LANES_FAST: lanesFast },
    buffers: [logits.buffer('crossEntropy'), labelTensor.buffer('crossEntropy'), losses.buffer(), lse.buffer(), check.buffer],
    params: ceParams(logits, labelTensor, groups, check.code, 0),
    workgroups: groups,
  });
  const out = mean(losses);
  losses.dispose();
  const result = record(
    'crossEntropy',
    out,
    [logits],
    (g, [x, l, s]) => {
      const dx = empty([n, k], 'float32', 'crossEntropy.backward');
      const blocks = Math.ceil((n * k) / WG);
      runtime().executor.dispatch(backwardKernel(), {
        constants: { WG },
        buffers: [x!.buffer(), l!.buffer(), s!.buffer(), g.buffer('crossEntropy.backward'), dx.buffer()],
        params: ceParams(x!, l!, blocks, 0, g.offset),
        workgroups: blocks,
      });
      return [dx];
    },
    [logits, labelTensor, lse],
  );
  lse.dispose();
  if (labelTensor !== labels) labelTensor.dispose();
  return result;
}

/** The Params struct of shaders/cross_entropy.wgsl. */
function ceParams(x: Tensor, labels: Tensor, groups: number, code: number, gOffset: number): Params {
  const [n, k] = x.shape as [number, number];
  return new Params()
    .u32(n, k, groups, code, x.offset, x.strides[0]!, x.strides[1]!, labels.offset, labels.strides[0] ?? 1, gOffset)
    .f32(1 / n);
}

function uploadLabels(labels: Int32Array, n: number, k: number): Tensor {
  if (labels.length !== n) {
    throw new ShapeError(`crossEntropy: ${labels.length} labels for logits [${n}, ${k}] (one label per row needed)`);
  }
  const bad = labels.findIndex((c) => c < 0 || c >= k);
  if (bad >= 0) {
    throw new ShapeError(`crossEntropy: label ${labels[bad]} in row ${bad} is out of range for ${k} classes (logits [${n}, ${k}])`);
  }
  return tensor(labels, [n]);
}

function checkLabels(labels: Tensor, logits: Tensor): Tensor {
  labels.storage('crossEntropy');
  if (labels.dtype !== 'int32') {
    throw new DTypeError(`crossEntropy: labels ${formatShape(labels.shape)} are ${labels.dtype}, expected int32 class indices`);
  }
  if (labels.ndim !== 1 || labels.shape[0] !== logits.shape[0]) {
    throw new ShapeError(
      `crossEntropy: labels ${formatShape(labels.shape)} do not match logits ${formatShape(logits.shape)} (labels must be [N])`,
    );
  }
  return labels;
}

/** mean((a − b)²), differentiable with respect to both. */
export function mse(a: Tensor, b: Tensor): Tensor {
  checkDType('mse', a, 'float32', 'first operand');
  checkDType('mse', b, 'float32', 'second operand');
  if (!sameShape(a.shape, b.shape)) {
    throw new ShapeError(`mse: shapes ${formatShape(a.shape)} and ${formatShape(b.shape)} differ`);
  }
  // The graph keeps what backward needs; the intermediates' own handles can go.
  return tidy(() => {
    const d = sub(a, b);
    return mean(mul(d, d));
  });
}
