// An in-memory image classification dataset: 8-bit pixels and 8-bit labels, on the CPU. Batches
// become float tensors only when a DataLoader asks for them, so a dataset costs one byte a pixel.
// The other kind of dataset, windows over a text's tokens, is in text-dataset.ts; a DataLoader
// and subset() take either.

import type { Generator } from '../random';
import { ShapeError, WebGradError } from '../runtime/errors';
import { isTextDataset, textSubset, type TextDataset } from './text-dataset';

export interface Dataset {
  /** Number of samples. */
  readonly size: number;
  /** `size` images of `imageShape`, one after another, row-major; 0 = background, 255 = full ink. */
  readonly images: Uint8Array;
  /** `size` class labels in [0, numClasses). */
  readonly labels: Uint8Array;
  /** [channels, height, width] of one image. */
  readonly imageShape: readonly [number, number, number];
  readonly numClasses: number;
}

/** Any dataset a DataLoader batches: images and labels, or text windows. */
export type AnyDataset = Dataset | TextDataset;

/** A dataset whose arrays are checked to agree with its shape (the message names what is off). */
export function makeDataset(fields: Omit<Dataset, 'size'>, what = 'dataset'): Dataset {
  const { images, labels, imageShape, numClasses } = fields;
  const pixels = imageShape[0] * imageShape[1] * imageShape[2];
  if (images.length !== labels.length * pixels) {
    throw new ShapeError(
      `${what}: ${images.length} pixels do not make ${labels.length} images of [${imageShape.join(', ')}] ` +
        `(${labels.length * pixels} pixels)`,
    );
  }
  for (let i = 0; i < labels.length; i++) {
    if (labels[i]! >= numClasses) {
      throw new WebGradError(`${what}: label ${labels[i]} of sample ${i} is not below numClasses (${numClasses})`);
    }
  }
  return { size: labels.length, images, labels, imageShape, numClasses };
}

/** The samples of `dataset` at `indices`, in that order (images are copied; text windows share the token stream). */
export function subset<D extends AnyDataset>(dataset: D, indices: ArrayLike<number>): D;
export function subset(dataset: AnyDataset, indices: ArrayLike<number>): AnyDataset {
  if (isTextDataset(dataset)) return textSubset(dataset, indices);
  const [c, h, w] = dataset.imageShape;
  const pixels = c * h * w;
  const images = new Uint8Array(indices.length * pixels);
  const labels = new Uint8Array(indices.length);
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k]!;
    if (!Number.isInteger(i) || i < 0 || i >= dataset.size) {
      throw new ShapeError(`subset: index ${i} (position ${k}) is outside the dataset of ${dataset.size} samples`);
    }
    images.set(dataset.images.subarray(i * pixels, (i + 1) * pixels), k * pixels);
    labels[k] = dataset.labels[i]!;
  }
  return { size: indices.length, images, labels, imageShape: dataset.imageShape, numClasses: dataset.numClasses };
}

/** Shuffles `indices` in place (Fisher–Yates, driven by `gen`) and returns them. */
export function shuffleIndices(indices: Uint32Array, gen: Generator): Uint32Array {
  for (let i = indices.length - 1; i > 0; i--) {
    const j = gen.int(i + 1);
    const t = indices[i]!;
    indices[i] = indices[j]!;
    indices[j] = t;
  }
  return indices;
}
