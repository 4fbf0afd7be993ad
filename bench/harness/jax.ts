// jax-js 0.1.25 on WebGPU, written as its MNIST example is: pure functions of a parameter list,
// valueAndGrad for the loss and gradients, the SGD update inside the same jit() so that the whole
// step is one compiled program. jax-js is NCHW like webgrad; dense weights are kept as [in, out].
// jax-js frees an array when its reference count drops to zero, and every call consumes its
// arguments: `.ref` keeps an array alive across a call.

import { blockUntilReady, defaultDevice, init, jit, lax, nn, numpy as np, tree, valueAndGrad, vjp } from '@jax-js/jax';
import { engine, type Engine, type Prepared } from './engine';
import { permute4d, transpose2d } from './layout';
import {
  cnnShapes, convOut, type AttentionData, type AttentionWork, type GptData, type GptWork, type CnnWork, type ConvData, type ConvWork, type LayerNormWork, type MatmulData, type MatmulWork,
  type MlpWork, type NormData, type StepData,
} from './workloads';

/** jax-js on WebGPU, or on its WebAssembly backend (threads only where a global Worker exists: browsers). */
export async function createEngine(device: 'webgpu' | 'wasm' = 'webgpu'): Promise<Engine> {
  const devices = await init(device);
  if (!devices.includes(device)) throw new Error(`jax-js found no ${device} device`);
  defaultDevice(device);
  return engine(`jax-js-${device}`, undefined, { matmul, conv2d: conv, mlp, cnn, layernorm: layerNorm, attention, gpt });
}

function matmul(w: MatmulWork, d: MatmulData): Prepared {
  const a = np.array(d.a).reshape([w.n, w.n]);
  const b = np.array(d.b).reshape([w.n, w.n]);
  const mm = jit((x: np.Array, y: np.Array) => np.matmul(x, y));
  return {
    run: () => first(mm(a.ref, b.ref), []),
    dispose: () => {
      mm.dispose();
      tree.dispose([a, b]);
    },
  };
}

function conv(w: ConvWork, d: ConvData): Prepared {
  const { N, C, H, W, O, k, padding: p } = w;
  const { OH, OW } = convOut(w);
  const x = np.array(d.x).reshape([N, C, H, W]);
  const weight = np.array(d.w).reshape([O, C, k, k]);
  const dy = np.array(d.dy).reshape([N, O, OH, OW]);
  const convolve = (xi: np.Array, wi: np.Array) => lax.convGeneralDilated(xi, wi, [1, 1], [[p, p], [p, p]]);
  // The forward output is returned too: otherwise jit would drop the forward convolution, which
  // neither gradient needs, and this would time less work than the other engines do.
  const forwardAndBack = jit((xi: np.Array, wi: np.Array, g: np.Array) => {
    const [y, back] = vjp(convolve, [xi, wi]);
    const [gx, gw] = back(g);
    back.dispose();
    return [y, gx, gw];
  });
  return {
    async run() {
      const [y, gx, gw] = forwardAndBack(x.ref, weight.ref, dy.ref);
      try {
        return await first(gw!, [y!, gx!]);
      } finally {
        tree.dispose([y, gx]);
      }
    },
    dispose: () => {
      forwardAndBack.dispose();
      tree.dispose([x, weight, dy]);
    },
  };
}

/** Layer norm as Flax writes it: nn.standardize over the last axis, then scale and shift; one jit of forward and vjp. */
function layerNorm(w: LayerNormWork, d: NormData): Prepared {
  const x = np.array(d.x).reshape([w.rows, w.dim]);
  const weight = np.array(d.w);
  const bias = np.array(d.b);
  const dy = np.array(d.dy).reshape([w.rows, w.dim]);
  const norm = (xi: np.Array, wi: np.Array, bi: np.Array) => nn.standardize(xi, -1, { epsilon: w.eps }).mul(wi).add(bi);
  // The forward output is returned too, so that jit keeps the forward pass (as for conv2d).
  const forwardAndBack = jit((xi: np.Array, wi: np.Array, bi: np.Array, g: np.Array) => {
    const [y, back] = vjp(norm, [xi, wi, bi]);
    const [gx, gw, gb] = back(g);
    back.dispose();
    return [y, gx, gw, gb];
  });
  return {
    async run() {
      const [y, gx, gw, gb] = forwardAndBack(x.ref, weight.ref, bias.ref, dy.ref);
      try {
        return await first(gw!, [y!, gx!, gb!]);
      } finally {
        tree.dispose([y, gx, gb]);
      }
    },
    dispose: () => {
      forwardAndBack.dispose();
      tree.dispose([x, weight, bias, dy]);
    },
  };
}

function mlp(w: MlpWork, d: StepData): Prepared {
  const params = d.layers.flatMap((l, i) => [
    np.array(transpose2d(l.w, w.sizes[i + 1]!, w.sizes[i]!)).reshape([w.sizes[i]!, w.sizes[i + 1]!]),
    np.array(l.b),
  ]);
  const x = np.array(d.x).reshape([w.batch, w.sizes[0]!]);
  const forward = (p: np.Array[], h: np.Array) => {
    for (let i = 0; i < p.length; i += 2) {
      h = np.dot(h, p[i]!).add(p[i + 1]!);
      if (i + 2 < p.length) h = nn.relu(h);
    }
    return h;
  };
  return trainingStep(w.lr, params, x, d.labels, w.sizes.at(-1)!, forward);
}

function cnn(w: CnnWork, d: StepData): Prepared {
  const [c1, c2] = w.channels;
  const { k, batch, size, classes } = w;
  const { flat } = cnnShapes(w);
  const [l1, l2, fc] = d.layers as [StepData['layers'][0], StepData['layers'][0], StepData['layers'][0]];
  const params = [
    np.array(l1.w).reshape([c1, 1, k, k]),
    np.array(l1.b).reshape([c1, 1, 1]),
    np.array(l2.w).reshape([c2, c1, k, k]),
    np.array(l2.b).reshape([c2, 1, 1]),
    np.array(transpose2d(fc.w, classes, flat)).reshape([flat, classes]),
    np.array(fc.b),
  ];
  const x = np.array(d.x).reshape([batch, 1, size, size]);
  const p = (k - 1) / 2;
  const block = (h: np.Array, wi: np.Array, bi: np.Array) =>
    lax.reduceWindow(nn.relu(lax.convGeneralDilated(h, wi, [1, 1], [[p, p], [p, p]]).add(bi)), np.max, [2, 2], [2, 2]);
  const forward = ([w1, b1, w2, b2, w3, b3]: np.Array[], h: np.Array) => {
    h = block(block(h, w1!, b1!), w2!, b2!);
    return np.dot(h.reshape([batch, flat]), w3!).add(b3!);
  };
  return trainingStep(w.lr, params, x, d.labels, classes, forward);
}

/** One jit-compiled step: mean cross-entropy, its gradients, and the SGD update. */
function trainingStep(
  lr: number,
  initial: np.Array[],
  x: np.Array,
  labels: Int32Array,
  classes: number,
  forward: (p: np.Array[], x: np.Array) => np.Array,
): Prepared {
  let params = initial;
  const oneHot = nn.oneHot(np.array(labels, { dtype: np.int32 }), classes).astype(np.float32);
  const batch = labels.length;
  const loss = (p: np.Array[], xi: np.Array, y: np.Array) => nn.logSoftmax(forward(p, xi), -1).mul(y).sum().mul(-1 / batch);
  const update = jit((p: np.Array[], xi: np.Array, y: np.Array) => {
    const [value, grads] = valueAndGrad(loss)(tree.ref(p), xi, y);
    return [value, p.map((pi, i) => pi.sub(grads[i]!.mul(lr)))] as [np.Array, np.Array[]];
  });
  return {
    async run() {
      const [value, next] = update(params, x.ref, oneHot.ref);
      params = next;
      return first(value, params);
    },
    dispose: () => {
      update.dispose();
      tree.dispose([...params, x, oneHot]);
    },
  };
}

/**
 * Read t's first element back (t is consumed) once `waitFor` is computed too: jax-js evaluates
 * lazily, so reading one output alone need not run the work behind the others.
 */
async function first(t: np.Array, waitFor: np.Array[]): Promise<number> {
  const one = t.ndim ? t.reshape([-1]).slice(0) : t;
  const [data] = await Promise.all([one.data(), blockUntilReady(waitFor)]);
  return data[0]!;
}

/**
 * nn.dotProductAttention (jax-js's composite: einsum, mask, softmax, einsum) under vjp, in one jit
 * that also returns the output (so the forward is not dropped). jax-js takes [B, T, heads, Dh]:
 * the shared [B, H, T, Dh] data is permuted before anything is timed.
 */
function attention(w: AttentionWork, d: AttentionData): Prepared {
  const { B, H, T, Dh } = w;
  const toBTHD = (x: Float32Array) => np.array(permute4d(x, [B, H, T, Dh], [0, 2, 1, 3])).reshape([B, T, H, Dh]);
  const [q, k, v, dO] = [d.q, d.k, d.v, d.dO].map(toBTHD) as [np.Array, np.Array, np.Array, np.Array];
  const sdpa = (qi: np.Array, ki: np.Array, vi: np.Array) => nn.dotProductAttention(qi, ki, vi, { isCausal: w.causal });
  const forwardAndBack = jit((qi: np.Array, ki: np.Array, vi: np.Array, g: np.Array) => {
    const [o, back] = vjp(sdpa, [qi, ki, vi]);
    const [gq, gk, gv] = back(g);
    back.dispose();
    return [o, gq, gk, gv];
  });
  return {
    async run() {
      const [o, gq, gk, gv] = forwardAndBack(q.ref, k.ref, v.ref, dO.ref);
      try {
        // dq[0, 0, 0, 0] is element [0, 0, 0, 0] in either layout.
        return await first(gq!, [o!, gk!, gv!]);
      } finally {
        tree.dispose([o, gk, gv]);
      }
    },
    dispose: () => {
      forwardAndBack.dispose();
      tree.dispose([q, k, v, dO]);
    },
  };
}

/**
 * The GPT step as a jax-js user writes it (nanoGPT in JAX style): a pure forward over a parameter
 * list — np.take for the token embedding, nn.standardize for LayerNorm, the fused QKV projection
 * split into heads laid out [B, T, heads, Dh] for nn.dotProductAttention (isCausal), exact GELU
 * (as webgrad's and PyTorch's default), logits through the tied embedding — valueAndGrad of the
 * mean cross-entropy, and AdamW written out, all in one jit. The bias corrections of the step
 * are arguments, so the jit compiles once.
 */
function gpt(w: GptWork, d: GptData): Prepared {
  const { vocab: V, context: T, dim: D, heads: H, batch: B, lr } = w;
  const Dh = D / H;
  const [b1, b2, eps, wd] = [0.9, 0.999, 1e-8, 0.01];
  // Dense weights [in, out], as jax-js code keeps them.
  const dense = (wt: Float32Array, out: number, inF: number) => np.array(transpose2d(wt, out, inF)).reshape([inF, out]);
  let params: np.Array[] = [
    np.array(d.wte).reshape([V, D]),
    np.array(d.wpe).reshape([T, D]),
    ...d.blocks.flatMap((b) => [
      np.array(b.ln1w), np.array(b.ln1b), dense(b.qkvw, 3 * D, D), np.array(b.qkvb), dense(b.projw, D, D), np.array(b.projb),
      np.array(b.ln2w), np.array(b.ln2b), dense(b.fcw, 4 * D, D), np.array(b.fcb), dense(b.fc2w, D, 4 * D), np.array(b.fc2b),
    ]),
    np.array(d.lnfw),
    np.array(d.lnfb),
  ];
  let m = params.map((p) => np.zerosLike(p.ref));
  let v = params.map((p) => np.zerosLike(p.ref));
  const ids = np.array(d.x, { dtype: np.int32 }).reshape([B, T]);
  const targets = nn.oneHot(np.array(d.y, { dtype: np.int32 }), V).astype(np.float32);
  const layerNorm = (x: np.Array, g: np.Array, b: np.Array) => nn.standardize(x, -1, { epsilon: 1e-5 }).mul(g).add(b);
  const forward = (p: np.Array[], xi: np.Array) => {
    const wte = p[0]!;
    let h = np.take(wte.ref, xi, 0).add(p[1]!).reshape([B * T, D]);
    for (let l = 0; l < w.layers; l++) {
      const [l1w, l1b, qw, qb, pw, pb, l2w, l2b, fw, fb, f2w, f2b] = p.slice(2 + 12 * l, 14 + 12 * l) as np.Array[];
      const qkv = np.dot(layerNorm(h.ref, l1w!, l1b!), qw!).add(qb!).reshape([B, T, 3, H, Dh]);
      const [q, k, vv] = np.split(qkv, 3, 2).map((t) => t.reshape([B, T, H, Dh])) as [np.Array, np.Array, np.Array];
      const attended = nn.dotProductAttention(q, k, vv, { isCausal: true }).reshape([B * T, D]);
      h = h.add(np.dot(attended, pw!).add(pb!));
      const hidden = nn.gelu(np.dot(layerNorm(h.ref, l2w!, l2b!), fw!).add(fb!), { approximate: false });
      h = h.add(np.dot(hidden, f2w!).add(f2b!));
    }
    const n = p.length;
    return np.dot(layerNorm(h, p[n - 2]!, p[n - 1]!), np.matrixTranspose(wte));
  };
  const loss = (p: np.Array[], xi: np.Array, y: np.Array) => nn.logSoftmax(forward(p, xi), -1).mul(y).sum().mul(-1 / (B * T));
  const update = jit((p: np.Array[], mi: np.Array[], vi: np.Array[], xi: np.Array, y: np.Array, bc1: np.Array, bc2Sqrt: np.Array) => {
    const [value, grads] = valueAndGrad(loss)(tree.ref(p), xi, y);
    const next: np.Array[] = [];
    const nm: np.Array[] = [];
    const nv: np.Array[] = [];
    p.forEach((pi, i) => {
      const g = grads[i]!;
      const m1 = mi[i]!.mul(b1).add(g.ref.mul(1 - b1));
      const v1 = vi[i]!.mul(b2).add(np.square(g).mul(1 - b2));
      const step = m1.ref.div(bc1.ref).div(np.sqrt(v1.ref).div(bc2Sqrt.ref).add(eps)).mul(lr);
      next.push(pi.mul(1 - lr * wd).sub(step));
      nm.push(m1);
      nv.push(v1);
    });
    bc1.dispose();
    bc2Sqrt.dispose();
    return [value, next, nm, nv] as [np.Array, np.Array[], np.Array[], np.Array[]];
  });
  let t = 0;
  return {
    async run() {
      t++;
      const [value, next, nm, nv] = update(params, m, v, ids.ref, targets.ref, np.array(1 - b1 ** t), np.array(Math.sqrt(1 - b2 ** t)));
      [params, m, v] = [next, nm, nv];
      return first(value, [...params, ...m, ...v]);
    },
    dispose: () => {
      update.dispose();
      tree.dispose([...params, ...m, ...v, ids, targets]);
    },
  };
}
