// Tokenizers: text ↔ int32 token ids. A CharTokenizer gives every distinct character of a text
// its own id (nanoGPT's shakespeare_char); the GPT-2 byte-pair encoding is in gpt2-tokenizer.ts.
// Both serialise to a small JSON object (toJSON), which checkpoints keep in their metadata so that
// a loaded model decodes its samples with the vocabulary it was trained on.
//
// Characters are Unicode code points (as Python iterates a str): "é" is one character, an emoji
// is one character although it takes two UTF-16 units. Ids are given in code-point order, as
// Python's sorted(set(text)) does, so a text gets the same ids here as in nanoGPT's prepare.py.
//
// Unknown characters: encode() throws a WebGradError that names the character, its code point and
// its position (as nanoGPT's stoi[c] raises KeyError); `{ unknown: 'skip' }` drops them instead,
// for text typed by a person (a prompt). There is no <unk> id: it would change vocabSize and the
// ids nanoGPT users expect.

import { LimitError, WebGradError } from '../runtime/errors';
import { gpt2Tokenizer } from './gpt2-tokenizer';

/** What every tokenizer offers (CharTokenizer and the GPT-2 BPE). */
export interface Tokenizer {
  /** Number of ids: every id is in [0, vocabSize). */
  readonly vocabSize: number;
  encode(text: string, opts?: EncodeOptions): Int32Array;
  /** The text of `ids`; an id outside [0, vocabSize) is an error. */
  decode(ids: ArrayLike<number>): string;
  /** A JSON-able description from which tokenizerFromJSON rebuilds the same tokenizer. */
  toJSON(): TokenizerJSON;
}

export interface EncodeOptions {
  /** A character outside the vocabulary: 'error' (default) throws, 'skip' leaves it out. */
  unknown?: 'error' | 'skip';
}

export type TokenizerJSON = CharTokenizerJSON | { kind: 'gpt2' };

export interface CharTokenizerJSON {
  kind: 'char';
  /** The character of each id, in id order (one code point each). */
  chars: string[];
}

/** No text has more distinct characters than Unicode has code points. */
const MAX_CODE_POINTS = 0x110000;

export class CharTokenizer implements Tokenizer {
  /** The character of each id. */
  readonly chars: readonly string[];
  private readonly ids: Map<string, number>;

  /** A tokenizer for exactly these characters, id i for chars[i] (each one code point, no repeats). */
  constructor(chars: readonly string[]) {
    if (chars.length > MAX_CODE_POINTS) {
      throw new LimitError(`CharTokenizer: ${chars.length} characters, more than Unicode has (${MAX_CODE_POINTS})`);
    }
    this.ids = new Map();
    chars.forEach((c, i) => {
      if (typeof c !== 'string' || [...c].length !== 1) {
        throw new WebGradError(`CharTokenizer: entry ${i} of the vocabulary is ${JSON.stringify(c)}, not one character`);
      }
      if (this.ids.has(c)) throw new WebGradError(`CharTokenizer: ${describe(c)} appears twice in the vocabulary (ids ${this.ids.get(c)} and ${i})`);
      this.ids.set(c, i);
    });
    this.chars = Object.freeze([...chars]);
  }

  /** The tokenizer of every distinct character of `text`, in code-point order. */
  static fromText(text: string): CharTokenizer {
    const seen = new Set<string>(text); // iterates code points
    const chars = [...seen].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!);
    return new CharTokenizer(chars);
  }

  static fromJSON(json: unknown): CharTokenizer {
    const j = json as Partial<CharTokenizerJSON> | null;
    if (!j || typeof j !== 'object' || j.kind !== 'char' || !Array.isArray(j.chars)) {
      throw new WebGradError(`CharTokenizer.fromJSON: expected { kind: 'char', chars: [...] }, got ${preview(json)}`);
    }
    return new CharTokenizer(j.chars);
  }

  get vocabSize(): number {
    return this.chars.length;
  }

  encode(text: string, { unknown = 'error' }: EncodeOptions = {}): Int32Array {
    const out = new Int32Array(text.length); // code points ≤ UTF-16 units
    let n = 0;
    let position = 0;
    for (const c of text) {
      const id = this.ids.get(c);
      if (id !== undefined) out[n++] = id;
      else if (unknown !== 'skip') {
        throw new WebGradError(
          `CharTokenizer.encode: ${describe(c)} at character ${position} is not in the vocabulary of ${this.vocabSize} characters ` +
            `(pass { unknown: 'skip' } to leave such characters out)`,
        );
      }
      position++;
    }
    return out.slice(0, n);
  }

  decode(ids: ArrayLike<number>): string {
    let s = '';
    for (let i = 0; i < ids.length; i++) {
      const c = this.chars[ids[i]!];
      if (c === undefined) {
        throw new WebGradError(`CharTokenizer.decode: id ${ids[i]} at position ${i} is not in [0, ${this.vocabSize})`);
      }
      s += c;
    }
    return s;
  }

  toJSON(): CharTokenizerJSON {
    return { kind: 'char', chars: [...this.chars] };
  }
}

/** The tokenizer a toJSON() object describes (async: the GPT-2 ranks are loaded on first use). */
export async function tokenizerFromJSON(json: unknown): Promise<Tokenizer> {
  const kind = (json as { kind?: unknown } | null)?.kind;
  if (kind === 'char') return CharTokenizer.fromJSON(json);
  if (kind === 'gpt2') return gpt2Tokenizer();
  throw new WebGradError(`tokenizerFromJSON: unknown tokenizer ${preview(json)} (expected kind 'char' or 'gpt2')`);
}

/** "a" (U+0061): a character as a message shows it, visible even when it is a space or a control. */
function describe(c: string): string {
  return `${JSON.stringify(c)} (U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')})`;
}

function preview(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
