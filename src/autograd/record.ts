// How an op joins the autograd graph: it computes its output, then calls record() with its
// inputs, the tensors its backward rule needs, and the rule itself (written next to the forward
// in src/ops/). Without grad mode, or when no input requires grad, record() does nothing.

import { keep } from '../scope';
import type { Tensor } from '../tensor';
import { isGradEnabled } from './grad-mode';
import { Node, type BackwardFn } from './node';
import { activeSegment } from './segment';

export function record(
  op: string,
  out: Tensor,
  inputs: readonly Tensor[],
  backward: BackwardFn,
  save: readonly Tensor[] = [],
): Tensor {
  if (!isGradEnabled() || !inputs.some((t) => t.requiresGrad)) return out;
  const segment = activeSegment();
  out.requiresGrad = true;
  if (segment?.mode === 'unpack') {
    // A checkpointed segment's re-run: the tensors go to the node its first run made.
    segment.unpack(op, save);
    return out;
  }
  const nodes = inputs.map((t) => (t.requiresGrad ? nodeOf(t).retain() : null));
  // Inside a checkpointed segment the node keeps nothing: the re-run provides it.
  const saved = segment ? [] : save.map((t) => keep(t.view(t.shape, t.strides, t.offset)));
  out._node = new Node(op, nodes, saved, backward);
  segment?.adopt(out._node);
  return out;
}

/** The node a gradient for `t` flows into: its producing op, or a leaf node made on first use. */
function nodeOf(t: Tensor): Node {
  if (!t._node) t._node = new Node('leaf', [], [], null, t);
  return t._node;
}
