// What every replica of the distributed tests shares, wherever it runs (the test process, child
// processes, browser pages): the model, the optimizer and the global batch of every step.

import type * as WG from '../../src/index';

export const IN = 12;
export const HIDDEN = 16;
export const CLASSES = 4;

/** A small MLP; `seed` sets its initial weights (replicas start apart and are sent rank 0's). */
export function makeTrainer(wg: typeof WG, seed: number): WG.Trainer {
  wg.manualSeed(seed);
  const model = new wg.nn.Sequential(new wg.nn.Linear(IN, HIDDEN), new wg.nn.ReLU(), new wg.nn.Linear(HIDDEN, CLASSES));
  const optimizer = new wg.optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
  return new wg.Trainer({ model, optimizer, loss: 'cross-entropy' });
}

/** The global batch of a step: the same on every replica (a generator seeded by the step). */
export function globalBatch(step: number, size: number): { x: Float32Array; y: Int32Array } {
  let s = (0x9e3779b9 ^ (step * 7919 + 1)) >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    x: Float32Array.from({ length: size * IN }, () => next() * 2 - 1),
    y: Int32Array.from({ length: size }, () => Math.floor(next() * CLASSES)),
  };
}

/** Samples [start, start + count) of a step's global batch, as GPU tensors. */
export function batchSlice(wg: typeof WG, step: number, size: number, start: number, count: number): { x: WG.Tensor; y: WG.Tensor } {
  const b = globalBatch(step, size);
  return {
    x: wg.tensor(b.x.subarray(start * IN, (start + count) * IN), [count, IN]),
    y: wg.tensor(b.y.subarray(start, start + count), [count], { dtype: 'int32' }),
  };
}

/** The shard function of a replica: its slice of the global batch of the step it is given. */
export function shardOf(wg: typeof WG, size: number): WG.distributed.ShardFn {
  return ({ step, rank, worldSize }) => {
    const { start, count } = wg.distributed.shardRange(size, rank, worldSize);
    return batchSlice(wg, step, size, start, count);
  };
}

/** One device training on the same global batches from the weights of `seed`: the parameters after `steps` steps. */
export async function singleDevice(wg: typeof WG, steps: number, size: number, seed = 1): Promise<Float32Array[]> {
  const t = makeTrainer(wg, seed);
  for (let s = 0; s < steps; s++) {
    const { x, y } = batchSlice(wg, s, size, 0, size);
    await t.step(x, y);
    x.dispose();
    y.dispose();
  }
  const out = await Promise.all(t.model.parameters().map(async (p) => (await p.toArray()) as Float32Array));
  t.optimizer.dispose();
  t.model.dispose();
  return out;
}

/** Parameters as base64 of their float32 bytes (bit-exact across processes and pages). */
export function encodeParams(params: Float32Array[]): string[] {
  return params.map((p) => {
    const bytes = new Uint8Array(p.buffer, p.byteOffset, p.byteLength);
    let s = '';
    for (const b of bytes) s += String.fromCharCode(b);
    return btoa(s);
  });
}

export function decodeParams(encoded: string[]): Float32Array[] {
  return encoded.map((e) => {
    const s = atob(e);
    const bytes = Uint8Array.from(s, (c) => c.charCodeAt(0));
    return new Float32Array(bytes.buffer);
  });
}
