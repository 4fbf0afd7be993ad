// A language-modelling dataset: windows over one stream of token ids. Sample i is the window that
// starts at starts[i]: x = tokens[s, s + T) and y = tokens[s + 1, s + T + 1) (x shifted by one:
// y[t] is the token that follows x[0..t]). Windows share the stream; a dataset costs 4 bytes a
// token plus 4 bytes a window.
//
// Which windows a batch holds is the DataLoader's business: with shuffle it draws them in a
// seeded random order, so the same seed gives the same windows (nanoGPT draws random offsets
// with replacement; a shuffled pass over every offset is the same without replacement).

import { ShapeError, WebGradError } from '../runtime/errors';

export interface TextDataset {
  readonly kind: 'text';
  /** Number of windows. */
  readonly size: number;
  /** The token ids of this split, in text order. */
  readonly tokens: Int32Array;
  /** Where each window starts in `tokens` (every start + contextLength < tokens.length). */
  readonly starts: Uint32Array;
  /** T: tokens per window. */
  readonly contextLength: number;
  /** Every id is in [0, vocabSize). */
  readonly vocabSize: number;
  /** Characters of the split's text per token (1 for a CharTokenizer): turns nats/token into bits/character. */
  readonly charsPerToken: number;
}

/** A batch of windows on the CPU: x and y both [size, T], row-major. */
export interface TextCpuBatch {
  x: Int32Array;
  y: Int32Array;
  size: number;
  /** [size, T], the shape of x and of y. */
  shape: [number, number];
}

export function isTextDataset(d: object): d is TextDataset {
  return (d as { kind?: unknown }).kind === 'text';
}

/**
 * The windows of `tokens` that start every `stride` tokens from 0 (stride 1: every window; stride
 * T: non-overlapping windows, each token a target once). `what` names the split in messages.
 */
export function textWindows(
  tokens: Int32Array,
  opts: { contextLength: number; vocabSize: number; stride?: number; charsPerToken?: number },
  what = 'text',
): TextDataset {
  const { contextLength: t, vocabSize, stride = 1 } = opts;
  if (!Number.isInteger(t) || t < 1) throw new WebGradError(`${what}: contextLength must be a positive integer, got ${t}`);
  if (!Number.isInteger(stride) || stride < 1) throw new WebGradError(`${what}: stride must be a positive integer, got ${stride}`);
  if (tokens.length < t + 1) {
    throw new ShapeError(
      `${what}: ${tokens.length} tokens make no window of contextLength ${t} (a window needs ${t + 1}: ` +
        `${t} inputs and the token after them); use a shorter contextLength or more text`,
    );
  }
  const count = Math.floor((tokens.length - t - 1) / stride) + 1;
  const starts = new Uint32Array(count);
  for (let i = 0; i < count; i++) starts[i] = i * stride;
  return { kind: 'text', size: count, tokens, starts, contextLength: t, vocabSize, charsPerToken: opts.charsPerToken ?? 1 };
}

/** The windows of `dataset` at `indices`, in that order (the token stream is shared, not copied). */
export function textSubset(dataset: TextDataset, indices: ArrayLike<number>): TextDataset {
  const starts = new Uint32Array(indices.length);
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k]!;
    if (!Number.isInteger(i) || i < 0 || i >= dataset.size) {
      throw new ShapeError(`subset: index ${i} (position ${k}) is outside the dataset of ${dataset.size} windows`);
    }
    starts[k] = dataset.starts[i]!;
  }
  return { ...dataset, size: starts.length, starts };
}

/** Bits per character of a loss in nats per token on `dataset` (its text's characters per token). */
export function bitsPerCharacter(natsPerToken: number, dataset: TextDataset): number {
  return natsPerToken / (Math.LN2 * dataset.charsPerToken);
}

/** The windows at `indices` as one batch. */
export function textBatch(dataset: TextDataset, indices: ArrayLike<number>): TextCpuBatch {
  const t = dataset.contextLength;
  const size = indices.length;
  const x = new Int32Array(size * t);
  const y = new Int32Array(size * t);
  for (let k = 0; k < size; k++) {
    const s = dataset.starts[indices[k]!]!;
    x.set(dataset.tokens.subarray(s, s + t), k * t);
    y.set(dataset.tokens.subarray(s + 1, s + t + 1), k * t);
  }
  return { x, y, size, shape: [size, t] };
}
