import type { Tensor } from '../tensor';
import { Module } from './module';

/** Layers applied in order; parameters are named by index ("0.weight", "2.bias"), as in PyTorch. */
export class Sequential extends Module {
  readonly layers: Module[];

  constructor(...layers: Module[]) {
    super();
    this.layers = layers;
  }

  forward(x: Tensor): Tensor {
    let y = x;
    for (const layer of this.layers) y = layer.forward(y);
    return y;
  }

  /** Each layer is a block, except a layer with blocks of its own, which gives those. */
  override checkpointBlocks(): Module[] {
    return this.layers.flatMap((l) => {
      const inner = l.checkpointBlocks();
      return inner.length ? inner : [l];
    });
  }

  protected override arrayChildName(_property: string, index: number): string {
    return String(index);
  }
}
