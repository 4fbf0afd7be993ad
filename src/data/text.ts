// wg.data.text(name, …) and wg.data.textFromString(text, …): a text cut into a training and a
// held-out split, tokenized, as datasets of windows (text-dataset.ts).
//
// The split is by position: the first (1 − testFraction) of the text trains, the rest is held
// out, so held-out text is a contiguous part the model never saw (a random split of overlapping
// windows would leak nearly every held-out window into training). Each part is encoded on its
// own, so no token straddles the cut.
//   train: every window (stride 1); a shuffling DataLoader draws them in a seeded random order.
//   test:  non-overlapping windows (stride contextLength) from the start of the held-out text:
//          every held-out token but the first is a target once, so a pass over them measures
//          the loss on the whole held-out text at a 1/contextLength of the cost.
// The default tokenizer is a CharTokenizer of the whole text's characters (train and held-out,
// as nanoGPT's prepare.py builds its vocabulary), so held-out text has no unknown characters.

import { LimitError, WebGradError } from '../runtime/errors';
import { corpus, type CorpusName } from './text-corpora';
import { textWindows, type TextDataset } from './text-dataset';
import { CharTokenizer, type Tokenizer } from './tokenizer';

export interface TextOptions {
  /** T: tokens per window, the model's context. */
  contextLength: number;
  /** Share of the text held out, at its end (default 0.1; strictly between 0 and 1). */
  testFraction?: number;
  /** Default: a CharTokenizer of the text's characters (e.g. pass `await wg.data.gpt2Tokenizer()`). */
  tokenizer?: Tokenizer;
}

export interface TextSplits {
  train: TextDataset;
  test: TextDataset;
  tokenizer: Tokenizer;
}

/** A shipped corpus ('moby-dick' or 'names', see text-corpora.ts) split and tokenized; async: the text is loaded on first use. */
export async function text(name: CorpusName, opts: TextOptions): Promise<TextSplits> {
  checkOptions('wg.data.text', opts);
  return textFromString(await corpus(name), opts);
}

/** The user's own text, split and tokenized as wg.data.text does. */
export function textFromString(str: string, opts: TextOptions): TextSplits {
  const what = 'wg.data.textFromString';
  if (typeof str !== 'string') throw new WebGradError(`${what}: expected a string, got ${typeof str}`);
  const { contextLength, testFraction } = checkOptions(what, opts);
  const tokenizer = opts.tokenizer ?? CharTokenizer.fromText(str);
  let cut = Math.round(str.length * (1 - testFraction));
  if (isLowSurrogate(str.charCodeAt(cut)) && isHighSurrogate(str.charCodeAt(cut - 1))) cut++; // keep a character whole
  const split = (part: string, stride: number, name: string) => {
    const tokens = tokenizer.encode(part);
    if (tokens.length < contextLength + 1) {
      throw new LimitError(
        `${what}: the ${name} split has ${tokens.length} tokens (${part.length} characters of ${str.length}), ` +
          `too few for one window of contextLength ${contextLength} (${contextLength + 1} tokens); ` +
          `use a longer text, a shorter contextLength or another testFraction`,
      );
    }
    return textWindows(
      tokens,
      { contextLength, vocabSize: tokenizer.vocabSize, stride, charsPerToken: codePoints(part) / tokens.length },
      `${what} (${name} split)`,
    );
  };
  return { train: split(str.slice(0, cut), 1, 'training'), test: split(str.slice(cut), contextLength, 'held-out'), tokenizer };
}

function checkOptions(what: string, opts: TextOptions): { contextLength: number; testFraction: number } {
  const contextLength = opts?.contextLength;
  const testFraction = opts?.testFraction ?? 0.1;
  if (!Number.isInteger(contextLength) || contextLength < 1) {
    throw new WebGradError(`${what}: contextLength must be a positive integer, got ${contextLength}`);
  }
  if (typeof testFraction !== 'number' || !(testFraction > 0 && testFraction < 1)) {
    throw new WebGradError(`${what}: testFraction must be strictly between 0 and 1, got ${testFraction}`);
  }
  return { contextLength, testFraction };
}

function codePoints(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) if (!isLowSurrogate(s.charCodeAt(i)) || !isHighSurrogate(s.charCodeAt(i - 1))) n++;
  return n;
}

function isHighSurrogate(u: number): boolean {
  return u >= 0xd800 && u <= 0xdbff;
}

function isLowSurrogate(u: number): boolean {
  return u >= 0xdc00 && u <= 0xdfff;
}
