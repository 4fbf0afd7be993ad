// DataLoader: a dataset cut into batches, in a seeded random order per epoch, optionally
// augmented. Two kinds of dataset, one mechanism (order, epochs, seeds), two ways to fill a batch:
//   images (dataset.ts): x float32 [B, C, H, W] with pixels in [0, 1] (byte / 255; no mean/std
//     normalisation, so a batch can be shown as it is and models see the same range in every
//     demo), y int32 [B] labels; optionally augmented;
//   text windows (text-dataset.ts): x int32 [B, T] token ids, y int32 [B, T] the same shifted by one.
//
// Every pass over the loader (`for (const b of loader)` or `loader.cpuBatches()`) is the next
// epoch. Epoch e's order and augmentation come from a generator seeded by (seed, e) alone, so a
// run is repeatable and can resume at any epoch by setting `loader.epoch`.

import { tensor } from '../creation';
import { globalGenerator, Generator } from '../random';
import { WebGradError } from '../runtime/errors';
import type { Tensor } from '../tensor';
import { affineAboutCentre, augmentRanges, randomAffine, warpAffine, type AugmentOptions } from './augment';
import { shuffleIndices, type AnyDataset, type Dataset } from './dataset';
import { isTextDataset, textBatch, type TextCpuBatch, type TextDataset } from './text-dataset';

export interface DataLoaderOptions {
  batchSize: number;
  /** A new random order every epoch (default false: dataset order). */
  shuffle?: boolean;
  /** Seeds the order and the augmentation (default: drawn from the global generator, see wg.manualSeed). */
  seed?: number;
  /** Leave out the last batch when it would be smaller than batchSize (default false). */
  dropLast?: boolean;
  /** Random rotation/scale/shift of every image (true: ±10°, 0.9–1.1, ±2 px). Default false; images only. */
  augment?: boolean | AugmentOptions;
}

/** A batch of images on the CPU: x is [size, C, H, W] in [0, 1], y the labels. */
export interface CpuBatch {
  x: Float32Array;
  y: Int32Array;
  size: number;
  /** [size, C, H, W]. */
  shape: [number, number, number, number];
}

/** The CPU batches of a dataset of type D: CpuBatch for images, TextCpuBatch for text windows. */
export type CpuBatchOf<D extends AnyDataset> = D extends TextDataset ? TextCpuBatch : CpuBatch;

/**
 * A batch on the GPU: images x float32 [size, C, H, W] in [0, 1] and y int32 [size]; text x and
 * y int32 [size, T]. The caller frees it.
 */
export interface Batch {
  x: Tensor;
  y: Tensor;
  size: number;
  /** Frees x and y. */
  dispose(): void;
}

export class DataLoader<D extends AnyDataset = Dataset> implements Iterable<Batch> {
  readonly dataset: D;
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;
  readonly seed: number;
  /** The augmentation ranges, or null for none. */
  readonly augment: Required<AugmentOptions> | null;
  /** Epochs started so far: the next pass over the loader is epoch number `epoch`. */
  epoch = 0;

  constructor(dataset: D, opts: DataLoaderOptions) {
    const { batchSize } = opts;
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new WebGradError(`DataLoader: batchSize must be a positive integer, got ${batchSize}`);
    }
    if (opts.augment && isTextDataset(dataset)) {
      throw new WebGradError('DataLoader: augment applies to images; this dataset is text windows');
    }
    this.dataset = dataset;
    this.batchSize = batchSize;
    this.shuffle = opts.shuffle ?? false;
    this.dropLast = opts.dropLast ?? false;
    this.augment = opts.augment ? augmentRanges(opts.augment === true ? {} : opts.augment) : null;
    const random = this.shuffle || this.augment !== null;
    this.seed = opts.seed ?? (random ? globalGenerator.nextU32() : 0);
  }

  /** Batches per epoch. */
  get length(): number {
    const n = this.dataset.size / this.batchSize;
    return this.dropLast ? Math.floor(n) : Math.ceil(n);
  }

  /** The next epoch as GPU tensors (one batch is uploaded per step of the iteration). */
  [Symbol.iterator](): IterableIterator<Batch> {
    return this.batches();
  }

  /** The next epoch as GPU tensors, from batch `from` on (resuming mid-epoch: the same batches as a full pass). */
  *batches(from = 0): IterableIterator<Batch> {
    for (const b of this.cpuBatches(from)) {
      const x = tensor(b.x, b.shape); // float32 pixels or int32 token ids, as the array is
      const y = tensor(b.y, isTextDataset(this.dataset) ? b.shape : [b.size], { dtype: 'int32' });
      yield {
        x,
        y,
        size: b.size,
        dispose: () => {
          x.dispose();
          y.dispose();
        },
      };
    }
  }

  /** The next epoch as CPU arrays, without touching the GPU (evaluation, tests, workers), from batch `from` on. */
  *cpuBatches(from = 0): IterableIterator<CpuBatchOf<D>> {
    const gen = new Generator(mixSeed(this.seed, this.epoch++));
    const order = this.order(gen);
    for (let b = 0; b < this.length; b++) {
      const start = b * this.batchSize;
      const size = Math.min(this.batchSize, order.length - start);
      if (isTextDataset(this.dataset)) {
        if (b >= from) yield textBatch(this.dataset, order.subarray(start, start + size)) as CpuBatchOf<D>;
        continue;
      }
      const [c, h, w] = this.dataset.imageShape;
      const pixels = c * h * w;
      if (b < from) {
        // Skipped, but its augmentation is drawn all the same: later batches stay as in a full pass.
        if (this.augment) for (let k = 0; k < size; k++) randomAffine(gen, this.augment);
        continue;
      }
      const x = new Float32Array(size * pixels);
      const y = new Int32Array(size);
      for (let k = 0; k < size; k++) {
        const i = order[start + k]!;
        const src = this.dataset.images.subarray(i * pixels, (i + 1) * pixels);
        const dst = x.subarray(k * pixels, (k + 1) * pixels);
        if (this.augment) {
          const m = affineAboutCentre(randomAffine(gen, this.augment), w, h);
          for (let ch = 0; ch < c; ch++) {
            const plane = ch * h * w;
            warpAffine(src.subarray(plane, plane + h * w), w, h, m, dst.subarray(plane, plane + h * w), 1 / 255);
          }
        } else {
          for (let j = 0; j < pixels; j++) dst[j] = src[j]! / 255;
        }
        y[k] = this.dataset.labels[i]!;
      }
      yield { x, y, size, shape: [size, c, h, w] } satisfies CpuBatch as CpuBatchOf<D>;
    }
  }

  /** Sample indices in epoch order. */
  private order(gen: Generator): Uint32Array {
    const order = new Uint32Array(this.dataset.size);
    for (let i = 0; i < order.length; i++) order[i] = i;
    return this.shuffle ? shuffleIndices(order, gen) : order;
  }
}

/** One 32-bit seed from (seed, epoch), so that each epoch's generator is unrelated to the others. */
function mixSeed(seed: number, epoch: number): number {
  let h = Math.imul((seed >>> 0) ^ 0x2545f491, 0xcc9e2d51);
  h = Math.imul((h << 15) | (h >>> 17), 0x1b873593) ^ epoch;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
