// Losses: crossEntropy (fused: log-softmax, pick, label smoothing and ignored rows in one kernel,
// then the mean over the rows that count; backward in one kernel) and mse.

import crossEntropyWGSL from '../../shaders/cross_entropy.wgsl?raw';
import { record } from '../autograd/record';
import { checkDType, sameShape } from '../checks';
import { contiguousCopy, tensor } from '../creation';
import { WG } from '../kernels/layout';
import { launch } from '../kernels/launch';
import { rowKernel } from '../kernels/rows';
import { inBlocks } from '../kernels/segments';
import type { View } from '../kernels/view';
import { runtime } from '../runtime/device';
import { DTypeError, kindOf, ShapeError } from '../runtime/errors';
import { tidy } from '../scope';
import { empty, formatShape, Tensor } from '../tensor';
import { mul, sub } from './elementwise';
import { runBinary } from './pointwise';
import { mean, reduceTile, sum } from './reduce';

const forwardKernel = () =>
  rowKernel('crossEntropy', crossEntropyWGSL, 'forward', { x: 'read', labels: 'read', loss: 'write', lse: 'write', status: 'write' }, 'cross_entropy_forward');
const backwardKernel = () =>
  rowKernel('crossEntropy.backward', crossEntropyWGSL, 'backward', {
    x: 'read', labels: 'read', lse: 'read', g: 'read', totals: 'read', dx: 'write',
  }, 'cross_entropy_backward');

export interface CrossEntropyOptions {
  /** Rows with this label do not count: no loss, no gradient, not in the mean (default −100, as PyTorch). */
  ignoreIndex?: number;
  /** ε in [0, 1]: the target is (1 − ε)·onehot + ε/K (default 0). */
  labelSmoothing?: number;
  /** 'mean' (default): over the rows that count; 'sum': their sum (0 when none counts), as PyTorch's reduction. */
  reduction?: 'mean' | 'sum';
}

/**
 * Mean over the rows that count (those whose label is not `ignoreIndex`) of
 * −Σ target·log softmax(logits), as PyTorch's F.cross_entropy: logits [N, K] float32, labels [N]
 * as an int32 tensor or an Int32Array; the target is the label's one-hot vector, smoothed by
 * `labelSmoothing`. When every row is ignored the mean is NaN (0/0), as in PyTorch. A label
 * outside [0, K) that is not ignored is an error: at once for an Int32Array, at the next readback
 * for a GPU tensor (only the GPU sees its values).
 */
export function crossEntropy(logits: Tensor, labels: Tensor | Int32Array, opts: CrossEntropyOptions = {}): Tensor {
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
  const ignore = opts.ignoreIndex ?? -100;
  const smoothing = opts.labelSmoothing ?? 0;
  const reduction = opts.reduction ?? 'mean';
  if (reduction !== 'mean' && reduction !== 'sum') throw new ShapeError(`crossEntropy: reduction must be 'mean' or 'sum', got ${String(reduction)}`);
  if (!Number.isInteger(ignore) || ignore < -(2 ** 31) || ignore >= 2 ** 31) {
    throw new ShapeError(`crossEntropy: ignoreIndex must be an int32, got ${ignore}`);
  }
  if (!(smoothing >= 0 && smoothing <= 1)) throw new ShapeError(`crossEntropy: labelSmoothing must be in [0, 1], got ${smoothing}`);
  return tidy(() => {
    const labelTensor = labels instanceof Int32Array ? uploadLabels(labels, n, k, ignore) : checkLabels(labels, logits);
    const check = runtime().executor.deviceAssert(
      `crossEntropy: a label is out of range for logits ${formatShape(logits.shape)} (labels must be in [0, ${k - 1}]` +
        ` or the ignored ${ignore})`,
      (m) => new ShapeError(m),
    );
    // Per row: the loss and whether the row counts (its weight, 0 or 1).
    const stats = empty([n, 2], 'float32', 'crossEntropy');
    const lse = empty([n], 'float32', 'crossEntropy');
    const lanesFast = logits.strides[1]! <= logits.strides[0]!;
    const optionParams = { ignore, smoothing };
    // Rows in blocks that bind (one dispatch when everything does).
    inBlocks('crossEntropy', 'row', n, [[logits, 0], [labelTensor, 0], [stats, 0], [lse, 0]], ([x, lab, st, l], _, rows) => {
      const { tx, lanes } = reduceTile(rows, k, lanesFast);
      const groups = Math.ceil(rows / tx);
      launch(forwardKernel(), {
        bind: { x: x!, labels: lab!, loss: st!, lse: l!, status: check.buffer },
        params: { ...ceParams(x!, lab!), ...optionParams, groups, code: check.code },
        constants: { WG: tx * lanes, TX: tx, LANES_FAST: lanesFast, SMOOTH: smoothing > 0 },
        workgroups: groups,
      });
    });
    // [Σ loss, rows counted], and their quotient (or the sum alone).
    const totals = sum(stats, 0);
    const lossSum = totals.view([], [], totals.offset);
    const loss = reduction === 'sum' ? contiguousCopy(lossSum, 'crossEntropy') : runBinary('div', lossSum, totals.view([], [], totals.offset + 1));
    return record(
      'crossEntropy',
      loss,
      [logits],
      (g, [x, lab, s, t]) => {
        const dx = empty([n, k], 'float32', 'crossEntropy.backward');
        inBlocks('crossEntropy.backward', 'row', n, [[x!, 0], [lab!, 0], [s!, 0], [dx, 0]], ([xb, lb, sb, db], _, rows) => {
          const groups = Math.ceil((rows * k) / WG);
          launch(backwardKernel(), {
            bind: { x: xb!, labels: lb!, lse: sb!, g, totals: t!, dx: db! },
            params: { ...ceParams(xb!, lb!), ...optionParams, groups },
            constants: { WG, MEAN: reduction === 'mean' },
            workgroups: groups,
          });
        });
        return [dx];
      },
      [logits, labelTensor, lse, totals],
    );
  });
}

/** The layout fields of shaders/cross_entropy.wgsl's Params for a block of rows. */
function ceParams(x: View, labels: View) {
  return {
    n: x.shape[0]!,
    k: x.shape[1]!,
    x_row: x.strides[0]!,
    x_col: x.strides[1]!,
    labels_stride: labels.strides[0] ?? 1,
  };
}

function uploadLabels(labels: Int32Array, n: number, k: number, ignore: number): Tensor {
  if (labels.length !== n) {
    throw new ShapeError(`crossEntropy: ${labels.length} labels for logits [${n}, ${k}] (one label per row needed)`);
  }
  const bad = labels.findIndex((c) => c !== ignore && (c < 0 || c >= k));
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
