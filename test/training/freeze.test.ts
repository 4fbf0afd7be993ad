// Freezing part of a model (Module.requiresGrad(false) / freeze()): frozen parameters get no
// gradient, optimizers leave them bit-identical and allocate no state for them, and they stay
// parameters (parameters(), the state dict, loadStateDict).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gpu, Rng, wg } from '../helpers';

beforeAll(() => gpu());
afterAll(() => wg.shutdown());

function model(): wg.nn.Sequential {
  wg.manualSeed(7);
  return new wg.nn.Sequential(new wg.nn.Linear(6, 8), new wg.nn.LayerNorm(8), new wg.nn.ReLU(), new wg.nn.Linear(8, 3));
}

const bits = async (t: wg.Tensor) => Array.from(new Uint32Array((await t.toArray()).buffer));

function lossOf(m: wg.nn.Module, rng: Rng): wg.Tensor {
  const x = wg.tensor(Float32Array.from(rng.array(5 * 6)), [5, 6]);
  const y = wg.tensor(Int32Array.from({ length: 5 }, () => rng.int(3)), [5], { dtype: 'int32' });
  return wg.crossEntropy(m.forward(x), y);
}

describe('Module.freeze() and requiresGrad(flag)', () => {
  it('frozen parameters stay parameters (names, state dict) and get no gradient', () => {
    const m = model();
    const names = m.namedParameters().map(([n]) => n);
    expect(m.layers[0]!.freeze()).toBe(m.layers[0]);
    expect(m.namedParameters().map(([n]) => n)).toEqual(names);
    expect(Object.keys(m.stateDict())).toEqual(names);
    expect(m.namedBuffers()).toEqual([]);
    lossOf(m, new Rng()).backward();
    const grads = Object.fromEntries(m.namedParameters().map(([n, p]) => [n, p.grad !== null]));
    expect(grads).toEqual({ '0.weight': false, '0.bias': false, '1.weight': true, '1.bias': true, '3.weight': true, '3.bias': true });
  });

  it('an optimizer step leaves frozen parameters bit-identical and allocates no state for them', async () => {
    for (const make of [
      (ps: wg.Tensor[]) => new wg.optim.AdamW(ps, { lr: 0.1, weightDecay: 0.1 }),
      (ps: wg.Tensor[]) => new wg.optim.SGD(ps, { lr: 0.1, momentum: 0.9, weightDecay: 0.1 }),
    ]) {
      const m = model();
      const [frozenW, frozenB] = m.layers[3]!.parameters();
      const before = [await bits(frozenW!), await bits(frozenB!)];
      const firstBefore = await bits(m.layers[0]!.parameters()[0]!);
      m.layers[3]!.freeze();
      const opt = make(m.parameters());
      const stateBefore = opt.stateBytes();
      for (let i = 0; i < 2; i++) {
        opt.zeroGrad();
        lossOf(m, new Rng()).backward();
        opt.step();
      }
      expect([await bits(frozenW!), await bits(frozenB!)]).toEqual(before);
      expect(await bits(m.layers[0]!.parameters()[0]!)).not.toEqual(firstBefore); // the rest trained
      // State for parameters 0–3 (Linear 0 and the LayerNorm), none for 4 and 5 (the frozen Linear).
      expect(Object.keys(opt.stateDict().state).map(Number).sort()).toEqual([0, 1, 2, 3]);
      expect(opt.stateBytes()).toBe(stateBefore);
      opt.dispose();
    }
  });

  it('a frozen parameter holding a gradient (DataParallel fills in zeros) is still skipped', async () => {
    const m = model();
    m.layers[0]!.freeze();
    const w = m.layers[0]!.parameters()[0]!;
    const before = await bits(w);
    const opt = new wg.optim.AdamW(m.parameters(), { lr: 0.1, weightDecay: 0.5 });
    lossOf(m, new Rng()).backward();
    w.grad = wg.zeros(w.shape);
    opt.step();
    expect(await bits(w)).toEqual(before);
    expect(opt.stateDict().state[0]).toBeUndefined();
  });

  it('freezing drops gradients already held; requiresGrad(true) unfreezes', () => {
    const m = model();
    lossOf(m, new Rng()).backward();
    expect(m.parameters().every((p) => p.grad !== null)).toBe(true);
    m.freeze();
    expect(m.parameters().every((p) => p.grad === null && !p.requiresGrad)).toBe(true);
    expect(() => lossOf(m, new Rng()).backward()).toThrowError(/has no graph to differentiate/);
    m.requiresGrad(true);
    lossOf(m, new Rng()).backward();
    expect(m.parameters().every((p) => p.grad !== null && p.requiresGrad)).toBe(true);
  });

  it('loadStateDict fills frozen parameters too, and a Trainer trains around them', async () => {
    const a = model();
    const b = model();
    wg.manualSeed(99);
    b.loadStateDict(new wg.nn.Sequential(new wg.nn.Linear(6, 8), new wg.nn.LayerNorm(8), new wg.nn.ReLU(), new wg.nn.Linear(8, 3)).stateDict());
    a.freeze();
    a.loadStateDict(b.stateDict());
    for (const [n, t] of Object.entries(b.stateDict())) expect(await bits(a.stateDict()[n]!)).toEqual(await bits(t));

    const m = model();
    m.layers[0]!.freeze();
    const frozen = await bits(m.layers[0]!.parameters()[0]!);
    const trainer = new wg.Trainer({ model: m, optimizer: new wg.optim.AdamW(m.parameters(), { lr: 0.05 }), loss: 'cross-entropy' });
    const rng = new Rng();
    const x = wg.tensor(Float32Array.from(rng.array(8 * 6)), [8, 6]);
    const y = wg.tensor(Int32Array.from({ length: 8 }, () => rng.int(3)), [8], { dtype: 'int32' });
    const first = await trainer.step(x, y);
    let last = first;
    for (let i = 0; i < 5; i++) last = await trainer.step(x, y);
    expect(last.loss).toBeLessThan(first.loss);
    expect(await bits(m.layers[0]!.parameters()[0]!)).toEqual(frozen);
  });
});
