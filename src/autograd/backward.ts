// backward(): walk the graph from a one-element loss in reverse topological order, run each
// node's rule, sum gradients that meet, and add the result into .grad of each leaf. Each node's
// saved tensors and each intermediate gradient are freed as soon as they have been used, and the
// graph is released at the end, so a second backward() without a new forward is an error.
// `whenLeafGradientsDone` lets a caller learn, during the pass, as each leaf's gradient is complete
// (data parallelism starts summing the last layers' gradients while backward computes the first's).

import { contiguousCopy, ones } from '../creation';
import { keep, tidy } from '../scope';
import { formatShape, Tensor } from '../tensor';
import { DTypeError, kindOf, ShapeError, WebGradError } from '../runtime/errors';
import { noGrad } from './grad-mode';
import { gradientSum } from './gradient-sum';
import type { Node } from './node';

/** Called, during backward passes run inside whenLeafGradientsDone, with each leaf once its .grad holds the pass's whole gradient. */
let leafDone: ((leaf: Tensor) => void) | null = null;

/**
 * Run `fn`; every backward pass in it calls `hook(leaf)` as soon as it has added its last
 * gradient into `leaf.grad` (in the order the pass finishes them: the last layers first).
 */
export function whenLeafGradientsDone<T>(hook: (leaf: Tensor) => void, fn: () => T): T {
  const outer = leafDone;
  leafDone = hook;
  try {
    return fn();
  } finally {
    leafDone = outer;
  }
}

export function backward(loss: Tensor, gradOutput?: Tensor): void {
  if (!gradOutput && loss.size !== 1) {
    throw new ShapeError(
      `backward(): called on a tensor of shape ${formatShape(loss.shape)}; it needs a one-element tensor (a loss)`,
    );
  }
  if (gradOutput !== undefined) checkGradOutput(loss, gradOutput);
  const root = loss._node;
  if (!root || !loss.requiresGrad) {
    throw new WebGradError(
      'backward(): this tensor has no graph to differentiate: nothing it was computed from requires grad, ' +
        'it was computed under noGrad(), or backward() already ran on it (the graph is freed after backward(); ' +
        'run the forward pass again)',
    );
  }
  const grads = new Map<Node, Tensor>();
  try {
    noGrad(() => run(root, loss, gradOutput, grads));
  } finally {
    // On success grads is empty; after an error (e.g. out of memory) free what was in flight.
    for (const g of grads.values()) g.dispose();
    loss._node = null;
    root.release();
  }
}

/** The gradient given to backward(grad): a live float32 tensor of the output's shape. */
function checkGradOutput(loss: Tensor, g: unknown): void {
  if (!(g instanceof Tensor)) throw new DTypeError(`backward(): the gradient must be a Tensor, got ${kindOf(g)}`);
  g.storage('backward()');
  if (g.dtype !== 'float32') throw new DTypeError(`backward(): the gradient ${formatShape(g.shape)} is ${g.dtype}, expected float32`);
  if (g.ndim !== loss.ndim || g.shape.some((d, i) => d !== loss.shape[i])) {
    throw new ShapeError(`backward(): the gradient ${formatShape(g.shape)} does not match the tensor's shape ${formatShape(loss.shape)}`);
  }
}

function run(root: Node, loss: Tensor, gradOutput: Tensor | undefined, grads: Map<Node, Tensor>): void {
  const order = topoOrder(root);
  // Before any .grad changes: a part of the graph freed by an earlier backward() fails the whole pass.
  const freed = order.find((n) => n.consumed);
  if (freed) {
    throw new WebGradError(
      `backward(): the graph through "${freed.op}" was already used by an earlier backward() and freed; ` +
        'run the forward pass again',
    );
  }
  grads.set(root, gradOutput ? gradOutput.view(gradOutput.shape, gradOutput.strides, gradOutput.offset) : ones(loss.shape));
  for (const node of order) {
    const g = grads.get(node);
    if (!g) continue;
    grads.delete(node);
    try {
      step(node, g, grads);
    } catch (e) {
      g.dispose(); // the caller's gradient (a view of it) or an intermediate: no longer anyone's
      throw e;
    }
    // A leaf's node comes after every node that feeds it: its gradient is complete now.
    if (node.leaf && leafDone && !node.leaf.disposed) leafDone(node.leaf);
  }
}

/** Run one node with its gradient g: accumulate into a leaf, or pass gradients to the node's inputs. */
function step(node: Node, g: Tensor, grads: Map<Node, Tensor>): void {
  if (node.leaf) {
    accumulateLeaf(node.leaf, g);
    return;
  }
  // A node of a checkpointed segment: its saved tensors come from running the segment again.
  node.segment?.recompute();
  const needs = node.inputs.map((n) => n !== null);
  // tidy frees what the rule computed on the way, keeping the gradients it returns.
  const inGrads = tidy(() => node.backward!(g, node.saved, needs));
  node.consumed = true;
  node.freeSaved();
  const stored = new Set<Tensor>();
  node.inputs.forEach((input, i) => {
    let ig = inGrads[i];
    if (!input || !ig) return;
    // The same tensor may come back for several inputs (or be g itself): store views.
    if (stored.has(ig) || ig === g) ig = ig.view(ig.shape, ig.strides, ig.offset);
    stored.add(ig);
    const prev = grads.get(input);
    if (prev) {
      grads.set(input, gradientSum().add(prev, ig));
      prev.dispose();
      ig.dispose();
    } else {
      grads.set(input, ig);
    }
  });
  for (const t of inGrads) if (t && !stored.has(t)) t.dispose();
  g.dispose();
}

/** Nodes reachable from root, each after every node that feeds gradient into it. */
function topoOrder(root: Node): Node[] {
  const order: Node[] = [];
  const seen = new Set<Node>([root]);
  const stack: [Node, number][] = [[root, 0]];
  while (stack.length) {
    const top = stack[stack.length - 1]!;
    const [node, i] = top;
    if (i < node.inputs.length) {
      top[1]++;
      const next = node.inputs[i];
      if (next && !seen.has(next)) {
        seen.add(next);
        stack.push([next, 0]);
      }
    } else {
      stack.pop();
      order.push(node);
    }
  }
  return order.reverse();
}

function accumulateLeaf(leaf: Tensor, g: Tensor): void {
  if (leaf.disposed) {
    g.dispose();
    return;
  }
  if (g.shape.length !== leaf.shape.length || g.shape.some((d, i) => d !== leaf.shape[i])) {
    g.dispose();
    throw new ShapeError(
      `backward(): gradient of shape ${formatShape(g.shape)} for a leaf of shape ${formatShape(leaf.shape)}`,
    );
  }
  if (leaf.grad && !leaf.grad.disposed) {
    gradientSum().addInto(leaf.grad, g);
    g.dispose();
  } else {
    // .grad is accumulated in place later, so it must own its storage outright.
    const owned = g.isContiguous && g.offset === 0 && !g.storage().isShared ? g : contiguousCopy(g, 'backward');
    if (owned !== g) g.dispose();
    leaf.grad = keep(owned);
  }
}
