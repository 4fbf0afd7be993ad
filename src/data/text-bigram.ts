// The count-based bigram baseline: the loss a language model must beat to have learnt more than
// which token tends to follow which. Fitted on the training split's token stream, with add-α
// (Laplace) smoothing so that a pair never seen in training keeps some probability:
//
//   P(b | a) = (N(a, b) + α) / (N(a) + α·V)       N(a, b): times b follows a in the training text
//                                                 N(a) = Σ_b N(a, b), V: vocabSize, α = 1 by default
//
// The held-out loss is the mean of −ln P(next | previous) over the held-out text: each of its
// tokens but the first, given the one before it (as a model's held-out windows, which start at the
// held-out text, never see the training text either). Counts are kept in a map of the pairs that
// occur, so GPT-2's 50,257 ids cost no V×V table.

import { WebGradError } from '../runtime/errors';
import { bitsPerCharacter, type TextDataset } from './text-dataset';

export interface BigramOptions {
  /** α of add-α smoothing (default 1, add-one; must be > 0, or a pair unseen in training costs infinite loss). */
  smoothing?: number;
}

export interface BigramResult {
  /** Mean −ln P(next | previous) over the held-out tokens. */
  natsPerToken: number;
  /** The same loss in bits per character of held-out text. */
  bitsPerChar: number;
  /** Held-out tokens predicted (the held-out split's tokens minus one). */
  predictions: number;
}

export function bigramBaseline(train: TextDataset, test: TextDataset, { smoothing = 1 }: BigramOptions = {}): BigramResult {
  const what = 'bigramBaseline';
  if (!(smoothing > 0 && Number.isFinite(smoothing))) {
    throw new WebGradError(`${what}: smoothing must be a positive number (add-α), got ${smoothing}`);
  }
  if (train.vocabSize !== test.vocabSize) {
    throw new WebGradError(`${what}: the splits have different vocabularies (${train.vocabSize} and ${test.vocabSize} ids)`);
  }
  const v = train.vocabSize;
  const pairs = new Map<number, number>();
  const after = new Float64Array(v); // N(a)
  const tr = train.tokens;
  for (let i = 0; i + 1 < tr.length; i++) {
    const a = checkId(tr[i]!, i, v, 'training');
    const key = a * v + checkId(tr[i + 1]!, i + 1, v, 'training');
    pairs.set(key, (pairs.get(key) ?? 0) + 1);
    after[a]!++;
  }
  const te = test.tokens;
  let nats = 0;
  for (let i = 0; i + 1 < te.length; i++) {
    const a = checkId(te[i]!, i, v, 'held-out');
    const b = checkId(te[i + 1]!, i + 1, v, 'held-out');
    nats -= Math.log(((pairs.get(a * v + b) ?? 0) + smoothing) / (after[a]! + smoothing * v));
  }
  const predictions = Math.max(0, te.length - 1);
  const natsPerToken = predictions ? nats / predictions : NaN;
  return { natsPerToken, bitsPerChar: bitsPerCharacter(natsPerToken, test), predictions };
}

function checkId(id: number, i: number, v: number, split: string): number {
  if (!(id >= 0 && id < v)) throw new WebGradError(`bigramBaseline: token ${id} at position ${i} of the ${split} split is not in [0, ${v})`);
  return id;
}
