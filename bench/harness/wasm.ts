// webgrad's wasm kernels as benchmark work items (bench/wasm-gflops.ts runs them in Node, and in
// headless Chromium through bench/wasm-page.ts): matmul, conv2d forward with both gradients, and
// an MLP and a CNN training step composed from the kernels the way phase 2's ops will launch them
// (forward, cross-entropy, backward, SGD). Each run returns a number that agrees across engines
// for the same seeded data: the first output element, or the loss of the step before its update.

import type { WasmPool } from '../../src/runtime/wasm/pool';
import type { WasmRunArgs } from '../../src/runtime/wasm/signatures';
import type { Engine } from './engine';
import { median } from './timing';
import { cnnShapes, convOut, flops, workData, type CnnWork, type ConvData, type ConvWork, type MatmulData, type MatmulWork, type MlpWork, type StepData, type Work } from './workloads';

export interface Runner {
  run(): Promise<number>;
  dispose(): void;
}

/** Buffers of one work item in the pool's memory, released together. */
class Buffers {
  private all: number[] = [];
  constructor(readonly pool: WasmPool) {}
  alloc(n: number): number {
    const at = this.pool.heap.alloc(Math.max(4, 4 * n));
    this.all.push(at);
    return at;
  }
  put(data: ArrayLike<number>): number {
    const at = this.alloc(data.length);
    this.pool.f32(at, data.length).set(data);
    return at;
  }
  dispose(): void {
    for (const at of this.all) this.pool.heap.release(at);
    this.all = [];
  }
}

// ---- webgrad-wasm: the work items on the kernels ------------------------------------------------

/** --profile: milliseconds per kernel and thread count, summed over the composed steps' runs. */
export const profile = { kernels: undefined as Map<string, number> | undefined, work: '' };

const NO_BATCH = { batch_rank: 0, batches: 1, batch_shape: [], a_bstrides: [], b_bstrides: [], a_offset: 0, b_offset: 0, c_offset: 0 };

/** C[M×N] (+)= op(A)·op(B) for contiguous operands (A is M×K, or K×M when transA). */
function matmulArgs(a: number, b: number, c: number, M: number, N: number, K: number, transA = false, transB = false, accumulate = false): WasmRunArgs {
  return {
    bind: { a, b, c },
    params: { M, N, K, lda: transA ? M : K, ldb: transB ? K : N, ldc: N, ...NO_BATCH },
    constants: { TRANS_A: transA, TRANS_B: transB, ACCUMULATE: accumulate },
  };
}

function wasmMatmul(pool: WasmPool, threads: number, w: MatmulWork, d: MatmulData): Runner {
  const buf = new Buffers(pool);
  const a = buf.put(d.a), b = buf.put(d.b), c = buf.alloc(w.n * w.n);
  const args = matmulArgs(a, b, c, w.n, w.n, w.n);
  return {
    run: async () => {
      await pool.run('matmul', args, threads);
      return pool.f32(c, 1)[0]!;
    },
    dispose: () => buf.dispose(),
  };
}

function convGeometry(N: number, C: number, H: number, W: number, O: number, k: number, p: number) {
  const OH = H + 2 * p - k + 1, OW = W + 2 * p - k + 1;
  return { n: N, c: C, h: H, w: W, o: O, oh: OH, ow: OW, kh: k, kw: k, stride_h: 1, stride_w: 1, pad_h: p, pad_w: p, dil_h: 1, dil_w: 1 };
}

const POOL_OFFSETS = { src_offset: 0, out_offset: 0, argmax_offset: 0, dx_offset: 0 };

const weightView = (C: number, k: number) => ({ w_offset: 0, w_stride_o: C * k * k, w_stride_c: k * k, w_stride_kh: k, w_stride_kw: 1 });

function wasmConv(pool: WasmPool, threads: number, w: ConvWork, d: ConvData): Runner {
  const buf = new Buffers(pool);
  const ops = new Ops(pool, threads, buf);
  const { OH, OW } = convOut(w);
  const geo = convGeometry(w.N, w.C, w.H, w.W, w.O, w.k, w.padding);
  const x = buf.put(d.x), weight = buf.put(d.w), dy = buf.put(d.dy);
  const y = buf.alloc(w.N * w.O * OH * OW), dx = buf.alloc(w.N * w.C * w.H * w.W), dw = buf.alloc(w.O * w.C * w.k * w.k);
  return {
    async run() {
      const wv = weightView(w.C, w.k);
      await ops.run('conv2d', { bind: { x, w: weight, bias: x, out: y }, params: { ...geo, x_offset: 0, bias_offset: 0, out_offset: 0, ...wv }, constants: { HAS_BIAS: false } });
      await ops.run('conv2d_grad_input', { bind: { dy, w: weight, dx }, params: { ...geo, dy_offset: 0, dx_offset: 0, ...wv } });
      await ops.gradWeight({ dy, x }, geo, dw, w.O * w.C * w.k * w.k, w.N * OH);
      return pool.f32(dw, 1)[0]!;
    },
    dispose: () => buf.dispose(),
  };
}

/** A kernel launcher bound to a pool and thread count, with the argument shapes the ops will use. */
class Ops {
  constructor(readonly pool: WasmPool, readonly threads: number, readonly buf: Buffers) {}
  async run(kernel: string, args: WasmRunArgs): Promise<void> {
    const times = profile.kernels;
    if (!times) return this.pool.run(kernel, args, this.threads);
    const t0 = performance.now();
    await this.pool.run(kernel, args, this.threads);
    const key = `${profile.work} ${kernel} ×${this.threads}`;
    times.set(key, (times.get(key) ?? 0) + performance.now() - t0);
  }
  /** out[rows×cols] = a op b with b broadcast along rows (a bias) or same shape. */
  binary(op: number, a: number, b: number, out: number, rows: number, cols: number, bRow = false): Promise<void> {
    return this.run('binary', {
      bind: { a, b, out },
      params: { n: rows * cols, alpha: 0, a_offset: 0, b_offset: 0, out_offset: 0, a_period: rows * cols, b_period: bRow ? cols : rows * cols, shape: [rows * cols], a_strides: [1], b_strides: [1] },
      constants: { OP: op, CONTIG: !bRow, PERIODIC: bRow, RANK: 1, MASK_INT: false, INT_OPERANDS: false },
    });
  }
  unary(op: number, a: number, out: number, n: number): Promise<void> {
    return this.run('unary', {
      bind: { a, out },
      params: { n, alpha: 0, beta: 0, seed: 0, base: 0, a_offset: 0, out_offset: 0, cols: 1, rows: 1, diag: 0, int_scalar: 0, shape: [n], a_strides: [1] },
      constants: { OP: op, CONTIG: true, RANK: 1, INT_OPERANDS: false },
    });
  }
  /** out[j] = Σ_i a[i, j] over rows × cols (a bias gradient). */
  sumRows(a: number, out: number, rows: number, cols: number): Promise<void> {
    return this.run('reduce', {
      bind: { src: a, out },
      params: { m: cols, l: rows, chunks: 1, chunk_len: rows, krank: 1, rrank: 1, scale: 1, src_offset: 0, out_offset: 0, kshape: [cols], kstrides: [1], rshape: [rows], rstrides: [cols] },
      constants: { OP: 0 },
    });
  }
  sgd(param: number, grad: number, n: number, lr: number): Promise<void> {
    return this.run('sgd', { bind: { param, grad }, params: { n, param_offset: 0, grad_offset: 0, lr, weight_decay: 0 } });
  }
  /**
   * conv2d_grad_weight into dw (`size` elements) over `rows` rows (n, oh). When its output tiles
   * alone are fewer than four per thread (a first layer: 32 × 25 weights is one tile; 64 × 800 is
   * four), the rows are split so that the threads share the work evenly, and
   * conv2d_reduce_partials adds the splits up, as the WGSL path does.
   */
  async gradWeight(bind: { dy: number; x: number }, params: Record<string, number>, dw: number, size: number, rows: number): Promise<void> {
    const tiles = Math.ceil(params.o! / 96) * Math.ceil(size / params.o! / 256);
    const splits = this.threads > 1 && tiles < 4 * this.threads ? Math.min(rows, Math.ceil((4 * this.threads) / tiles)) : 1;
    const perSplit = Math.ceil(rows / splits);
    const common = { ...params, dy_offset: 0, x_offset: 0, dw_offset: 0 };
    if (Math.ceil(rows / perSplit) === 1) return this.run('conv2d_grad_weight', { bind: { ...bind, dw }, params: { ...common, rows_per_split: rows } });
    const parts = this.partials.get(size * splits) ?? this.buf.alloc(size * splits);
    this.partials.set(size * splits, parts);
    await this.run('conv2d_grad_weight', { bind: { ...bind, dw: parts }, params: { ...common, rows_per_split: perSplit } });
    await this.run('conv2d_reduce_partials', { bind: { src: parts, sum: dw }, params: { m: size, splits: Math.ceil(rows / perSplit), src_offset: 0, sum_offset: 0 } });
  }
  private partials = new Map<number, number>();

  /** Mean cross-entropy of logits [N×K]: dlogits (for an upstream gradient of 1) and the loss. */
  async crossEntropy(logits: number, labels: number, N: number, K: number, dlogits: number): Promise<number> {
    const { buf } = this;
    // Per row (loss, weight): no row is ignored, so the rows counted are N.
    const loss = buf.alloc(2 * N), lse = buf.alloc(N), status = buf.alloc(1), mean = buf.alloc(1), one = buf.put([1]), totals = buf.put([0, N]);
    this.pool.i32(status, 1)[0] = 0;
    const common = { n: N, k: K, x_row: K, x_col: 1, labels_stride: 1, ignore: -100, smoothing: 0, x_offset: 0, labels_offset: 0, lse_offset: 0 };
    await this.run('cross_entropy_forward', { bind: { x: logits, labels, loss, lse, status }, params: { ...common, code: 1, loss_offset: 0 }, constants: { SMOOTH: false } });
    await this.run('reduce', {
      bind: { src: loss, out: mean },
      params: { m: 1, l: N, chunks: 1, chunk_len: N, krank: 0, rrank: 1, scale: 1 / N, src_offset: 0, out_offset: 0, kshape: [], kstrides: [], rshape: [N], rstrides: [2] },
      constants: { OP: 0 },
    });
    await this.run('cross_entropy_backward', {
      bind: { x: logits, labels, lse, g: one, totals, dx: dlogits },
      params: { ...common, g_offset: 0, totals_offset: 0, dx_offset: 0 },
      constants: { MEAN: true },
    });
    return this.pool.f32(mean, 1)[0]!;
  }
}

const ADD = 0, RELU = 4, RELU_GRAD = 8;

function wasmMlp(pool: WasmPool, threads: number, w: MlpWork, d: StepData): Runner {
  const buf = new Buffers(pool);
  const ops = new Ops(pool, threads, buf);
  const B = w.batch, sizes = w.sizes, L = sizes.length - 1;
  const x = buf.put(d.x);
  const labels = buf.alloc(B);
  pool.i32(labels, B).set(d.labels);
  const W = d.layers.map((l) => buf.put(l.w)), bias = d.layers.map((l) => buf.put(l.b));
  const dW = d.layers.map((l) => buf.alloc(l.w.length)), db = d.layers.map((l) => buf.alloc(l.b.length));
  const pre = sizes.slice(1).map((n) => buf.alloc(B * n));   // x·Wᵀ + b
  const act = sizes.slice(1).map((n) => buf.alloc(B * n));   // relu(pre) (unused for the last layer)
  const dAct = sizes.slice(1).map((n) => buf.alloc(B * n));
  const dPre = sizes.slice(1).map((n) => buf.alloc(B * n));
  return {
    async run() {
      let h = x;
      for (let i = 0; i < L; i++) {
        const [inF, outF] = [sizes[i]!, sizes[i + 1]!];
        await ops.run('matmul', matmulArgs(h, W[i]!, dPre[i]!, B, outF, inF, false, true));
        await ops.binary(ADD, dPre[i]!, bias[i]!, pre[i]!, B, outF, true);
        if (i < L - 1) await ops.unary(RELU, pre[i]!, act[i]!, B * outF);
        h = act[i]!;
      }
      const loss = await ops.crossEntropy(pre[L - 1]!, labels, B, sizes[L]!, dPre[L - 1]!);
      for (let i = L - 1; i >= 0; i--) {
        const [inF, outF] = [sizes[i]!, sizes[i + 1]!];
        const input = i === 0 ? x : act[i - 1]!;
        await ops.run('matmul', matmulArgs(dPre[i]!, input, dW[i]!, outF, inF, B, true, false));   // dW = dPreᵀ · input
        await ops.sumRows(dPre[i]!, db[i]!, B, outF);
        if (i > 0) {
          await ops.run('matmul', matmulArgs(dPre[i]!, W[i]!, dAct[i - 1]!, B, inF, outF));        // dInput = dPre · W
          await ops.binary(RELU_GRAD, dAct[i - 1]!, pre[i - 1]!, dPre[i - 1]!, B, inF);
        }
      }
      for (let i = 0; i < L; i++) {
        await ops.sgd(W[i]!, dW[i]!, sizes[i]! * sizes[i + 1]!, w.lr);
        await ops.sgd(bias[i]!, db[i]!, sizes[i + 1]!, w.lr);
      }
      return loss;
    },
    dispose: () => buf.dispose(),
  };
}

function wasmCnn(pool: WasmPool, threads: number, w: CnnWork, d: StepData): Runner {
  const buf = new Buffers(pool);
  const ops = new Ops(pool, threads, buf);
  const [c1, c2] = w.channels;
  const { k, batch: B, size: S, classes } = w;
  const { flat } = cnnShapes(w);
  const p = (k - 1) / 2;
  const x = buf.put(d.x);
  const labels = buf.alloc(B);
  pool.i32(labels, B).set(d.labels);
  const params = d.layers.map((l) => ({ w: buf.put(l.w), b: buf.put(l.b), dw: buf.alloc(l.w.length), db: buf.alloc(l.b.length), nw: l.w.length, nb: l.b.length }));
  const [P1, P2, FC] = params as [typeof params[0], typeof params[0], typeof params[0]];
  // Per block: input channels, size; conv output (pre-activation), relu, pooled, argmax; gradients.
  const blocks = [{ C: 1, O: c1, H: S, input: x }, { C: c1, O: c2, H: S / 2, input: 0 }].map((b) => {
    const n = B * b.O * b.H * b.H, np = n / 4;
    return { ...b, conv: buf.alloc(n), relu: buf.alloc(n), pooled: buf.alloc(np), argmax: buf.alloc(np), dRelu: buf.alloc(n), dConv: buf.alloc(n), dInput: buf.alloc(B * b.C * b.H * b.H) };
  });
  blocks[1]!.input = blocks[0]!.pooled;
  const logits = buf.alloc(B * classes), dLogits = buf.alloc(B * classes), dFlat = buf.alloc(B * flat);
  const poolGeo = (b: typeof blocks[0]) => ({ channels: b.O, in_h: b.H, in_w: b.H, out_h: b.H / 2, out_w: b.H / 2, k_h: 2, k_w: 2, s_h: 2, s_w: 2, p_h: 0, p_w: 0 });
  return {
    async run() {
      for (const [i, b] of blocks.entries()) {
        const P = i === 0 ? P1 : P2;
        const geo = convGeometry(B, b.C, b.H, b.H, b.O, k, p);
        await ops.run('conv2d', {
          bind: { x: b.input, w: P.w, bias: P.b, out: b.conv },
          params: { ...geo, x_offset: 0, bias_offset: 0, out_offset: 0, ...weightView(b.C, k) },
          constants: { HAS_BIAS: true },
        });
        await ops.unary(RELU, b.conv, b.relu, B * b.O * b.H * b.H);
        const outN = B * b.O * (b.H / 2) ** 2;
        await ops.run('max_pool_forward', {
          bind: { src: b.relu, out: b.pooled, argmax: b.argmax },
          params: { ...poolGeo(b), total: outN, src_strides: [b.O * b.H * b.H, b.H * b.H, b.H, 1], ...POOL_OFFSETS },
        });
      }
      const feats = blocks[1]!.pooled;   // [B, c2, 7, 7] = [B, flat]
      await ops.run('matmul', matmulArgs(feats, FC.w, dLogits, B, classes, flat, false, true));
      await ops.binary(ADD, dLogits, FC.b, logits, B, classes, true);
      const loss = await ops.crossEntropy(logits, labels, B, classes, dLogits);
      await ops.run('matmul', matmulArgs(dLogits, feats, FC.dw, classes, flat, B, true, false));
      await ops.sumRows(dLogits, FC.db, B, classes);
      await ops.run('matmul', matmulArgs(dLogits, FC.w, dFlat, B, flat, classes));
      let dOut = dFlat;
      for (let i = blocks.length - 1; i >= 0; i--) {
        const b = blocks[i]!, P = i === 0 ? P1 : P2;
        const n = B * b.O * b.H * b.H, half = b.H / 2;
        await ops.run('max_pool_backward_tiled', {
          bind: { src: dOut, argmax: b.argmax, dx: b.dRelu },
          params: { ...poolGeo(b), total: n / 4, src_strides: [b.O * half * half, half * half, half, 1], ...POOL_OFFSETS },
        });
        await ops.binary(RELU_GRAD, b.dRelu, b.conv, b.dConv, 1, n);
        const geo = convGeometry(B, b.C, b.H, b.H, b.O, k, p);
        await ops.gradWeight({ dy: b.dConv, x: b.input }, geo, P.dw, b.O * b.C * k * k, B * b.H);
        await ops.run('conv2d_grad_bias', { bind: { src: b.dConv, sum: P.db }, params: { m: b.O, splits: B, inner: b.H * b.H, src_offset: 0, sum_offset: 0 } });
        if (i > 0) {
          await ops.run('conv2d_grad_input', { bind: { dy: b.dConv, w: P.w, dx: b.dInput }, params: { ...geo, dy_offset: 0, dx_offset: 0, ...weightView(b.C, k) } });
          dOut = b.dInput;
        }
      }
      for (const P of params) {
        await ops.sgd(P.w, P.dw, P.nw, w.lr);
        await ops.sgd(P.b, P.db, P.nb, w.lr);
      }
      return loss;
    },
    dispose: () => buf.dispose(),
  };
}

export function prepareWasm(pool: WasmPool, threads: number, work: Work): Runner {
  switch (work.kind) {
    case 'matmul': return wasmMatmul(pool, threads, work, workData(work));
    case 'conv2d': return wasmConv(pool, threads, work, workData(work));
    case 'mlp': return wasmMlp(pool, threads, work, workData(work));
    case 'cnn': return wasmCnn(pool, threads, work, workData(work));
    case 'layernorm': throw new Error('not run: the wasm kernels have no layerNorm yet');
    case 'attention': throw new Error('not run: the wasm kernels have no attention yet');
    case 'gpt': throw new Error('not run: the kernel-level bench has no GPT step (npm run bench runs it through webgrad-wasm)');
  }
}

export interface Row { work: string; engine: string; ms?: number; gflops?: number; value?: number; error?: string; vsJax?: number }

/** A peer engine to run beside the kernels: loaded once, on first use. */
export interface Peer { name: string; load: () => Promise<Engine> }

/**
 * Every work item on webgrad-wasm at each thread count and on each peer. Per work item every
 * engine is prepared and warmed up, then the timed runs go round the engines in turn, so that
 * load from other programs falls on all of them alike; the peers' convolution items run at most
 * twice (jax-js's wasm convolutions take seconds).
 */
export async function runWasmSuite(pool: WasmPool, works: Work[], threadCounts: number[], peers: Peer[], runs: number,
                                   onWork?: (name: string) => void): Promise<Row[]> {
  const rows: Row[] = [];
  const engines = new Map<string, Promise<Engine>>();
  for (const work of works) {
    profile.work = work.name;
    const f = flops(work);
    const entries: { row: Row; runner?: Runner; times: number[]; runs: number }[] = [];
    for (const t of threadCounts) {
      entries.push({ row: { work: work.name, engine: `webgrad-wasm ×${t}` }, runner: prepareWasm(pool, t, work), times: [], runs });
    }
    for (const peer of peers) {
      const row: Row = { work: work.name, engine: peer.name };
      try {
        if (!engines.has(peer.name)) engines.set(peer.name, peer.load());
        const slow = work.kind === 'cnn' || work.kind === 'conv2d';
        entries.push({ row, runner: await (await engines.get(peer.name)!).prepare(work, workData(work)), times: [], runs: slow ? Math.min(runs, 2) : runs });
      } catch (e) {
        entries.push({ row: { ...row, error: message(e) }, times: [], runs: 0 });
      }
    }
    try {
      for (const e of entries) {
        if (!e.runner) continue;
        try {
          e.row.value = await e.runner.run();   // the warm-up; a step's loss before any update
        } catch (err) {
          e.row.error = message(err);
          e.runner.dispose();
          e.runner = undefined;
        }
      }
      for (let r = 0; r < runs; r++) {
        for (const e of entries) {
          if (!e.runner || r >= e.runs) continue;
          const t0 = performance.now();
          await e.runner.run();
          e.times.push(performance.now() - t0);
        }
      }
    } finally {
      for (const e of entries) e.runner?.dispose();
    }
    for (const e of entries) if (e.times.length) e.row.ms = median(e.times);
    const jax = entries.find((e) => e.row.engine.startsWith('jax-js-wasm'))?.row.ms;
    for (const { row } of entries) {
      if (row.ms && f) row.gflops = f / row.ms / 1e6;
      if (row.ms && jax) row.vsJax = jax / row.ms;
      rows.push(row);
    }
    onWork?.(work.name);
  }
  return rows;
}

function message(e: unknown): string {
  return String((e as Error)?.message ?? e).split('\n')[0]!.slice(0, 80);
}

/** The rows as a Markdown table. */
export function table(rows: Row[]): string {
  const cells = [['work', 'engine', 'ms', 'GFLOP/s', 'result', 'vs jax-js-wasm'], ...rows.map((r) => [
    r.work, r.engine, r.ms?.toFixed(1) ?? 'fails', r.gflops?.toFixed(1) ?? '', r.error ?? r.value?.toPrecision(6) ?? '', r.vsJax ? `${r.vsJax.toFixed(2)}×` : '',
  ])];
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  return cells.map((r, j) => {
    const line = '| ' + r.map((c, i) => c.padEnd(widths[i]!)).join(' | ') + ' |';
    return j === 0 ? `${line}\n|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|` : line;
  }).join('\n');
}
