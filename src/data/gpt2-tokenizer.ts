// GPT-2's byte-pair encoding (50,257 ids), through js-tiktoken: its `lite` build is the BPE
// algorithm alone, and `js-tiktoken/ranks/gpt2` is the merge table as an ES module inside the
// package (545 KB), so nothing is downloaded at run time and a bundler puts the table in a chunk
// of its own, loaded on the first call. The ids are those of OpenAI's tiktoken and Hugging Face's
// GPT2Tokenizer ("Hello world" → [15496, 995]).
//
// "<|endoftext|>" in the text encodes as its special id 50256 (as nanoGPT's sample.py allows it),
// not as the 7 tokens of its characters. Byte-level BPE has no unknown characters.

import { WebGradError } from '../runtime/errors';
import type { EncodeOptions, Tokenizer, TokenizerJSON } from './tokenizer';

/** GPT-2's end-of-text id, the separator between documents. */
export const GPT2_END_OF_TEXT = 50256;

interface Bpe {
  encode(text: string, allowedSpecial?: string[] | 'all'): number[];
  decode(tokens: number[]): string;
}

let loaded: Promise<Gpt2Tokenizer> | null = null;

/** The GPT-2 tokenizer (the merge table is loaded once per program). */
export function gpt2Tokenizer(): Promise<Tokenizer> {
  loaded ??= (async () => {
    const [{ Tiktoken }, ranks] = await Promise.all([import('js-tiktoken/lite'), import('js-tiktoken/ranks/gpt2')]);
    return new Gpt2Tokenizer(new Tiktoken(ranks.default));
  })().catch((e: unknown) => {
    loaded = null; // a failed load is retried on the next call
    throw e;
  });
  return loaded;
}

class Gpt2Tokenizer implements Tokenizer {
  readonly vocabSize = 50257;
  readonly endOfText = GPT2_END_OF_TEXT;

  constructor(private readonly bpe: Bpe) {}

  encode(text: string, _opts?: EncodeOptions): Int32Array {
    return Int32Array.from(this.bpe.encode(text, 'all'));
  }

  decode(ids: ArrayLike<number>): string {
    const list = Array.from(ids);
    list.forEach((id, i) => {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new WebGradError(`gpt2Tokenizer.decode: id ${id} at position ${i} is not in [0, ${this.vocabSize})`);
      }
    });
    return this.bpe.decode(list);
  }

  toJSON(): TokenizerJSON {
    return { kind: 'gpt2' };
  }
}
