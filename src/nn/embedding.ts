// Embedding: a table of `numEmbeddings` vectors of `embeddingDim` floats, looked up by int32 ids.
// The table starts N(0, 1) as in PyTorch, drawn from the global seeded generator (wg.manualSeed).

import { embedding } from '../ops/indexing';
import { ShapeError } from '../runtime/errors';
import type { Tensor } from '../tensor';
import { normal } from './init';
import { Module, parameter } from './module';

/** forward(ids) with int32 ids of any shape → [...ids.shape, embeddingDim]: the rows the ids pick. */
export class Embedding extends Module {
  weight: Tensor;

  constructor(readonly numEmbeddings: number, readonly embeddingDim: number) {
    super();
    for (const [what, n] of [['numEmbeddings', numEmbeddings], ['embeddingDim', embeddingDim]] as const) {
      if (!Number.isInteger(n) || n < 1) throw new ShapeError(`Embedding(${numEmbeddings}, ${embeddingDim}): ${what} must be a positive integer`);
    }
    this.weight = parameter(normal([numEmbeddings, embeddingDim], 1));
  }

  forward(ids: Tensor): Tensor {
    return embedding(ids, this.weight);
  }
}
