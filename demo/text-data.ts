// The texts the Text mode trains on: Moby Dick and first names (shipped with webgrad, loaded on
// first use), or what the person pasted. Each is split as wg.data.text splits it (the last tenth
// held out), with the first HELD_OUT_TOKENS held-out tokens as the quick held-out check and a
// count-based bigram model's loss on them as the line to beat.

import * as wg from '../src/index';
import type { TextInfo, TextSource } from './text-protocol';

/** Held-out tokens scored at each check while training (non-overlapping windows over them). */
export const HELD_OUT_TOKENS = 4096;
/** Pasted text beyond this is refused (the page holds it, and keeps it in IndexedDB). */
export const MAX_PASTED_CHARS = 2_000_000;

export interface TextData {
  info: TextInfo;
  train: wg.data.TextDataset;
  /** The first HELD_OUT_TOKENS of the held-out text. */
  heldOut: wg.data.TextDataset;
  tokenizer: wg.data.Tokenizer;
  /** The pasted text itself (kept with the model so a reload can go on training); null for a shipped corpus. */
  pasted: string | null;
}

const TITLES: Record<Exclude<TextSource, 'pasted'>, string> = { 'moby-dick': 'Moby Dick', names: 'first names' };

/**
 * `source` split into windows of `context` tokens. With `tokenizer` (a loaded model's), the text
 * is encoded with it, and a character it lacks is an error naming it.
 */
export async function loadText(source: TextSource, pasted: string, context: number, tokenizer?: wg.data.Tokenizer): Promise<TextData> {
  let text: string;
  if (source === 'pasted') {
    if (pasted.length > MAX_PASTED_CHARS) {
      throw new wg.LimitError(`the pasted text has ${pasted.length.toLocaleString('en')} characters; the page takes up to ${MAX_PASTED_CHARS.toLocaleString('en')}`);
    }
    if (pasted.trim() === '') throw new wg.WebGradError('paste a text to train on first (a few thousand characters or more)');
    text = pasted;
  } else text = await wg.data.corpus(source);
  let splits: wg.data.TextSplits;
  try {
    splits = wg.data.textFromString(text, { contextLength: context, ...(tokenizer ? { tokenizer } : {}) });
  } catch (e) {
    if (source === 'pasted' && e instanceof wg.LimitError) {
      throw new wg.LimitError(`the pasted text is too short for this model (${text.length} characters): paste more, or choose a smaller model`);
    }
    throw e;
  }
  const { train, test } = splits;
  const heldOut =
    test.tokens.length <= HELD_OUT_TOKENS + 1
      ? test
      : wg.data.textWindows(test.tokens.subarray(0, HELD_OUT_TOKENS + 1), { contextLength: context, vocabSize: test.vocabSize, stride: context, charsPerToken: test.charsPerToken });
  const bigram = wg.data.bigramBaseline(train, heldOut).natsPerToken;
  const lines = source === 'names' ? text.split('\n').filter((l) => l !== '').length : 0;
  const chars = splits.tokenizer.toJSON().kind === 'char';
  const vocab = splits.tokenizer.vocabSize.toLocaleString('en');
  return {
    info: {
      source,
      unit: chars ? 'character' : 'token',
      vocabulary: chars ? `${vocab} distinct characters` : `GPT-2's ${vocab} tokens`,
      title: source === 'pasted' ? 'your text' : source === 'names' ? `${lines.toLocaleString('en')} ${TITLES.names}` : TITLES[source],
      trainTokens: train.tokens.length,
      heldOutTokens: test.tokens.length,
      vocabSize: splits.tokenizer.vocabSize,
      bigram,
      defaultPrompt: defaultPrompt(source, splits.tokenizer, test.tokens, context),
    },
    train,
    heldOut,
    tokenizer: splits.tokenizer,
    pasted: source === 'pasted' ? text : null,
  };
}

/** Names: a new line (the start of a name). Otherwise the first words of the held-out text, as the CLI's samples. */
function defaultPrompt(source: TextSource, tokenizer: wg.data.Tokenizer, heldOut: Int32Array, context: number): string {
  if (source === 'names') return '\n';
  return tokenizer.decode(heldOut.subarray(0, Math.min(16, Math.floor(context / 2))));
}
