// TensorFlow.js 4.22 on its WebGPU backend, through tfjs-core: fused matMul/conv2d (bias and
// ReLU in one kernel, as tfjs-layers uses them), tf.grads, optimizer.minimize with tf.train.sgd,
// softmaxCrossEntropy. TF.js is NHWC and keeps dense weights as [in, out]: the shared data is
// moved to those layouts before anything is timed.

import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-backend-webgpu';
import { engine, type Engine, type Prepared } from './engine';
import { NCHW_TO_NHWC, OIHW_TO_HWIO, permute4d, transpose2d } from './layout';
import {
  cnnShapes, convOut, type AttentionData, type AttentionWork, type GptData, type GptWork, type CnnWork, type ConvData, type ConvWork, type LayerNormWork, type MatmulData, type MatmulWork, type MlpWork, type NormData, type StepData,
} from './workloads';

/**
 * TF.js on WebGPU, or (in a browser) on its WebAssembly backend, whose .wasm files are fetched
 * from `wasmPaths` (the package's dist/ folder as served). Its wasm backend runs threads only in
 * a cross-origin isolated page.
 */
export async function createEngine(backend: 'webgpu' | 'wasm' = 'webgpu', wasmPaths?: string): Promise<Engine> {
  if (backend === 'wasm') {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    if (wasmPaths) wasm.setWasmPaths(wasmPaths);
  }
  if (!(await tf.setBackend(backend))) throw new Error(`TensorFlow.js could not start its ${backend} backend`);
  await tf.ready();
  if (tf.getBackend() !== backend) throw new Error(`TensorFlow.js runs on ${tf.getBackend()}, not ${backend}`);
  return engine(`tfjs-${backend}`, undefined, { matmul, conv2d: conv, mlp, cnn, layernorm: layerNorm, attention, gpt });
}

function matmul(w: MatmulWork, d: MatmulData): Prepared {
  const a = tf.tensor2d(d.a, [w.n, w.n]);
  const b = tf.tensor2d(d.b, [w.n, w.n]);
  return {
    run: () => first(tf.matMul(a, b)),
    dispose: () => tf.dispose([a, b]),
  };
}

function conv(w: ConvWork, d: ConvData): Prepared {
  const { N, C, H, W, O, k, padding } = w;
  const { OH, OW } = convOut(w);
  const x = tf.tensor4d(permute4d(d.x, [N, C, H, W], NCHW_TO_NHWC), [N, H, W, C]);
  const filter = tf.tensor4d(permute4d(d.w, [O, C, k, k], OIHW_TO_HWIO), [k, k, C, O]);
  const dy = tf.tensor4d(permute4d(d.dy, [N, O, OH, OW], NCHW_TO_NHWC), [N, OH, OW, O]);
  const forwardAndBack = tf.grads((xi, fi) => tf.conv2d(xi as tf.Tensor4D, fi as tf.Tensor4D, 1, padding));
  return {
    async run() {
      const [gx, gw] = forwardAndBack([x, filter], dy);
      gx!.dispose();
      // The [kH, kW, C, O] gradient's first element is the [O, C, kH, kW] one's first element too.
      return first(gw!);
    },
    dispose: () => tf.dispose([x, filter, dy]),
  };
}

/** TF.js has no layer-norm op: tf.moments and elementwise ops, as tfjs-layers' LayerNormalization. */
function layerNorm(w: LayerNormWork, d: NormData): Prepared {
  const x = tf.tensor2d(d.x, [w.rows, w.dim]);
  const weight = tf.tensor1d(d.w);
  const bias = tf.tensor1d(d.b);
  const dy = tf.tensor2d(d.dy, [w.rows, w.dim]);
  const forwardAndBack = tf.grads((xi, wi, bi) => {
    const { mean, variance } = tf.moments(xi, -1, true);
    return tf.add(tf.mul(tf.mul(tf.sub(xi, mean), tf.rsqrt(tf.add(variance, w.eps))), wi), bi);
  });
  return {
    async run() {
      const [gx, gw, gb] = forwardAndBack([x, weight, bias], dy);
      tf.dispose([gx!, gb!]);
      return first(gw!);
    },
    dispose: () => tf.dispose([x, weight, bias, dy]),
  };
}

interface Dense { w: tf.Variable; b: tf.Variable }

function mlp(w: MlpWork, d: StepData): Prepared {
  const layers: Dense[] = d.layers.map((l, i) => ({
    w: tf.variable(tf.tensor2d(transpose2d(l.w, w.sizes[i + 1]!, w.sizes[i]!), [w.sizes[i]!, w.sizes[i + 1]!])),
    b: tf.variable(tf.tensor1d(l.b)),
  }));
  const x = tf.tensor2d(d.x, [w.batch, w.sizes[0]!]);
  return trainingStep(w.lr, layers, x, d.labels, w.sizes.at(-1)!, (input) => {
    let h = input;
    layers.forEach((l, i) => {
      h = tf.fused.matMul({ a: h as tf.Tensor2D, b: l.w as tf.Tensor2D, bias: l.b, activation: i < layers.length - 1 ? 'relu' : 'linear' });
    });
    return h;
  });
}

function cnn(w: CnnWork, d: StepData): Prepared {
  const [c1, c2] = w.channels;
  const { k, size, batch } = w;
  const { pooled, flat } = cnnShapes(w);
  const [l1, l2, fc] = d.layers as [StepData['layers'][0], StepData['layers'][0], StepData['layers'][0]];
  const conv1 = { w: tf.variable(tf.tensor4d(permute4d(l1.w, [c1, 1, k, k], OIHW_TO_HWIO), [k, k, 1, c1])), b: tf.variable(tf.tensor1d(l1.b)) };
  const conv2 = { w: tf.variable(tf.tensor4d(permute4d(l2.w, [c2, c1, k, k], OIHW_TO_HWIO), [k, k, c1, c2])), b: tf.variable(tf.tensor1d(l2.b)) };
  // The shared fc weight reads features in (C, H, W) order; NHWC flattens them as (H, W, C).
  const fcHWC = permute4d(fc.w, [w.classes, c2, pooled, pooled], [0, 2, 3, 1]);
  const dense = { w: tf.variable(tf.tensor2d(transpose2d(fcHWC, w.classes, flat), [flat, w.classes])), b: tf.variable(tf.tensor1d(fc.b)) };
  const x = tf.tensor4d(d.x, [batch, size, size, 1]); // one channel: NCHW and NHWC hold the same bytes
  const pad = (k - 1) / 2;
  const block = (h: tf.Tensor4D, l: Dense) =>
    tf.maxPool(tf.fused.conv2d({ x: h, filter: l.w as tf.Tensor4D, strides: 1, pad, bias: l.b, activation: 'relu' }), 2, 2, 'valid');
  return trainingStep(w.lr, [conv1, conv2, dense], x, d.labels, w.classes, (input) => {
    const h = block(block(input as tf.Tensor4D, conv1), conv2);
    return tf.fused.matMul({ a: tf.reshape(h, [batch, flat]) as tf.Tensor2D, b: dense.w as tf.Tensor2D, bias: dense.b });
  });
}

/** optimizer.minimize over the mean softmax cross-entropy; the run reads the loss back. */
function trainingStep(lr: number, layers: Dense[], x: tf.Tensor, labels: Int32Array, classes: number, forward: (x: tf.Tensor) => tf.Tensor): Prepared {
  const vars = layers.flatMap((l) => [l.w, l.b]);
  const oneHot = tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(labels, 'int32'), classes), 'float32'));
  const opt = tf.train.sgd(lr);
  return {
    async run() {
      const loss = opt.minimize(() => tf.losses.softmaxCrossEntropy(oneHot, forward(x)) as tf.Scalar, true, vars)!;
      return first(loss);
    },
    dispose: () => {
      opt.dispose();
      tf.dispose([...vars, x, oneHot]);
    },
  };
}

/** Read t's first element back (which waits for every command before it), then free t. */
async function first(t: tf.Tensor): Promise<number> {
  const one = tf.tidy(() => tf.slice(tf.reshape(t, [-1]), [0], [1]));
  try {
    return (await one.data())[0]!;
  } finally {
    tf.dispose([t, one]);
  }
}

/**
 * TF.js has no attention op: the composite a user writes — q·kᵀ (batched matMul), scaled, the
 * causal mask added (-inf above the diagonal), softmax, ·v — with tf.grads for q, k and v.
 */
function attention(w: AttentionWork, d: AttentionData): Prepared {
  const { B, H, T, Dh } = w;
  const shape: [number, number, number, number] = [B, H, T, Dh];
  const [q, k, v, dO] = [d.q, d.k, d.v, d.dO].map((x) => tf.tensor4d(x, shape));
  const mask = tf.tensor2d(Float32Array.from({ length: T * T }, (_, i) => (w.causal && i % T > Math.floor(i / T) ? -Infinity : 0)), [T, T]);
  const scale = 1 / Math.sqrt(Dh);
  const forwardAndBack = tf.grads((qi, ki, vi) => {
    const scores = tf.add(tf.mul(tf.matMul(qi as tf.Tensor4D, ki as tf.Tensor4D, false, true), scale), mask);
    return tf.matMul(tf.softmax(scores), vi as tf.Tensor4D);
  });
  return {
    async run() {
      const [gq, gk, gv] = forwardAndBack([q!, k!, v!], dO!);
      tf.dispose([gk!, gv!]);
      // Reading dq's first element waits for the whole run (its backward needs the forward).
      return first(gq!);
    },
    dispose: () => tf.dispose([q!, k!, v!, dO!, mask]),
  };
}

/**
 * The GPT step as a TF.js user writes it: tf.gather for the token embedding (a one-hot matMul on
 * the wasm backend, which cannot differentiate gather), LayerNorm from
 * tf.moments (as tfjs-layers), fused matMul with bias for every Linear, the attention composite
 * (batched matMul, causal mask, softmax, matMul; TF.js has no attention op), exact GELU from
 * tf.erf (tfjs-layers' 'gelu'), logits through the tied embedding, softmaxCrossEntropy,
 * tf.variableGrads, and AdamW written out with assign (TF.js's optimizers have no decoupled
 * weight decay).
 */
function gpt(w: GptWork, d: GptData): Prepared {
  const { vocab: V, context: T, dim: D, heads: H, batch: B, lr } = w;
  const Dh = D / H;
  const [b1, b2, eps, wd] = [0.9, 0.999, 1e-8, 0.01];
  const dense = (wt: Float32Array, out: number, inF: number) => tf.variable(tf.tensor2d(transpose2d(wt, out, inF), [inF, out]));
  const vec = (x: Float32Array) => tf.variable(tf.tensor1d(x));
  const wte = tf.variable(tf.tensor2d(d.wte, [V, D]));
  const wpe = tf.variable(tf.tensor2d(d.wpe, [T, D]));
  const blocks = d.blocks.map((b) => ({
    ln1w: vec(b.ln1w), ln1b: vec(b.ln1b), qkvw: dense(b.qkvw, 3 * D, D), qkvb: vec(b.qkvb), projw: dense(b.projw, D, D), projb: vec(b.projb),
    ln2w: vec(b.ln2w), ln2b: vec(b.ln2b), fcw: dense(b.fcw, 4 * D, D), fcb: vec(b.fcb), fc2w: dense(b.fc2w, D, 4 * D), fc2b: vec(b.fc2b),
  }));
  const lnfw = vec(d.lnfw);
  const lnfb = vec(d.lnfb);
  const vars: tf.Variable[] = [wte, wpe, ...blocks.flatMap((b) => Object.values(b)), lnfw, lnfb];
  const m = vars.map((x) => tf.variable(tf.zerosLike(x)));
  const v = vars.map((x) => tf.variable(tf.zerosLike(x)));
  const ids = tf.tensor2d(d.x, [B, T], 'int32');
  // TF.js's wasm backend lacks UnsortedSegmentSum, the gradient of gather: there the token
  // embedding is a one-hot matMul (the same values and gradient; WebGPU keeps gather).
  const oneHotIds = tf.getBackend() === 'wasm' ? tf.tidy(() => tf.cast(tf.oneHot(tf.reshape(ids, [B * T]) as tf.Tensor1D, V), 'float32')) : null;
  const embed = () => (oneHotIds ? tf.reshape(tf.matMul(oneHotIds as tf.Tensor2D, wte), [B, T, D]) : tf.gather(wte, ids));
  const targets = tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(d.y, 'int32'), V), 'float32'));
  const mask = tf.tensor2d(Float32Array.from({ length: T * T }, (_, i) => (i % T > Math.floor(i / T) ? -Infinity : 0)), [T, T]);
  const layerNorm = (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
    const { mean, variance } = tf.moments(x, -1, true);
    return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, 1e-5))), g), b);
  };
  const linear = (x: tf.Tensor, wt: tf.Variable, b: tf.Variable) => tf.fused.matMul({ a: x as tf.Tensor2D, b: wt as tf.Tensor2D, bias: b });
  const gelu = (x: tf.Tensor) => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
  const heads = (x: tf.Tensor) => tf.transpose(tf.reshape(x, [B, T, H, Dh]), [0, 2, 1, 3]) as tf.Tensor4D;
  const loss = () => {
    let h: tf.Tensor = tf.reshape(tf.add(embed(), wpe), [B * T, D]);
    for (const b of blocks) {
      const [q, k, vv] = tf.split(linear(layerNorm(h, b.ln1w, b.ln1b), b.qkvw, b.qkvb), 3, 1).map(heads) as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];
      const weights = tf.softmax(tf.add(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(Dh)), mask));
      const attended = tf.reshape(tf.transpose(tf.matMul(weights, vv), [0, 2, 1, 3]), [B * T, D]);
      h = tf.add(h, linear(attended, b.projw, b.projb));
      h = tf.add(h, linear(gelu(linear(layerNorm(h, b.ln2w, b.ln2b), b.fcw, b.fcb)), b.fc2w, b.fc2b));
    }
    const logits = tf.matMul(layerNorm(h, lnfw, lnfb), wte, false, true);
    return tf.losses.softmaxCrossEntropy(targets, logits) as tf.Scalar;
  };
  let t = 0;
  return {
    async run() {
      t++;
      const { value, grads } = tf.variableGrads(loss, vars);
      tf.tidy(() => {
        const [bc1, bc2Sqrt] = [1 - b1 ** t, Math.sqrt(1 - b2 ** t)];
        vars.forEach((x, i) => {
          const g = grads[x.name]!;
          m[i]!.assign(tf.add(tf.mul(m[i]!, b1), tf.mul(g, 1 - b1)));
          v[i]!.assign(tf.add(tf.mul(v[i]!, b2), tf.mul(tf.square(g), 1 - b2)));
          const step = tf.mul(tf.div(tf.div(m[i]!, bc1), tf.add(tf.div(tf.sqrt(v[i]!), bc2Sqrt), eps)), lr);
          x.assign(tf.sub(tf.mul(x, 1 - lr * wd), step));
        });
      });
      tf.dispose(Object.values(grads));
      return first(value);
    },
    dispose: () => tf.dispose([...vars, ...m, ...v, ids, targets, mask, ...(oneHotIds ? [oneHotIds] : [])]),
  };
}
