// A node of the autograd graph: how one op's output gradient becomes its inputs' gradients.
// Nodes are refcounted: the output tensor holds one reference and every node that consumed the
// output holds one, so a graph stays alive exactly as long as some live tensor can backprop
// through it, even after tidy() disposed the intermediate tensors themselves.

import type { Tensor } from '../tensor';
import type { Segment } from './segment';

/**
 * An op's backward rule: the gradient of the output, the tensors the op saved, and which inputs
 * need a gradient → one gradient per input (null where not needed). Runs with grad disabled.
 */
export type BackwardFn = (grad: Tensor, saved: Tensor[], needsGrad: boolean[]) => (Tensor | null)[];

export class Node {
  private refs = 1;
  /** Set once backward() has run through this node: its saved tensors are gone. */
  consumed = false;
  /**
   * The checkpointed segment that recorded this node and will recompute its saved tensors when
   * backward() needs them (segment.ts); null once they are there, and for ordinary nodes.
   */
  segment: Segment | null = null;

  constructor(
    readonly op: string,
    /** The node of each input that requires grad (null for inputs that do not). */
    readonly inputs: (Node | null)[],
    /** Views of the tensors the backward rule needs, kept alive by this node. */
    public saved: Tensor[],
    readonly backward: BackwardFn | null,
    /** For a leaf: the tensor whose .grad receives the gradient. */
    readonly leaf: Tensor | null = null,
  ) {}

  retain(): this {
    this.refs++;
    return this;
  }

  release(): void {
    if (--this.refs > 0) return;
    this.segment?.forget(this);
    this.freeSaved();
    for (const n of this.inputs) n?.release();
  }

  freeSaved(): void {
    for (const t of this.saved) t.dispose();
    this.saved = [];
  }
}
