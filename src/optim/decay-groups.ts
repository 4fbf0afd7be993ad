// decayGroups(model, weightDecay): the two parameter groups of the usual transformer recipe
// (GPT-2, nanoGPT's original configure_optimizers): weight decay on the weight matrices of Linear
// and Conv2d layers, none on biases, normalisation weights and embedding tables. Decaying a bias
// or a LayerNorm gain pulls it towards 0, which nothing in the model asks for; an embedding row
// is decayed only on the steps its token appears in Adam's update, so decay would treat frequent
// and rare tokens unequally. A weight shared by two layers (a GPT's token embedding, tied to
// the output projection) belongs to the first layer that holds it, in module order.

import { Conv2d } from '../nn/conv2d';
import { Linear } from '../nn/linear';
import { Module } from '../nn/module';
import { WebGradError } from '../runtime/errors';
import { Tensor } from '../tensor';
import { checkNumber } from './optimizer';

export interface DecayGroup {
  params: Tensor[];
  weightDecay: number;
}

/**
 * `[{ params: matrices, weightDecay }, { params: the rest, weightDecay: 0 }]` for an optimizer:
 * `new wg.optim.AdamW(wg.optim.decayGroups(model, 0.1), { lr })`. Matrices are the weights of
 * Linear and Conv2d layers; the rest (biases, norms, embeddings, anything else) is not decayed.
 */
export function decayGroups(model: Module, weightDecay: number): [DecayGroup, DecayGroup] {
  if (!(model instanceof Module)) throw new WebGradError('decayGroups: expected a wg.nn.Module');
  checkNumber('decayGroups', 'weightDecay', weightDecay, 0);
  const matrices = new Set<Tensor>();
  const seen = new Set<Tensor>();
  const visit = (m: Module) => {
    // A layer's weight is a matrix unless an earlier module (an embedding it is tied to) holds it.
    if ((m instanceof Linear || m instanceof Conv2d) && !seen.has(m.weight)) matrices.add(m.weight);
    for (const v of Object.values(m)) if (v instanceof Tensor) seen.add(v);
    for (const [, child] of m.namedChildren()) visit(child);
  };
  visit(model);
  const params = model.parameters();
  return [
    { params: params.filter((p) => matrices.has(p)), weightDecay },
    { params: params.filter((p) => !matrices.has(p)), weightDecay: 0 },
  ];
}
