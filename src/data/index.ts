// wg.data: datasets (MNIST ships with webgrad), batching and augmentation.

export { mnist, mnistSplit, type MnistSplits, type MnistOptions } from './mnist';
export { makeDataset, subset, type Dataset } from './dataset';
export { DataLoader, type DataLoaderOptions, type Batch, type CpuBatch } from './loader';
export {
  affineAboutCentre,
  augmentRanges,
  randomAffine,
  warpAffine,
  type AffineParams,
  type AugmentOptions,
} from './augment';
