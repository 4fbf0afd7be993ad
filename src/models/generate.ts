// wg.models.generate(model, promptIds, { maxNewTokens, temperature, topK, seed }): sample tokens
// from a causal language model one at a time, with a key/value cache per block so that each new
// token costs one position's work instead of a pass over the whole sequence.
//
// The prompt goes through the model once (filling the caches); then each step feeds only the
// token sampled last, whose queries attend to every cached position. Every token is predicted from
// the last contextLength tokens at most, exactly as recomputing the whole window would (nanoGPT's
// generate crops the sequence the same way). When the sequence outgrows the context, the window
// moves on by one token per step; the model's positions are learned absolute embeddings, so
// every cached key and value was computed at a position that has now changed: the caches are
// cleared and refilled from the window's tokens (one pass of contextLength positions per token
// from then on, the cost of generating without a cache).
//
// Sampling runs on the CPU over one row of logits read back per token: temperature 0 is greedy
// (the first largest logit); otherwise softmax(logits / temperature), restricted to the topK
// largest logits when given (ties with the k-th kept, as nanoGPT's masking does), drawn with a
// seeded generator — the same seed gives the same text.

import { noGrad } from '../autograd/grad-mode';
import { tensor } from '../creation';
import type { KVCache } from '../nn/attention';
import type { Module } from '../nn/module';
import { narrow } from '../ops/shape';
import { Generator, globalGenerator } from '../random';
import { ShapeError, WebGradError } from '../runtime/errors';
import { tidy } from '../scope';
import type { Tensor } from '../tensor';

/** What generate() needs of a model: a GPT, or any causal language model with KV caches. */
export interface CausalLanguageModel extends Module {
  readonly vocabSize: number;
  readonly contextLength: number;
  /** Empty caches for one sequence, as forward() takes them. */
  newCaches(): KVCache[];
  /** Logits [B, T, vocabSize] for ids [B, T]; with caches, positions follow the cached ones. */
  forward(ids: Tensor, call?: { caches?: KVCache[] }): Tensor;
}

export interface GenerateOptions {
  /** Tokens to add after the prompt. */
  maxNewTokens: number;
  /** Softmax temperature (default 1); 0 picks the most likely token every time. */
  temperature?: number;
  /** Sample only among the k most likely tokens (default: all). */
  topK?: number;
  /** Seed of the sampling (default: drawn from the global generator, so wg.manualSeed repeats it). */
  seed?: number;
}

/** The prompt followed by maxNewTokens sampled tokens. The model runs in eval mode (no dropout) and is put back as it was. */
export async function generate(model: CausalLanguageModel, promptIds: ArrayLike<number>, opts: GenerateOptions): Promise<Int32Array> {
  const { maxNewTokens, temperature, topK, rng } = checkOptions(model, promptIds, opts);
  const context = model.contextLength;
  const out = Array.from(promptIds);
  const caches = model.newCaches();
  const wasTraining = model.training;
  model.eval();
  // The tokens out[start, start + cached) are in the caches.
  let start = 0;
  let cached = 0;
  try {
    for (let step = 0; step < maxNewTokens; step++) {
      const window = Math.max(0, out.length - context);
      if (window !== start) {
        // The window moved: cached keys and values belong to other positions now.
        for (const c of caches) c.reset();
        start = window;
        cached = 0;
      }
      const feed = out.slice(start + cached);
      const last = noGrad(() =>
        tidy(() => {
          const logits = model.forward(tensor(Int32Array.from(feed), [1, feed.length], { dtype: 'int32' }), { caches });
          return narrow(logits, 1, feed.length - 1, 1).contiguous();
        }),
      );
      cached = out.length - start;
      let row: Float32Array;
      try {
        row = (await last.toArray()) as Float32Array;
      } finally {
        last.dispose();
      }
      out.push(sample(row, temperature, topK, rng, step));
    }
  } finally {
    for (const c of caches) c.dispose();
    model.train(wasTraining);
  }
  return Int32Array.from(out);
}

/** One token id from a row of logits. */
function sample(logits: Float32Array, temperature: number, topK: number, rng: Generator, step: number): number {
  let best = 0;
  for (let i = 0; i < logits.length; i++) {
    if (Number.isNaN(logits[i])) throw new WebGradError(`generate: the model's logits for new token ${step + 1} hold NaN`);
    if (logits[i]! > logits[best]!) best = i;
  }
  if (temperature === 0) return best;
  // Keep the topK largest (and any equal to the k-th), as a probability distribution.
  const threshold = topK < logits.length ? [...logits].sort((a, b) => b - a)[topK - 1]! : -Infinity;
  const max = logits[best]!;
  const weights = new Float64Array(logits.length);
  let total = 0;
  for (let i = 0; i < logits.length; i++) {
    const w = logits[i]! >= threshold ? Math.exp((logits[i]! - max) / temperature) : 0;
    weights[i] = w;
    total += w;
  }
  let u = rng.uniform() * total;
  for (let i = 0; i < weights.length; i++) {
    u -= weights[i]!;
    if (u < 0) return i;
  }
  return best; // rounding left u a hair above 0
}

function checkOptions(
  model: CausalLanguageModel,
  promptIds: ArrayLike<number>,
  opts: GenerateOptions,
): { maxNewTokens: number; temperature: number; topK: number; rng: Generator } {
  const op = 'generate';
  if (!model || typeof model.newCaches !== 'function' || !Number.isInteger(model.contextLength)) {
    throw new WebGradError(`${op}: expected a causal language model with KV caches (wg.models.gpt)`);
  }
  const v = model.vocabSize;
  if (promptIds === null || typeof promptIds !== 'object' || typeof promptIds.length !== 'number' || promptIds.length === 0) {
    throw new ShapeError(`${op}: the prompt must be a non-empty list of token ids (tokenizer.encode(text))`);
  }
  for (let i = 0; i < promptIds.length; i++) {
    const id = promptIds[i]!;
    if (!Number.isInteger(id) || id < 0 || id >= v) throw new ShapeError(`${op}: prompt token ${i} is ${id}, not an id in [0, ${v - 1}]`);
  }
  const { maxNewTokens, temperature = 1, topK = v, seed } = opts ?? ({} as GenerateOptions);
  if (!Number.isSafeInteger(maxNewTokens) || maxNewTokens < 0) throw new WebGradError(`${op}: maxNewTokens must be a non-negative integer, got ${String(maxNewTokens)}`);
  if (typeof temperature !== 'number' || !(temperature >= 0) || !Number.isFinite(temperature)) {
    throw new WebGradError(`${op}: temperature must be a finite number ≥ 0, got ${String(temperature)}`);
  }
  if (!Number.isSafeInteger(topK) || topK < 1) throw new WebGradError(`${op}: topK must be a positive integer, got ${String(topK)}`);
  if (seed !== undefined && !Number.isSafeInteger(seed)) throw new WebGradError(`${op}: seed must be an integer, got ${String(seed)}`);
  return { maxNewTokens, temperature, topK: Math.min(topK, v), rng: new Generator(seed ?? globalGenerator.nextU32()) };
}
