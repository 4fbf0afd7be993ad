// Ready-made models: for 28×28 single-channel digits (MNIST), and a GPT-2-style language model
// with generation (gpt.ts, generate.ts); used by the CLI, the demo and the benchmarks.

import { Conv2d } from '../nn/conv2d';
import { Flatten, MaxPool2d, ReLU } from '../nn/activations';
import { Linear } from '../nn/linear';
import { Sequential } from '../nn/sequential';

/** 784 → hidden → 10 with ReLU. */
export function mnistMLP({ hidden = 256 }: { hidden?: number } = {}): Sequential {
  return new Sequential(new Flatten(), new Linear(28 * 28, hidden), new ReLU(), new Linear(hidden, 10));
}

/** conv5×5×c1 → ReLU → pool2 → conv5×5×c2 → ReLU → pool2 → fc10 (same-padded convolutions). */
export function mnistCNN({ channels = [16, 32] }: { channels?: [number, number] } = {}): Sequential {
  const [c1, c2] = channels;
  return new Sequential(
    new Conv2d(1, c1, 5, { padding: 2 }),
    new ReLU(),
    new MaxPool2d(2),
    new Conv2d(c1, c2, 5, { padding: 2 }),
    new ReLU(),
    new MaxPool2d(2),
    new Flatten(),
    new Linear(c2 * 7 * 7, 10),
  );
}

export { GPT, gpt, type GPTConfig, type GPTCall } from './gpt';
export * as gpt2 from './gpt2';
export { generate, type GenerateOptions, type CausalLanguageModel } from './generate';
