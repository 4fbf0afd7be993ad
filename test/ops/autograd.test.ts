import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectClose, gpu, gpuTensor, Rng, wg } from '../helpers';
import { runtime } from '../../src/runtime/device';

beforeAll(() => gpu());
afterAll(() => wg.shutdown());

describe('the tape', () => {
  it('backward adds into .grad of leaves that require grad, and only those', async () => {
    const a = wg.tensor([1, 2, 3], undefined, { requiresGrad: true });
    const b = wg.tensor([4, 5, 6]);
    const loss = wg.sum(wg.mul(a, b));
    loss.backward();
    expect(Array.from(await a.grad!.toArray())).toEqual([4, 5, 6]);
    expect(b.grad).toBeNull();
    // A second forward and backward accumulate, like PyTorch.
    wg.sum(wg.mul(a, b)).backward();
    expect(Array.from(await a.grad!.toArray())).toEqual([8, 10, 12]);
  });

  it('a second backward() without a new forward is a clear error', () => {
    const a = wg.ones([2], { requiresGrad: true });
    const loss = wg.sum(wg.exp(a));
    loss.backward();
    expect(() => loss.backward()).toThrowError(wg.WebGradError);
    expect(() => loss.backward()).toThrowError(/backward\(\) already ran/);
  });

  it('a backward() that fails frees the view of its gradient, and a graph freed earlier changes no .grad', async () => {
    const x = wg.ones([3], { requiresGrad: true });
    const y = wg.mul(x, 2);
    await wg.sync();
    const base = wg.memory();
    const g = wg.ones([3]);
    runtime().pool.failAfter = 0; // the first allocation of the backward pass runs out of memory
    expect(() => y.backward(g)).toThrowError(wg.OutOfMemoryError);
    runtime().pool.failAfter = null;
    g.dispose();
    // Nothing may still hold g's storage.
    expect([wg.memory().liveTensors, wg.memory().liveBytes]).toEqual([base.liveTensors, base.liveBytes]);

    // a feeds two losses; the first backward frees the graph through a. The second reaches x
    // directly and through the freed part: it must fail before adding anything to x.grad.
    const a = wg.exp(x);
    wg.sum(a).backward();
    const grad = Array.from(await x.grad!.toArray());
    expect(() => wg.add(wg.sum(x), wg.sum(wg.mul(a, 3))).backward()).toThrowError(/graph through "exp" was already used/);
    expect(Array.from(await x.grad!.toArray())).toEqual(grad);
  });

  it('backward(grad) with a gradient that does not fit is an error of backward(), naming both shapes', () => {
    const x = wg.ones([2, 2], { requiresGrad: true });
    const y = wg.mul(x, x);
    expect(() => y.backward(wg.ones([3]))).toThrowError(wg.ShapeError);
    expect(() => wg.mul(x, x).backward(wg.ones([3]))).toThrowError(/^backward\(\): the gradient \[3\] does not match the tensor's shape \[2, 2\]$/);
    expect(() => wg.mul(x, x).backward(wg.ones([2, 2], { dtype: 'int32' }))).toThrowError(/^backward\(\): the gradient \[2, 2\] is int32, expected float32$/);
    expect(() => wg.mul(x, x).backward([1, 1, 1, 1] as unknown as wg.Tensor)).toThrowError(/^backward\(\): the gradient must be a Tensor, got an array of numbers$/);
    expect(x.grad).toBeNull();
  });

  it('backward() needs a one-element tensor', () => {
    const a = wg.ones([2, 3], { requiresGrad: true });
    expect(() => wg.exp(a).backward()).toThrowError(/backward\(\): called on a tensor of shape \[2, 3\]/);
  });

  it('noGrad records nothing', () => {
    const a = wg.ones([2], { requiresGrad: true });
    const y = wg.noGrad(() => wg.exp(a));
    expect(y.requiresGrad).toBe(false);
    expect(() => wg.sum(y).backward()).toThrowError(/no graph/);
  });

  it('broadcasting is undone by summing in the backward pass', async () => {
    const rng = new Rng();
    const x = rng.array(12);
    const b = rng.array(4);
    const xt = gpuTensor(x, [3, 4], true);
    const bt = gpuTensor(b, [4], true);
    wg.sum(wg.mul(wg.add(xt, bt), 2)).backward();
    expect(bt.grad!.shape).toEqual([4]);
    expectClose(await bt.grad!.toArray(), [6, 6, 6, 6], { seed: rng.seed });
    expectClose(await xt.grad!.toArray(), new Array(12).fill(2), { seed: rng.seed });
  });

  it('a tensor used twice gets the sum of both gradients, and leaves own their .grad', async () => {
    const a = wg.tensor([1, 2], undefined, { requiresGrad: true });
    const b = wg.tensor([3, 4], undefined, { requiresGrad: true });
    wg.sum(wg.add(a, b)).backward(); // both get the same upstream gradient tensor
    wg.sum(wg.mul(a, a)).backward(); // a += 2a
    expect(Array.from(await a.grad!.toArray())).toEqual([3, 5]);
    expect(Array.from(await b.grad!.toArray())).toEqual([1, 1]);
  });

  it('intermediates disposed by tidy() can still be backpropagated through', async () => {
    const w = wg.tensor([0.5, -1], undefined, { requiresGrad: true });
    const loss = wg.tidy(() => wg.sum(wg.mul(wg.exp(w), 3)));
    loss.backward();
    expectClose(await w.grad!.toArray(), [3 * Math.exp(0.5), 3 * Math.exp(-1)]);
  });

  it('the graph frees its saved tensors after backward and when its outputs are disposed', async () => {
    const w = wg.randn([64, 64], { requiresGrad: true });
    await wg.sync();
    const base = wg.memory().liveTensors;
    const loss = wg.tidy(() => wg.sum(wg.tanh(wg.exp(w))));
    loss.backward();
    loss.dispose();
    w.grad!.dispose();
    w.grad = null;
    expect(wg.memory().liveTensors).toBe(base);
    // Without backward: disposing the output releases the graph too.
    const y = wg.tidy(() => wg.sum(wg.tanh(w)));
    y.dispose();
    expect(wg.memory().liveTensors).toBe(base);
  });
});
