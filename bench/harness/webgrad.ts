// webgrad's side of the benchmark, written the way a user would: nn layers, crossEntropy,
// backward() and optim.SGD, on WebGPU ('webgrad') or on the CPU backend ('webgrad-wasm'). In Node,
// import webgrad/node (src/node.ts) before this module so that the device comes from Dawn.

import * as wg from '../../src';
import { engine, type Engine, type Prepared } from './engine';
import {
  cnnShapes, convOut, type AttentionData, type AttentionWork, type GptData, type GptWork, type CnnWork, type ConvData, type ConvWork, type LayerNormWork, type LayerParams, type MatmulData, type MatmulWork, type MlpWork, type NormData,
  type StepData,
} from './workloads';

export async function createEngine(backend: 'webgpu' | 'wasm' = 'webgpu'): Promise<Engine> {
  const info = await wg.init({ backend });
  const about = info.wasm
    ? `${info.adapterInfo.description}${info.wasm.threadsReason ? ` (${info.wasm.threadsReason})` : ''}`
    : `WebGPU on ${[info.adapterInfo.vendor, info.adapterInfo.architecture, info.adapterInfo.description].filter(Boolean).join(' ')}`;
  return engine(backend === 'wasm' ? 'webgrad-wasm' : 'webgrad', about, {
    matmul,
    conv2d: conv,
    mlp: (work, data) => step(mlp(work), work.lr, [work.batch, work.sizes[0]!], data),
    cnn: (work, data) => step(cnn(work), work.lr, [work.batch, 1, work.size, work.size], data),
    layernorm: layerNorm,
    attention,
    gpt,
  });
}

function matmul(w: MatmulWork, d: MatmulData): Prepared {
  const a = wg.tensor(d.a, [w.n, w.n]);
  const b = wg.tensor(d.b, [w.n, w.n]);
  return {
    async run() {
      const c = wg.matmul(a, b);
      try {
        return await first(c);
      } finally {
        c.dispose();
      }
    },
    dispose: () => [a, b].forEach((t) => t.dispose()),
  };
}

function conv(w: ConvWork, d: ConvData): Prepared {
  const { N, C, H, W, O, k, padding } = w;
  const x = wg.tensor(d.x, [N, C, H, W], { requiresGrad: true });
  const weight = wg.tensor(d.w, [O, C, k, k], { requiresGrad: true });
  const { OH, OW } = convOut(w);
  const dy = wg.tensor(d.dy, [N, O, OH, OW]);
  const clearGrads = () => {
    for (const t of [x, weight]) {
      t.grad?.dispose();
      t.grad = null;
    }
  };
  return {
    async run() {
      clearGrads();
      const y = wg.conv2d(x, weight, null, { padding });
      y.backward(dy);
      y.dispose();
      // Reading the weight gradient submits and waits for the whole run (forward, both gradients).
      return first(weight.grad!);
    },
    dispose: () => {
      clearGrads();
      [x, weight, dy].forEach((t) => t.dispose());
    },
  };
}

function layerNorm(w: LayerNormWork, d: NormData): Prepared {
  const x = wg.tensor(d.x, [w.rows, w.dim], { requiresGrad: true });
  const weight = wg.tensor(d.w, [w.dim], { requiresGrad: true });
  const bias = wg.tensor(d.b, [w.dim], { requiresGrad: true });
  const dy = wg.tensor(d.dy, [w.rows, w.dim]);
  const clearGrads = () => {
    for (const t of [x, weight, bias]) {
      t.grad?.dispose();
      t.grad = null;
    }
  };
  return {
    async run() {
      clearGrads();
      const y = wg.layerNorm(x, w.dim, weight, bias, w.eps);
      y.backward(dy);
      y.dispose();
      // Reading the weight gradient submits and waits for the whole run (forward, three gradients).
      return first(weight.grad!);
    },
    dispose: () => {
      clearGrads();
      [x, weight, bias, dy].forEach((t) => t.dispose());
    },
  };
}

function mlp(w: MlpWork): wg.nn.Module {
  const layers: wg.nn.Module[] = [];
  w.sizes.slice(1).forEach((out, i) => {
    if (i > 0) layers.push(new wg.nn.ReLU());
    layers.push(new wg.nn.Linear(w.sizes[i]!, out));
  });
  return new wg.nn.Sequential(...layers);
}

function cnn(w: CnnWork): wg.nn.Module {
  const [c1, c2] = w.channels;
  const p = (w.k - 1) / 2;
  return new wg.nn.Sequential(
    new wg.nn.Conv2d(1, c1, w.k, { padding: p }),
    new wg.nn.ReLU(),
    new wg.nn.MaxPool2d(2),
    new wg.nn.Conv2d(c1, c2, w.k, { padding: p }),
    new wg.nn.ReLU(),
    new wg.nn.MaxPool2d(2),
    new wg.nn.Flatten(),
    new wg.nn.Linear(cnnShapes(w).flat, w.classes),
  );
}

/** One training step: zero the gradients, forward, cross-entropy, backward, SGD update. */
function step(model: wg.nn.Module, lr: number, xShape: number[], d: StepData): Prepared {
  load(model, d.layers);
  const opt = new wg.optim.SGD(model.parameters(), { lr });
  const x = wg.tensor(d.x, xShape);
  const labels = wg.tensor(d.labels, [d.labels.length]);
  return {
    async run() {
      opt.zeroGrad();
      const loss = wg.tidy(() => {
        const l = wg.crossEntropy(model.forward(x), labels);
        l.backward();
        return l;
      });
      opt.step();
      try {
        // The read submits the step, update included, and waits for all of it.
        return await loss.item();
      } finally {
        loss.dispose();
      }
    },
    dispose: () => {
      opt.zeroGrad();
      for (const t of [...model.parameters(), x, labels]) t.dispose();
    },
  };
}

/** The shared initial parameters, in the model's parameter order (weight, bias per layer). */
function load(model: wg.nn.Module, layers: LayerParams[]): void {
  const named = model.namedParameters();
  const values = layers.flatMap((l) => [l.w, l.b]);
  if (named.length !== values.length) throw new Error(`the model has ${named.length} parameters, the data ${values.length}`);
  const sd = Object.fromEntries(named.map(([name, p], i) => [name, wg.tensor(values[i]!, p.shape)]));
  model.loadStateDict(sd);
  for (const t of Object.values(sd)) t.dispose();
}

/** The first element of t, read back (which waits for every command submitted before it). */
async function first(t: wg.Tensor): Promise<number> {
  const one = wg.tidy(() => wg.narrow(wg.reshape(t, [-1]), 0, 0, 1));
  try {
    return (await one.toArray())[0]!;
  } finally {
    one.dispose();
  }
}

/** The fused op (forward, then the gradients of q, k and v from the shared upstream gradient). */
function attention(w: AttentionWork, d: AttentionData): Prepared {
  const shape = [w.B, w.H, w.T, w.Dh];
  const [q, k, v] = [d.q, d.k, d.v].map((x) => wg.tensor(x, shape, { requiresGrad: true })) as [wg.Tensor, wg.Tensor, wg.Tensor];
  const dO = wg.tensor(d.dO, shape);
  const clearGrads = () => {
    for (const t of [q, k, v]) {
      t.grad?.dispose();
      t.grad = null;
    }
  };
  return {
    async run() {
      clearGrads();
      const o = wg.scaledDotProductAttention(q, k, v, { causal: w.causal });
      o.backward(dO);
      o.dispose();
      // Reading dq waits for the whole run (forward and the three gradients).
      return first(q.grad!);
    },
    dispose: () => {
      clearGrads();
      [q, k, v, dO].forEach((t) => t.dispose());
    },
  };
}

/** wg.models.gpt with the shared weights; a step as a user writes it: forward, crossEntropy, backward, AdamW. */
function gpt(w: GptWork, d: GptData): Prepared {
  const model = wg.models.gpt({ vocabSize: w.vocab, contextLength: w.context, layers: w.layers, heads: w.heads, dim: w.dim });
  const named: Record<string, Float32Array> = { 'wte.weight': d.wte, 'wpe.weight': d.wpe, 'lnF.weight': d.lnfw, 'lnF.bias': d.lnfb };
  d.blocks.forEach((b, i) => {
    const p = `blocks.${i}.`;
    Object.assign(named, {
      [`${p}ln1.weight`]: b.ln1w, [`${p}ln1.bias`]: b.ln1b,
      [`${p}attn.inProj.weight`]: b.qkvw, [`${p}attn.inProj.bias`]: b.qkvb,
      [`${p}attn.outProj.weight`]: b.projw, [`${p}attn.outProj.bias`]: b.projb,
      [`${p}ln2.weight`]: b.ln2w, [`${p}ln2.bias`]: b.ln2b,
      [`${p}fc.weight`]: b.fcw, [`${p}fc.bias`]: b.fcb,
      [`${p}proj.weight`]: b.fc2w, [`${p}proj.bias`]: b.fc2b,
    });
  });
  const own = model.stateDict();
  const sd = Object.fromEntries(Object.entries(named).map(([k, v]) => [k, wg.tensor(v, own[k]!.shape)]));
  model.loadStateDict(sd);
  for (const t of Object.values(sd)) t.dispose();
  const opt = new wg.optim.AdamW(model.parameters(), { lr: w.lr, weightDecay: 0.01 });
  const x = wg.tensor(d.x, [w.batch, w.context], { dtype: 'int32' });
  const y = wg.tensor(d.y, [w.batch * w.context], { dtype: 'int32' });
  return {
    async run() {
      opt.zeroGrad();
      const loss = wg.tidy(() => {
        const l = wg.crossEntropy(model.forward(x).reshape([w.batch * w.context, w.vocab]), y);
        l.backward();
        return l;
      });
      opt.step();
      try {
        return await loss.item();
      } finally {
        loss.dispose();
      }
    },
    dispose: () => {
      opt.zeroGrad();
      opt.dispose();
      model.dispose();
      x.dispose();
      y.dispose();
    },
  };
}
