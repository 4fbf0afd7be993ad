// Recomputed segments of the graph: the mechanism under wg.nn.checkpoint (activation
// checkpointing, as PyTorch's non-reentrant torch.utils.checkpoint).
//
// While a segment's forward runs, ops record their nodes as usual — the graph, and so the
// gradients' paths to parameters and inputs, is the same as without checkpointing — but the
// nodes keep none of the tensors their backward rules need: those tensors die with the segment's
// tidy scope, and only the segment's inputs are kept. When backward() first reaches one of its
// nodes, the segment runs its forward again with recording in "unpack" mode: the k-th op it
// records hands its saved tensors to the k-th node of the first run (same op, checked), and makes
// no new node. Then the backward pass goes on through the nodes as if nothing had happened, so
// the gradients are those of the run without checkpointing, bit for bit, provided the second run
// computes what the first did (nn/checkpoint.ts replays the random numbers and autocast, and
// BatchNorm leaves its running statistics alone while isRecomputing()).

import { keep, tidy } from '../scope';
import type { Tensor } from '../tensor';
import { WebGradError } from '../runtime/errors';
import { withGrad } from './grad-mode';
import type { Node } from './node';

/** A segment whose forward is being recorded (nodes adopted) or re-run (nodes unpacked). */
let active: Segment | null = null;

/** Whether a segment is running now (a checkpoint inside it is then a plain call). */
export function inSegment(): boolean {
  return active !== null;
}

/** Whether the forward code running now is a recomputation (BatchNorm: do not update statistics again). */
export function isRecomputing(): boolean {
  return active?.mode === 'unpack';
}

export class Segment {
  /** Nodes recorded by the first run, in order; the k-th record of the re-run unpacks the k-th. */
  private nodes: Node[] = [];
  /** Nodes not yet unpacked nor released: the inputs are freed when none is left. */
  private waiting = 0;
  private unpacked = 0;
  mode: 'record' | 'unpack' | 'done' = 'record';
  /** The inputs as the re-run gets them (views that keep the storage, with their requiresGrad). */
  private inputs: unknown[];

  constructor(
    /** What the segment is, for error messages ("checkpoint of TransformerBlock"). */
    readonly what: string,
    /** The segment's forward: run twice with the same inputs. */
    private readonly forward: (...inputs: unknown[]) => unknown,
    private firstInputs: readonly unknown[],
  ) {
    this.inputs = firstInputs.map((v) => (isTensor(v) ? holdInput(v) : v));
  }

  /**
   * Run the forward for the first time, on the inputs themselves (their graph continues through
   * it), recording nodes without saved tensors. Returns its result.
   */
  run(): unknown {
    const outer = active;
    active = this;
    try {
      return this.forward(...this.firstInputs);
    } finally {
      active = outer;
      this.mode = 'done';
      this.firstInputs = [];
      if (this.waiting === 0) this.freeInputs(); // nothing recorded: nothing to recompute
    }
  }

  /** Called by record() during the first run: `node` will get its saved tensors from the re-run. */
  adopt(node: Node): void {
    node.segment = this;
    this.nodes.push(node);
    this.waiting++;
  }

  /**
   * Called by record() during the re-run: the saved tensors of the next node. A node that
   * backward() already went past (or released) gets nothing; its tensors are dropped.
   */
  unpack(op: string, save: readonly Tensor[]): void {
    const k = this.unpacked++;
    const node = this.nodes[k];
    if (!node || node.op !== op) {
      throw new WebGradError(
        `${this.what}: recomputing the segment for backward() recorded ${op} as op ${k + 1}, where the first run ` +
          `recorded ${node ? node.op : 'nothing more'}. The function must compute the same ops each time: ` +
          'pass every tensor it reads as an input, and let its control flow depend on nothing else',
      );
    }
    if (node.segment === this && !node.consumed) {
      node.saved = save.map((t) => keep(t.view(t.shape, t.strides, t.offset)));
      node.segment = null;
      this.waiting--;
    }
  }

  /** Called by backward() when it reaches a node of this segment whose tensors are not there yet. */
  recompute(): void {
    if (this.mode !== 'done') throw new Error(`${this.what}: recomputed while it runs`);
    this.mode = 'unpack';
    this.unpacked = 0;
    const outer = active;
    active = this;
    try {
      withGrad(() => tidy(() => void this.forward(...this.inputs)));
      if (this.unpacked !== this.nodes.length) {
        throw new WebGradError(
          `${this.what}: recomputing the segment for backward() recorded ${this.unpacked} ops, the first run ` +
            `${this.nodes.length}. The function must compute the same ops each time: pass every tensor it reads as an ` +
            'input, and let its control flow depend on nothing else',
        );
      }
    } finally {
      active = outer;
      this.mode = 'done';
      // Nodes left waiting (an error above) give up theirs; the inputs are not needed any more.
      for (const n of this.nodes) if (n.segment === this) n.segment = null;
      this.nodes = [];
      this.waiting = 0;
      this.freeInputs();
    }
  }

  /** Called when a node of this segment is released before it was unpacked. */
  forget(node: Node): void {
    if (node.segment !== this) return;
    node.segment = null;
    if (--this.waiting === 0 && this.mode === 'done') {
      this.nodes = [];
      this.freeInputs();
    }
  }

  private freeInputs(): void {
    for (const v of this.inputs) if (isTensor(v)) v.dispose();
    this.inputs = [];
  }
}

/** The segment running now, or null. */
export function activeSegment(): Segment | null {
  return active;
}

/** A view of an input, kept out of tidy scopes, with the input's requiresGrad (the re-run records the same ops). */
function holdInput(t: Tensor): Tensor {
  const v = keep(t.view(t.shape, t.strides, t.offset));
  v.requiresGrad = t.requiresGrad;
  return v;
}

function isTensor(v: unknown): v is Tensor {
  return typeof v === 'object' && v !== null && 'shape' in v && 'strides' in v && typeof (v as Tensor).dispose === 'function';
}
