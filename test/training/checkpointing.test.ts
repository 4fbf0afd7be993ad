// Activation checkpointing (wg.nn.checkpoint, Module.checkpointed): the gradients are those of the
// run without it, bit for bit — with dropout (module and attention dropout drawn from the global
// generator), BatchNorm in training (running statistics counted once) and f32 — while the
// activations inside a segment are not kept between forward and backward; a function that
// computes something else on its re-run is an error; nothing leaks.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gpu, Rng, settleGarbage, wg } from '../helpers';

beforeAll(() => gpu());
afterAll(() => wg.shutdown());

/** The bits of a float32 tensor. */
async function bits(t: wg.Tensor): Promise<Uint32Array> {
  const a = (await t.toArray()) as Float32Array;
  return new Uint32Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));
}

function expectSameBits(a: Uint32Array[], b: Uint32Array[]): void {
  expect(a.length).toBe(b.length);
  a.forEach((x, i) => {
    const j = x.findIndex((v, k) => v !== b[i]![k]);
    expect(j, `tensor ${i}: first differing element`).toBe(-1);
  });
}

describe('wg.nn.checkpoint', () => {
  it('transformer blocks with dropout: the same gradients, bit for bit, as without checkpointing', async () => {
    wg.manualSeed(3);
    const [B, T, D] = [2, 7, 16];
    const blocks = [0, 1, 2].map(() => new wg.nn.TransformerBlock(D, 4, { causal: true, dropout: 0.2 }));
    const model = new wg.nn.Sequential(...blocks);
    const x = wg.tensor(Float32Array.from(new Rng(1).array(B * T * D)), [B, T, D], { requiresGrad: true });
    const w = wg.randn([B, T, D], { seed: 9 });
    const loss = (forward: () => wg.Tensor) => wg.tidy(() => forward().mul(w).sum());
    const grads = async (forward: () => wg.Tensor) => {
      for (const p of [...model.parameters(), x]) {
        p.grad?.dispose();
        p.grad = null;
      }
      wg.manualSeed(42);
      const l = loss(forward);
      const value = await bits(l);
      l.backward();
      l.dispose();
      const after = wg.randn([4]); // where the generator stands after forward and backward
      const next = await bits(after);
      after.dispose();
      return { value, next, grads: await Promise.all([...model.parameters(), x].map((p) => bits(p.grad!))) };
    };
    const plain = await grads(() => model.forward(x));
    const byCall = await grads(() => blocks.reduce((h, b) => wg.nn.checkpoint((hi: wg.Tensor) => b.forward(hi), h), x));
    blocks.forEach((b) => (b.checkpointed = true));
    const byFlag = await grads(() => model.forward(x));
    blocks.forEach((b) => (b.checkpointed = false));
    for (const other of [byCall, byFlag]) {
      expect(other.value).toEqual(plain.value);
      expect(other.next).toEqual(plain.next); // the re-runs gave the generator back where they found it
      expectSameBits(other.grads, plain.grads);
    }
    // Dropout was on: a different seed changes the gradients (the test can tell masks apart).
    wg.manualSeed(43);
    const l = loss(() => model.forward(x));
    l.backward();
    l.dispose();
    expect(await bits(x.grad!)).not.toEqual(plain.grads[plain.grads.length - 1]);
    x.dispose();
    w.dispose();
    model.dispose();
  });

  it('BatchNorm in training: the same gradients, and the running statistics are updated once', async () => {
    const make = () => {
      wg.manualSeed(5);
      return new wg.nn.Sequential(
        new wg.nn.Sequential(new wg.nn.Conv2d(3, 4, 3, { padding: 1 }), new wg.nn.BatchNorm2d(4), new wg.nn.ReLU()),
        new wg.nn.Sequential(new wg.nn.Conv2d(4, 2, 3), new wg.nn.BatchNorm2d(2), new wg.nn.Dropout(0.3)),
      );
    };
    const x = wg.tensor(Float32Array.from(new Rng(2).array(2 * 3 * 6 * 6)), [2, 3, 6, 6], { requiresGrad: true });
    const run = async (checkpointed: boolean) => {
      const model = make();
      if (checkpointed) for (const layer of model.layers) layer.checkpointed = true;
      x.grad?.dispose();
      x.grad = null;
      wg.manualSeed(8);
      const l = wg.tidy(() => model.forward(x).sum());
      l.backward();
      l.dispose();
      const out = await Promise.all([...model.parameters(), x].map((p) => bits(p.grad!)));
      const stats = await Promise.all(model.namedBuffers().map(([, t]) => bits(t)));
      model.dispose();
      return { grads: out, stats };
    };
    const plain = await run(false);
    const ckpt = await run(true);
    expectSameBits(ckpt.grads, plain.grads);
    expectSameBits(ckpt.stats, plain.stats);
    x.dispose();
  });

  it('keeps only the segment inputs between forward and backward, and frees everything after', async () => {
    wg.manualSeed(4);
    const [B, T, D] = [2, 16, 32];
    const blocks = [0, 1, 2, 3].map(() => new wg.nn.TransformerBlock(D, 4, { causal: true }));
    const model = new wg.nn.Sequential(...blocks);
    const x = wg.randn([B, T, D], { seed: 2, requiresGrad: true });
    await settleGarbage();
    const held = (checkpointed: boolean) => {
      blocks.forEach((b) => (b.checkpointed = checkpointed));
      const before = wg.memory().liveBytes;
      const l = wg.tidy(() => model.forward(x).sum());
      const bytes = wg.memory().liveBytes - before;
      l.backward();
      l.dispose();
      for (const p of [...model.parameters(), x]) {
        p.grad?.dispose();
        p.grad = null;
      }
      return { bytes, after: wg.memory().liveBytes - before };
    };
    const plain = held(false);
    const ckpt = held(true);
    // Without checkpointing each block keeps about a dozen [B, T, D]-sized tensors (more for the
    // MLP's 4·D); with it, one: its input.
    const act = B * T * D * 4;
    expect(plain.bytes).toBeGreaterThan(4 * 10 * act);
    expect(ckpt.bytes).toBeLessThanOrEqual(4 * act + 4096);
    expect(plain.after).toBe(0);
    expect(ckpt.after).toBe(0);
    // A forward whose graph is dropped without backward() frees the inputs it held too.
    const before = wg.memory().liveBytes;
    wg.tidy(() => model.forward(x).sum()).dispose();
    expect(wg.memory().liveBytes).toBe(before);
    blocks.forEach((b) => (b.checkpointed = false));
    x.dispose();
    model.dispose();
  });

  it('nests, passes non-tensor arguments, returns several outputs, and is a plain call without grad', async () => {
    const a = wg.randn([3, 5], { seed: 1, requiresGrad: true });
    const b = wg.randn([5, 4], { seed: 2, requiresGrad: true });
    const f = (p: wg.Tensor, q: wg.Tensor, k: number) => {
      const inner = wg.nn.checkpoint((u: wg.Tensor) => u.matmul(q).tanh(), p);
      return [inner.mul(k), inner.exp()] as const;
    };
    const run = async (ckpt: boolean) => {
      a.grad?.dispose();
      b.grad?.dispose();
      a.grad = b.grad = null;
      const l = wg.tidy(() => {
        const [u, v] = ckpt ? wg.nn.checkpoint(f, a, b, 3) : f(a, b, 3);
        return u.add(v).sum();
      });
      l.backward();
      l.dispose();
      return [await bits(a.grad!), await bits(b.grad!)];
    };
    expectSameBits(await run(true), await run(false));
    const y = wg.noGrad(() => wg.nn.checkpoint((u: wg.Tensor) => u.exp(), a));
    expect(y.requiresGrad).toBe(false);
    y.dispose();
    a.dispose();
    b.dispose();
  });

  it('a function that computes something else when re-run is an error naming what differed', () => {
    const a = wg.randn([4, 4], { seed: 1, requiresGrad: true });
    let calls = 0;
    const l = wg.tidy(() => wg.nn.checkpoint((u: wg.Tensor) => (calls++ === 0 ? u.exp() : u.tanh()), a).sum());
    expect(() => l.backward()).toThrow(/recorded tanh as op 1, where the first run recorded exp/);
    l.dispose();
    expect(() => wg.nn.checkpoint(null as unknown as () => wg.Tensor)).toThrow(/first argument must be the function/);
    a.dispose();
  });

  it('Module.checkpointed is not state: the state dict and parameters are unchanged', () => {
    const block = new wg.nn.TransformerBlock(8, 2);
    const names = Object.keys(block.stateDict());
    block.checkpointed = true;
    expect(block.checkpointed).toBe(true);
    expect(Object.keys(block.stateDict())).toEqual(names);
    expect(new wg.nn.Sequential(block, new wg.nn.ReLU()).checkpointBlocks()).toEqual([block, expect.any(wg.nn.ReLU)]);
    block.checkpointed = false;
    expect(block.checkpointed).toBe(false);
    block.dispose();
  });
});
