// A sample, generated a few tokens at a time so that it streams into the page and, while the
// model trains, takes turns with the training steps instead of holding them up. Each piece is one
// wg.models.generate call (with its KV cache) on the last tokens so far, cut so that the piece
// fits the model's context: nothing is recomputed beyond what the window needs.

import * as wg from '../src/index';

/** New tokens in a whole sample. */
export const SAMPLE_TOKENS = 200;
/** New tokens per piece: the page gets text this often, and training waits this long at most. */
export const PIECE_TOKENS = 8;

export class SampleStream {
  private readonly ids: number[];
  private made = 0;
  private piece = 0;

  constructor(
    readonly id: number,
    prompt: Int32Array,
    private readonly temperature: number,
    private readonly seed: number,
  ) {
    this.ids = Array.from(prompt);
  }

  get done(): boolean {
    return this.made >= SAMPLE_TOKENS;
  }

  /** The next piece of text (its tokens decoded). */
  async next(model: wg.models.GPT, tokenizer: wg.data.Tokenizer): Promise<string> {
    const n = Math.min(PIECE_TOKENS, SAMPLE_TOKENS - this.made);
    const keep = Math.max(1, model.contextLength - n);
    const window = this.ids.slice(-keep);
    const out = await wg.models.generate(model, window, { maxNewTokens: n, temperature: this.temperature, seed: this.seed + this.piece++ });
    const fresh = out.subarray(window.length);
    this.ids.push(...fresh);
    this.made += n;
    return tokenizer.decode(fresh);
  }
}
