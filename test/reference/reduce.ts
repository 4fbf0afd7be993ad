// Float64 CPU reference for reductions, softmax, cross-entropy and mse. Plain loops over
// row-major data, written for clarity, not speed.

export interface Dense {
  data: Float64Array;
  shape: number[];
}

function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let n = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = n;
    n *= shape[i]!;
  }
  return s;
}

function coords(i: number, shape: readonly number[]): number[] {
  const c = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    c[d] = i % shape[d]!;
    i = Math.floor(i / shape[d]!);
  }
  return c;
}

/** The axes a reduction covers: all when omitted, negatives counted from the end. */
export function normAxes(ndim: number, axis?: number | number[]): number[] {
  if (axis === undefined) return [...Array(ndim).keys()];
  return (typeof axis === 'number' ? [axis] : axis).map((a) => (a < 0 ? a + ndim : a));
}

/**
 * Reduce `data` of `shape` over `axes` with `fold` (start value `init`); `finish` maps each
 * folded value and the element count to the result.
 */
function reduce(
  data: ArrayLike<number>,
  shape: readonly number[],
  axes: readonly number[],
  keepdim: boolean,
  init: number,
  fold: (acc: number, x: number) => number,
  finish: (acc: number, n: number) => number = (a) => a,
): Dense {
  const keepShape = shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const outShape = keepdim ? keepShape : shape.filter((_, i) => !axes.includes(i));
  const acc = new Float64Array(size(keepShape)).fill(init);
  const ks = strides(keepShape);
  const n = size(axes.map((a) => shape[a]!));
  for (let i = 0; i < data.length; i++) {
    let o = 0;
    coords(i, shape).forEach((x, d) => {
      if (!axes.includes(d)) o += x * ks[d]!;
    });
    acc[o] = fold(acc[o]!, data[i]!);
  }
  return { data: acc.map((a) => finish(a, n)), shape: outShape };
}

export function sum(data: ArrayLike<number>, shape: readonly number[], axis?: number | number[], keepdim = false): Dense {
  return reduce(data, shape, normAxes(shape.length, axis), keepdim, 0, (a, x) => a + x);
}

export function mean(data: ArrayLike<number>, shape: readonly number[], axis?: number | number[], keepdim = false): Dense {
  return reduce(data, shape, normAxes(shape.length, axis), keepdim, 0, (a, x) => a + x, (a, n) => a / n);
}

export function max(data: ArrayLike<number>, shape: readonly number[], axis?: number | number[], keepdim = false): Dense {
  return reduce(data, shape, normAxes(shape.length, axis), keepdim, -Infinity, Math.max); // NaN propagates
}

/** Index (row-major over the reduced axes) of the first maximum; NaN counts as the maximum. */
export function argmax(data: ArrayLike<number>, shape: readonly number[], axis?: number, keepdim = false): Dense {
  const axes = normAxes(shape.length, axis);
  const best = reduce(data, shape, axes, keepdim, -Infinity, Math.max);
  // Second sweep: the first index whose value equals the output's maximum.
  const found = new Float64Array(best.data.length).fill(-1);
  const keepShape = shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const ks = strides(keepShape);
  const rs = strides(axes.map((a) => shape[a]!));
  for (let i = 0; i < data.length; i++) {
    const c = coords(i, shape);
    let o = 0;
    let r = 0;
    c.forEach((x, d) => {
      if (axes.includes(d)) r += x * rs[axes.indexOf(d)]!;
      else o += x * ks[d]!;
    });
    const v = data[i]!;
    const hit = Number.isNaN(best.data[o]!) ? Number.isNaN(v) : v === best.data[o];
    if (hit && found[o] === -1) found[o] = r;
  }
  return { data: found, shape: best.shape };
}

/** Sum `data` of `shape` down to `target` (NumPy broadcasting in reverse). */
export function sumToShape(data: ArrayLike<number>, shape: readonly number[], target: readonly number[]): Float64Array {
  const lead = shape.length - target.length;
  const axes = shape.map((_, i) => i).filter((i) => i < lead || (target[i - lead] === 1 && shape[i] !== 1));
  return sum(data, shape, axes).data;
}

/** Permute the dimensions of row-major `data` (like NumPy's transpose). */
export function permute(data: ArrayLike<number>, shape: readonly number[], perm: readonly number[]): Dense {
  const outShape = perm.map((p) => shape[p]!);
  const s = strides(shape);
  const out = new Float64Array(data.length);
  for (let i = 0; i < out.length; i++) {
    const c = coords(i, outShape);
    let src = 0;
    c.forEach((x, d) => (src += x * s[perm[d]!]!));
    out[i] = data[src]!;
  }
  return { data: out, shape: outShape };
}

/** Apply `f` to each 1-D slice along `axis` (a row of length K), in place in a copy. */
function alongAxis(data: ArrayLike<number>, shape: readonly number[], axis: number, f: (row: number[]) => number[]): Float64Array {
  const ax = axis < 0 ? axis + shape.length : axis;
  const K = shape[ax]!;
  const step = strides(shape)[ax]!;
  const out = new Float64Array(data.length);
  for (let i = 0; i < data.length; i++) {
    if (coords(i, shape)[ax] !== 0) continue;
    const row = Array.from({ length: K }, (_, k) => data[i + k * step]!);
    f(row).forEach((v, k) => (out[i + k * step] = v));
  }
  return out;
}

function logSumExp(row: number[]): number {
  const m = Math.max(...row);
  return m + Math.log(row.reduce((s, x) => s + Math.exp(x - m), 0));
}

export function softmax(data: ArrayLike<number>, shape: readonly number[], axis = -1): Float64Array {
  return alongAxis(data, shape, axis, (row) => {
    const lse = logSumExp(row);
    return row.map((x) => Math.exp(x - lse));
  });
}

export function logSoftmax(data: ArrayLike<number>, shape: readonly number[], axis = -1): Float64Array {
  return alongAxis(data, shape, axis, (row) => {
    const lse = logSumExp(row);
    return row.map((x) => x - lse);
  });
}

/** mean over rows of logsumexp(logits[n]) − logits[n, label[n]]. */
export function crossEntropy(logits: ArrayLike<number>, N: number, K: number, labels: ArrayLike<number>): number {
  let total = 0;
  for (let n = 0; n < N; n++) {
    const row = Array.from({ length: K }, (_, k) => logits[n * K + k]!);
    total += logSumExp(row) - row[labels[n]!]!;
  }
  return total / N;
}

export function mse(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i]! - b[i]!) ** 2;
  return s / a.length;
}

/**
 * PyTorch's F.cross_entropy(x, labels, ignore_index, label_smoothing) with mean reduction: over the
 * rows whose label is not ignored, (1 − ε)·(lse − x[label]) + ε·(lse − mean(x)); NaN when none count.
 */
export function crossEntropyWith(
  logits: ArrayLike<number>, N: number, K: number, labels: ArrayLike<number>,
  { ignoreIndex = -100, labelSmoothing = 0, reduction = 'mean' }: { ignoreIndex?: number; labelSmoothing?: number; reduction?: 'mean' | 'sum' },
): number {
  let total = 0;
  let counted = 0;
  for (let n = 0; n < N; n++) {
    if (labels[n] === ignoreIndex) continue;
    const row = Array.from({ length: K }, (_, k) => logits[n * K + k]!);
    const lse = logSumExp(row);
    const mean = row.reduce((s, v) => s + v, 0) / K;
    total += (1 - labelSmoothing) * (lse - row[labels[n]!]!) + labelSmoothing * (lse - mean);
    counted++;
  }
  return reduction === 'sum' ? total : total / counted;
}
