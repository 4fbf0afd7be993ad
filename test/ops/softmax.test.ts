import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setReduceProfile, type ReduceProfile } from '../../src/ops/reduce';
import { expectClose, gpu, gpuTensor, gradCheck, Rng, sizeOf, wg } from '../helpers';
import * as ref from '../reference/reduce';

beforeAll(() => gpu());
afterAll(() => wg.shutdown());

// Kernel layouts differ by adapter: run the reference comparisons under both profiles.
const profiles: [string, ReduceProfile][] = [
  ['many lanes per row (GPU profile)', { maxWorkgroup: 256, perLane: 4 }],
  ['few lanes per row (software profile)', { maxWorkgroup: 64, perLane: 128 }],
];

const ops: [string, (a: wg.Tensor, axis?: number) => wg.Tensor, (d: ArrayLike<number>, s: readonly number[], axis?: number) => Float64Array][] = [
  ['softmax', wg.softmax, ref.softmax],
  ['logSoftmax', wg.logSoftmax, ref.logSoftmax],
];

// Rows of every length class: 1, shorter than a lane group, odd, longer than one workgroup.
const cases: [number[], number[]][] = [
  [[1], [0]],
  [[3], [-1]],
  [[17, 10], [-1, 0]],
  [[5, 33], [1, 0]],
  [[2, 1000], [1]],
  [[3, 130, 3], [0, 1, 2]],
  [[2, 3, 4, 5], [0, 1, 2, 3]],
  [[65, 1], [1, 0]],
];

describe('errors', () => {
  it('bad axis and dtype', () => {
    expect(() => wg.softmax(wg.zeros([2, 3]), 2)).toThrowError(wg.ShapeError);
    expect(() => wg.softmax(wg.zeros([2, 3]), 2)).toThrowError(/softmax: axis 2 is out of range for a tensor of rank 2/);
    expect(() => wg.logSoftmax(wg.zeros([2, 3]), -3)).toThrowError(/logSoftmax: axis -3 is out of range/);
    expect(() => wg.softmax(wg.tensor(new Int32Array([1, 2])))).toThrowError(wg.DTypeError);
    expect(() => wg.logSoftmax(wg.tensor(new Int32Array([1, 2])))).toThrowError(/logSoftmax: input \[2\] is int32, expected float32/);
  });
});

describe.each(profiles)('%s', (_, profile) => {
  beforeAll(() => setReduceProfile(profile));
  afterAll(() => setReduceProfile(null));

  describe('softmax and logSoftmax match the float64 reference', () => {
    for (const [name, op, refOp] of ops) {
      it(`${name} along every axis`, async () => {
        for (const [shape, axes] of cases) {
          for (const axis of axes) {
            const rng = new Rng();
            const x = rng.array(sizeOf(shape), -8, 8);
            const out = op(gpuTensor(x, shape), axis);
            expect(out.shape).toEqual(shape);
            expectClose(await out.toArray(), refOp(x, shape, axis), { seed: rng.seed, what: `${name} ${JSON.stringify(shape)} axis ${axis}`, atol: 1e-6 });
          }
        }
      });
    }

    it('is stable for large logits (max-subtracted) and exact on equal ones', async () => {
      const x = wg.tensor([[1000, 1000, 999], [-1000, -1000, -1000]]);
      const e = Math.exp(-1);
      expectClose(await wg.softmax(x).toArray(), [1 / (2 + e), 1 / (2 + e), e / (2 + e), 1 / 3, 1 / 3, 1 / 3], { atol: 1e-7 });
      expectClose(await wg.logSoftmax(x).toArray(), [-Math.log(2 + e), -Math.log(2 + e), -1 - Math.log(2 + e), -Math.log(3), -Math.log(3), -Math.log(3)], { atol: 1e-6 });
      // (expectClose treats equal infinities as a mismatch: compare exactly.)
      expect(Array.from(await wg.logSoftmax(wg.tensor([0, -Infinity])).toArray())).toEqual([0, -Infinity]);
      expect(Array.from(await wg.softmax(wg.tensor([0, -Infinity])).toArray())).toEqual([1, 0]);
    });

    it('reads transposed, broadcast and offset views in place', async () => {
      const rng = new Rng();
      const x = rng.array(17 * 33, -4, 4);
      const xt = ref.permute(x, [17, 33], [1, 0]);
      for (const [name, op, refOp] of ops) {
        for (const axis of [0, 1]) {
          const t = gpuTensor(x, [17, 33]).transpose();
          expectClose(await op(t, axis).toArray(), refOp(xt.data, xt.shape, axis), { seed: rng.seed, what: `${name} of transpose, axis ${axis}`, atol: 1e-6 });
        }
        const y = rng.array(2 * 3 * 5 * 7, -4, 4);
        const perm = [3, 1, 0, 2];
        const yp = ref.permute(y, [2, 3, 5, 7], perm);
        for (const axis of [0, 2, 3]) {
          const t = gpuTensor(y, [2, 3, 5, 7]).transpose(perm);
          expectClose(await op(t, axis).toArray(), refOp(yp.data, yp.shape, axis), { seed: rng.seed, what: `${name} of permuted, axis ${axis}`, atol: 1e-6 });
        }
        const n = wg.narrow(gpuTensor(x, [17, 33]), 0, 4, 9);
        expectClose(await op(n, 1).toArray(), refOp(x.slice(4 * 33, 13 * 33), [9, 33], 1), { seed: rng.seed, what: `${name} of narrow`, atol: 1e-6 });
        // Every row the same (stride 0 between rows).
        const b = rng.array(10, -4, 4);
        const e = gpuTensor(b, [10]).expand([3, 10]);
        expectClose(await op(e, 1).toArray(), refOp([...b, ...b, ...b], [3, 10], 1), { seed: rng.seed, what: `${name} of expand`, atol: 1e-6 });
      }
    });

    it('a 0-d tensor is a row of one', async () => {
      expect(await wg.softmax(wg.tensor(3)).item()).toBe(1);
      expect(await wg.logSoftmax(wg.tensor(3), 0).item()).toBe(0);
    });
  });

  describe('finite-difference gradients', () => {
    const gradCases: [number[], number][] = [
      [[7], 0],
      [[3, 5], -1],
      [[3, 5], 0],
      [[2, 3, 4], 1],
      [[2, 300], 1],
    ];
    for (const [name, op, refOp] of ops) {
      for (const [shape, axis] of gradCases) {
        it(`${name} ${JSON.stringify(shape)} axis ${axis}`, async () => {
          const rng = new Rng();
          await gradCheck({
            rng,
            inputs: [{ data: rng.array(sizeOf(shape), -3, 3), shape }],
            gpuFn: ([x]) => op(x!, axis),
            refFn: ([x]) => refOp(x!, shape, axis),
          });
        });
      }
      it(`${name} with a strided upstream gradient (through transpose)`, async () => {
        const rng = new Rng();
        const shape = [5, 6];
        await gradCheck({
          rng,
          inputs: [{ data: rng.array(30, -3, 3), shape }],
          gpuFn: ([x]) => op(x!, 1).transpose(),
          refFn: ([x]) => ref.permute(refOp(x!, shape, 1), shape, [1, 0]).data,
        });
      });
    }
  });
});
