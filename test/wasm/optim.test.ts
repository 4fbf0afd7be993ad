// The wasm optimizer kernels against test/reference/optim.ts over several steps: SGD with weight
// decay, momentum with dampening and Nesterov, Adam and AdamW, at sizes with a tail (not a
// multiple of 4) and offsets into the parameter and gradient buffers.

import { describe, it } from 'vitest';
import { adamStep, sgdStep } from '../reference/optim';
import { expectNear, randomArray, read, THREADS, upload, usePools } from './helpers';

const tol = (p: Float64Array): Float64Array => p.map((v) => Math.abs(v) * 1e-5 + 1e-6);

describe('wasm optimizers', () => {
  const pools = usePools();
  for (const threads of THREADS) {
    it(`SGD, momentum, Nesterov, Adam, AdamW match float64 over steps (${threads} thread${threads > 1 ? 's' : ''})`, () => {
      const pool = pools.get(threads)!;
      for (const n of [1, 3, 17, 10007]) {
        const p0 = randomArray(n, n);
        const grads = [1, 2, 3].map((s) => randomArray(n, n * 10 + s));
        for (const o of [{ lr: 0.1, weightDecay: 0.01 }, { lr: 0.05, momentum: 0.9, dampening: 0.1, weightDecay: 0.01 }, { lr: 0.05, momentum: 0.9, nesterov: true }]) {
          const pAt = upload(pool, [0, 0, ...p0]);
          const bufAt = upload(pool, new Float32Array(n));
          const ref = Float64Array.from(p0);
          let buf: Float64Array | null = null;
          grads.forEach((g, step) => {
            const gAt = upload(pool, [0, ...g]);
            if (o.momentum) {
              pool.runSync('sgd_momentum', {
                bind: { param: pAt, grad: gAt, buf: bufAt },
                params: { n, param_offset: 2, grad_offset: 1, buf_offset: 0, first: step === 0, lr: o.lr, weight_decay: o.weightDecay ?? 0, momentum: o.momentum, dampening: o.dampening ?? 0 },
                constants: { NESTEROV: !!o.nesterov },
              });
            } else {
              pool.runSync('sgd', { bind: { param: pAt, grad: gAt }, params: { n, param_offset: 2, grad_offset: 1, lr: o.lr, weight_decay: o.weightDecay ?? 0 } });
            }
            buf = sgdStep(ref, g, buf, o);
            pool.heap.release(gAt);
          });
          expectNear(read(pool, pAt + 8, n), ref, tol(ref), `sgd ${JSON.stringify(o)} n=${n}`);
          pool.heap.release(pAt);
          pool.heap.release(bufAt);
        }
        for (const decoupled of [false, true]) {
          const o = { lr: 0.01, betas: [0.9, 0.999] as [number, number], eps: 1e-8, weightDecay: 0.05, decoupled };
          const pAt = upload(pool, [0, ...p0]), mAt = upload(pool, new Float32Array(n + 1)), vAt = upload(pool, new Float32Array(n + 2));
          const ref = Float64Array.from(p0);
          const state = { step: 0, m: new Float64Array(n), v: new Float64Array(n) };
          grads.forEach((g, step) => {
            const gAt = upload(pool, g);
            const t = step + 1;
            pool.runSync('adam', {
              bind: { param: pAt, grad: gAt, m: mAt, v: vAt },
              params: { n, param_offset: 1, grad_offset: 0, m_offset: 1, v_offset: 2, lr: o.lr, beta1: 0.9, beta2: 0.999, eps: o.eps, weight_decay: o.weightDecay,
                step_size: o.lr / (1 - 0.9 ** t), bc2_sqrt: Math.sqrt(1 - 0.999 ** t) },
              constants: { DECOUPLED: decoupled },
            });
            adamStep(ref, g, state, o);
            pool.heap.release(gAt);
          });
          expectNear(read(pool, pAt + 4, n), ref, tol(ref), `adam decoupled=${decoupled} n=${n}`);
          for (const at of [pAt, mAt, vAt]) pool.heap.release(at);
        }
      }
    });
  }
});
