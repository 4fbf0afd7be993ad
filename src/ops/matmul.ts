// matmul with torch.matmul semantics: 2-D @ 2-D, batched [..., M, K] @ [..., K, N] with
// broadcast batch dimensions, and 1-D operands promoted to a row / column that the result then
// drops. Operands are read where they lie: a row-major matrix as is, a column-major one (such
// as a transposed view) through the kernel's TRANS_A / TRANS_B variants, so the backward pass
// (dA = g·Bᵀ, dB = Aᵀ·g) transposes nothing. Only a matrix that is neither is copied first.
// Under autocast (mixed precision) the operands are converted to f16 first and the same kernels,
// assembled with operand_f16.wgsl, read them; results and gradients stay f32. A second operand
// that is already float16 — a frozen weight stored in f16 by Module.half() — is read as it is,
// against f32 activations, by kernels assembled with operand_f32_f16.wgsl (needs shader-f16).

import matmulWGSL from '../../shaders/matmul.wgsl?raw';
import layoutWGSL from '../../shaders/matmul_layout.wgsl?raw';
import naiveWGSL from '../../shaders/matmul_naive.wgsl?raw';
import sharedWGSL from '../../shaders/matmul_shared.wgsl?raw';
import tileWGSL from '../../shaders/tile_16x8.wgsl?raw';
import operandF16WGSL from '../../shaders/operand_f16.wgsl?raw';
import operandF32WGSL from '../../shaders/operand_f32.wgsl?raw';
import operandF32F16WGSL from '../../shaders/operand_f32_f16.wgsl?raw';
import { record } from '../autograd/record';
import { broadcastShapes, checkDType, checkRank } from '../checks';
import { contiguousCopy } from '../creation';
import { bindView } from '../kernels/binding';
import { defineKernel, type Kernel } from '../kernels/kernel';
import { MAX_RANK, padded } from '../kernels/layout';
import { launch } from '../kernels/launch';
import { fitsBinding } from '../kernels/segments';
import { operandSharing, sharingWGSL, type OperandSharing } from '../kernels/sharing';
import { autotuner } from '../kernels/tuning/autotune';
import {
  defaultMatmulConfig,
  describeConfig,
  forcedMatmulConfig,
  tuningCandidates,
  type MatmulConfig,
} from '../kernels/tuning/matmul-config';
import { randn } from '../creation';
import { tidy } from '../scope';
import { runtime } from '../runtime/device';
import { DTypeError, ShapeError } from '../runtime/errors';
import { empty, formatShape, sizeOf, type Tensor } from '../tensor';
import { autocastActive } from './autocast';
import { toHalf } from './half';
import { sumGradTo } from './reduce';
import { mT, reshape, viewStrides } from './shape';

/** Every matmul kernel binds the operands and the result alike. */
const BINDINGS = { a: 'read', b: 'read', c: 'write' } as const;

/**
 * The operands' precisions: both f32, both f16 (autocast), or an f32 first operand against an f16
 * second one (a frozen weight stored in f16).
 */
type Precision = 'f32' | 'f16' | 'f32f16';

/** The kernels for operands of one precision (suffix .f16, .f32f16 for the f16 ones). */
function kernelSet(precision: Precision) {
  const operand = { f32: operandF32WGSL, f16: operandF16WGSL, f32f16: operandF32F16WGSL }[precision];
  const suffix = precision === 'f32' ? '' : `.${precision}`;
  const main = [operand, layoutWGSL, matmulWGSL];
  const kernel = (name: string, code: string[], entry: string) => defineKernel(`matmul.${name}${suffix}`, { code, entry, bindings: BINDINGS, wasm: 'matmul' });
  const shared = (s: OperandSharing) => kernel(`shared.${s}`, [operand, layoutWGSL, sharingWGSL(s), tileWGSL, sharedWGSL], 'shared_tile');
  return {
    direct: kernel('direct', main, 'direct'),
    directVec4: kernel('direct_vec4', main, 'direct_vec4'),
    staged: kernel('staged', main, 'staged'),
    shared: { subgroup: shared('subgroup'), workgroup: shared('workgroup') },
    naive: kernel('naive', [operand, layoutWGSL, naiveWGSL], 'naive'),
  };
}
const KERNELS = { f32: kernelSet('f32'), f16: kernelSet('f16'), f32f16: kernelSet('f32f16') };

export function matmul(a: Tensor, b: Tensor): Tensor {
  checkDType('matmul', a, 'float32', 'first operand');
  const shapes = `${formatShape(a.shape)} @ ${formatShape(b.shape)}`;
  if (b.dtype === 'float16') {
    // A frozen weight stored in f16 (Module.half): it gets no gradient, and f16 kernels read it.
    if (b.requiresGrad) throw new DTypeError(`matmul: the float16 second operand of ${shapes} requires grad; float16 weights must be frozen`);
    if (a.ndim === 1 || b.ndim !== 2) throw new ShapeError(`matmul: a float16 second operand must be a matrix with a matrix or batch of matrices before it, got ${shapes}`);
  } else {
    checkDType('matmul', b, 'float32', 'second operand');
  }
  if (a.ndim === 0 || b.ndim === 0) {
    throw new ShapeError(`matmul: both operands need at least one dimension, got ${shapes}`);
  }
  const K = a.shape[a.ndim - 1]!;
  if (K !== b.shape[Math.max(b.ndim - 2, 0)]) throw new ShapeError(`matmul: inner dimensions differ: ${shapes}`);
  const batch = broadcastShapes('matmul', a.shape.slice(0, -2), b.shape.slice(0, -2), `batch dimensions cannot be broadcast together: ${shapes}`);
  checkRank('matmul', [...batch, 1, 1]);

  if (a.ndim === 1 || b.ndim === 1) {
    // torch.matmul: a vector becomes a 1×K row (or K×1 column), and that dimension is dropped.
    return tidy(() => {
      const out2 = matmul(a.ndim === 1 ? reshape(a, [1, K]) : a, b.ndim === 1 ? reshape(b, [K, 1]) : b);
      const shape = out2.shape.slice(0, -2);
      if (a.ndim > 1) shape.push(out2.shape[out2.ndim - 2]!);
      if (b.ndim > 1) shape.push(out2.shape[out2.ndim - 1]!);
      return reshape(out2, shape);
    });
  }
  const rows = sizeOf(a.shape.slice(0, -1));
  if (b.ndim === 2 && a.ndim > 2 && viewStrides(a.shape, a.strides, [rows, K])) {
    // One matrix B for every batch, and A's batch and rows laid out as one dimension (contiguous,
    // or a slice of the last dimension): multiply all rows of A at once (fuller tiles, and the
    // backward's dB becomes one product instead of a batch of them summed).
    return tidy(() => reshape(matmul(reshape(a, [rows, K]), b), [...a.shape.slice(0, -1), b.shape[1]!]));
  }
  if (autocastActive()) return matmulHalf(a, b);
  return record(
    'matmul',
    gemm(a, b),
    [a, b],
    (g, [x, y], needs) => [
      needs[0]
        ? y!.dtype === 'float16'
          ? sumGradTo(gemm(g, mT(y!)), x!.shape) // the f16 weight stays the second operand
          : gradInLayout(x!, g, () => gemm(g, mT(y!)), () => gemm(y!, mT(g)))
        : null,
      needs[1] ? (y!.ndim === 2 && x!.ndim > 2 ? sharedWeightGrad(x!, g) : gradInLayout(y!, g, () => gemm(mT(x!), g), () => gemm(mT(g), x!))) : null,
    ],
    [a, b],
  );
}

/**
 * dB of a batch of A against one B [K, N] (A's rows not laid out as one, or the fold above
 * would have been taken): Σ over the batch of Aᵀ·g, either as one product over a contiguous copy
 * of A (K·rows floats) or as a batch of products summed (K·N per matrix), whichever is smaller.
 */
function sharedWeightGrad(x: Tensor, g: Tensor): Tensor {
  const K = x.shape[x.ndim - 1]!;
  const M = x.shape[x.ndim - 2]!;
  const N = g.shape[g.ndim - 1]!;
  if (M > N) return sumGradTo(gemm(mT(x), g), [K, N]);
  return gemm(mT(reshape(x, [-1, K])), reshape(g, [-1, N]));
}

/**
 * a @ b with f16 operands (autocast): both are converted once, and the conversions are what the
 * backward pass keeps (half the bytes of the f32 inputs); the incoming gradient is converted too.
 */
function matmulHalf(a: Tensor, b: Tensor): Tensor {
  return tidy(() => {
    const a16 = halfOperand(a);
    const b16 = halfOperand(b);
    // (A backward rule runs in a tidy scope of its own: g16 is freed after it.)
    return record(
      'matmul',
      gemm(a16, b16),
      [a, b],
      (g, [x, y], needs) => {
        const g16 = halfOperand(g);
        return [needs[0] ? sumGradTo(gemm(g16, mT(y!)), x!.shape) : null, needs[1] ? sumGradTo(gemm(mT(x!), g16), y!.shape) : null];
      },
      [a16, b16],
    );
  });
}

/** `t` as f16, in a layout the kernels read (row- or column-major matrices; copied first otherwise). */
function halfOperand(t: Tensor): Tensor {
  const r = t.ndim - 2;
  const readable = t.shape[r + 1] === 1 || t.strides[r + 1] === 1 || t.shape[r] === 1 || t.strides[r] === 1;
  if (t.dtype === 'float16') return t.view(t.shape, t.strides, t.offset); // stored in f16 already (parameters are matrices)
  return tidy(() => toHalf(readable ? t : contiguousCopy(t, 'matmul')));
}

/**
 * The gradient of operand t, laid out like t: for matrices stored column-major (a transposed view
 * such as Linear's Wᵀ, or the keys' Kᵀ of attention) the transpose of a row-major product, so
 * that the gradient reaching the stored matrices is row-major and needs no copy. `product` gives
 * the gradient, `transposed` its transpose, each as a row-major product. (An operand broadcast
 * over the batch takes the product, which sums over the batch.)
 */
function gradInLayout(t: Tensor, g: Tensor, product: () => Tensor, transposed: () => Tensor): Tensor {
  const r = t.ndim - 2;
  const columnMajor = t.shape[r]! > 1 && t.shape[r + 1]! > 1 && t.strides[r] === 1;
  const ownBatch = t.ndim === g.ndim && t.shape.slice(0, r).every((d, i) => d === g.shape[i]);
  return columnMajor && ownBatch ? mT(transposed()) : sumGradTo(product(), t.shape);
}

/** How the kernel reads one operand: its storage, layout of the last two dims, batch strides. */
interface OperandLayout {
  src: Tensor;
  /** Column-major (element (r, c) at r + c·ld) instead of row-major (r·ld + c). */
  trans: boolean;
  ld: number;
  /** Element stride per output batch dimension (0 where this operand is broadcast). */
  bstrides: number[];
}

function operand(t: Tensor, batch: readonly number[]): OperandLayout {
  const r = t.ndim - 2;
  const rows = t.shape[r]!;
  const cols = t.shape[r + 1]!;
  const bstrides = batch.map((_, j) => {
    const i = j - (batch.length - r);
    return i < 0 || t.shape[i] === 1 ? 0 : t.strides[i]!;
  });
  if (cols === 1 || t.strides[r + 1] === 1) {
    return { src: t, trans: false, ld: rows === 1 ? 0 : t.strides[r]!, bstrides };
  }
  if (rows === 1 || t.strides[r] === 1) {
    return { src: t, trans: true, ld: t.strides[r + 1]!, bstrides };
  }
  // Neither row- nor column-major: a copy (freed by dispatchGemm's scope).
  return operand(contiguousCopy(t, 'matmul'), batch);
}

/** Can the operand be read as vec4s along its contiguous dimension of length `len`? */
function vec4Aligned(o: OperandLayout, offset: number, len: number): boolean {
  return len % 4 === 0 && offset % 4 === 0 && o.ld % 4 === 0 && o.bstrides.every((s) => s % 4 === 0);
}

/** a @ b for a, b of rank ≥ 2 with matching inner and broadcastable batch dims (not recorded). */
function gemm(a: Tensor, b: Tensor, config?: MatmulConfig): Tensor {
  const M = a.shape[a.ndim - 2]!;
  const N = b.shape[b.ndim - 1]!;
  const batch = broadcastShapes('matmul', a.shape.slice(0, -2), b.shape.slice(0, -2));
  const out = empty([...batch, M, N], 'float32', 'matmul');
  if (out.size > 0) gemmInto(a, b, out, batch, false, config);
  return out;
}

/**
 * Write (or, with `accumulate`, add) a @ b into `out`, a view whose rows are contiguous. When an
 * operand is larger than one storage binding (a Linear layer's big weight, say), the product is
 * cut in halves until every piece binds: rows of A and C; columns of B and C (B stored
 * column-major, as Wᵀ is); or slices of K, each added into the same C.
 */
function gemmInto(a: Tensor, b: Tensor, out: Tensor, batch: readonly number[], accumulate: boolean, config?: MatmulConfig): void {
  // The scope frees the block views and any operand copy made on the way.
  tidy(() => {
    if (fitsBinding(a, b, out)) {
      dispatchGemm(a, b, out, batch, accumulate, config);
      return;
    }
    if (batch.length > 0) {
      // Cut the batch along its first dimension (dropped when it is 1) until the pieces bind;
      // one matrix that does not is cut like a 2-D product below. An operand broadcast along
      // that dimension (or without it) is bound whole with every piece.
      const n = batch[0]!;
      const own = (t: Tensor) => t.ndim === out.ndim && t.shape[0] === n && n > 1;
      const lead = (t: Tensor, start: number, len: number) =>
        len === 1 ? t.view(t.shape.slice(1), t.strides.slice(1), t.offset + start * t.strides[0]!) : t.view([len, ...t.shape.slice(1)], t.strides, t.offset + start * t.strides[0]!);
      const part = (t: Tensor, start: number, len: number) => (own(t) ? lead(t, start, len) : t.ndim === out.ndim && len === 1 ? lead(t, 0, 1) : t);
      const h = Math.ceil(n / 2);
      const pieces: [number, number][] = n === 1 ? [[0, 1]] : [[0, h], [h, n - h]];
      for (const [start, len] of pieces) {
        const o = lead(out, start, len);
        gemmInto(part(a, start, len), part(b, start, len), o, o.shape.slice(0, -2), accumulate, config);
      }
      return;
    }
    const [M, K] = a.shape as [number, number];
    const N = b.shape[1]!;
    const aColMajor = a.strides[1] !== 1 && M > 1;
    const bColMajor = b.strides[1] !== 1 && K > 1;
    const rows = (t: Tensor, r: number, n: number) => t.view([n, t.shape[1]!], t.strides, t.offset + r * t.strides[0]!);
    const cols = (t: Tensor, c: number, n: number) => t.view([t.shape[0]!, n], t.strides, t.offset + c * t.strides[1]!);
    const halves = (n: number, f: (start: number, len: number, first: boolean) => void) => {
      const h = Math.ceil(n / 2);
      f(0, h, true);
      f(h, n - h, false);
    };
    if (M > 1 && (!fitsBinding(out) || (!fitsBinding(a) && !aColMajor))) {
      halves(M, (r, n) => gemmInto(rows(a, r, n), b, rows(out, r, n), batch, accumulate, config));
    } else if (N > 1 && !fitsBinding(b) && bColMajor) {
      halves(N, (c, n) => gemmInto(a, cols(b, c, n), cols(out, c, n), batch, accumulate, config));
    } else if (K > 1) {
      halves(K, (k, n, first) => gemmInto(cols(a, k, n), rows(b, k, n), out, batch, accumulate || !first, config));
    } else {
      dispatchGemm(a, b, out, batch, accumulate, config); // nothing left to cut: bindView names the limit
    }
  });
}

function dispatchGemm(a: Tensor, b: Tensor, out: Tensor, batch: readonly number[], accumulate: boolean, forced?: MatmulConfig): void {
  const M = a.shape[a.ndim - 2]!;
  const K = a.shape[a.ndim - 1]!;
  const N = b.shape[b.ndim - 1]!;
  const A = operand(a, batch);
  const B = operand(b, batch);
  // Where the operands start in their bindings decides whether they can be read as vec4s.
  const aStart = bindView('matmul', A.src, 'first operand').offset;
  const bStart = bindView('matmul', B.src, 'second operand').offset;
  const batches = sizeOf(batch);
  const vec4 = vec4Aligned(A, aStart, A.trans ? M : K) && vec4Aligned(B, bStart, B.trans ? K : N);
  const precision = precisionOf(A.src, B.src);
  const kernels = KERNELS[precision];
  const config = forced ?? chooseConfig(A, B, M, N, K, batch, vec4, precision);
  const tileM = config.wgY * config.tm;
  const tileN = config.wgX * config.tn;
  const wgsM = Math.ceil(M / tileM);
  const wgsN = Math.ceil(N / tileN);
  const workgroups = config.family === 'naive' ? Math.ceil((batches * M * N) / config.wgX) : wgsM * wgsN * batches;
  const params = {
    M, N, K,
    batch_rank: batch.length,
    lda: A.ld,
    ldb: B.ld,
    wgs_m: wgsM,
    wgs_n: wgsN,
    workgroups,
    batches,
    ldc: out.strides[out.ndim - 2] ?? N,
    batch_shape: padded(batch, MAX_RANK, 1),
    a_bstrides: A.bstrides,
    b_bstrides: B.bstrides,
  };
  let kernel: Kernel;
  let constants: Record<string, number | boolean>;
  if (config.family === 'naive') {
    kernel = kernels.naive;
    constants = { WG: config.wgX, TRANS_A: A.trans, TRANS_B: B.trans, ACCUMULATE: accumulate };
  } else {
    constants = { WGX: config.wgX, WGY: config.wgY, TRANS_A: A.trans, TRANS_B: B.trans, ACCUMULATE: accumulate };
    if (config.family === 'shared') {
      kernel = kernels.shared[operandSharing()];
    } else if (config.family === 'staged') {
      constants.TM = config.tm;
      constants.TN = config.tn;
      kernel = kernels.staged;
      constants.BK = config.bk;
    } else {
      constants.TM = config.tm;
      constants.TN = config.tn;
      kernel = vec4 ? kernels.directVec4 : kernels.direct;
    }
  }
  launch(kernel, { bind: { a: A.src, b: B.src, c: out }, params, constants, workgroups }, 'matmul');
}

/**
 * The configuration for this product: one forced with setMatmulConfig, else the autotuner's pick
 * for its shape class (sizes rounded up to powers of two, layouts, alignment) — the untimed
 * default until the class has been timed.
 */
function chooseConfig(
  A: OperandLayout,
  B: OperandLayout,
  M: number,
  N: number,
  K: number,
  batch: readonly number[],
  vec4: boolean,
  precision: Precision,
): MatmulConfig {
  const forced = forcedMatmulConfig();
  if (forced) return forced;
  const rt = runtime();
  const cls = `${bucket(M)}x${bucket(N)}x${bucket(K)}${A.trans ? 'T' : 'N'}${B.trans ? 'T' : 'N'}${vec4 ? 'v' : ''}${batch.length ? 'b' : ''}${{ f32: '', f16: 'h', f32f16: 'w' }[precision]}`;
  const candidates = tuningCandidates(rt.info);
  return autotuner().pick('matmul', cls, {
    candidates,
    fallback: defaultMatmulConfig(rt.info),
    id: describeConfig,
    prepare: () => {
      // Operands of this shape, layout and precision: column-major ones as transposed views.
      const cast = (t: Tensor, half: boolean) => {
        if (!half) return t;
        const h = toHalf(t);
        t.dispose();
        return h;
      };
      const x = cast(A.trans ? mT(randn([...batch, K, M])) : randn([...batch, M, K]), precision === 'f16');
      const y = cast(B.trans ? mT(randn([N, K])) : randn([K, N]), precision !== 'f32');
      return {
        run: (c) => gemm(x, y, c).dispose(),
        dispose: () => {
          x.dispose();
          y.dispose();
        },
      };
    },
  });
}

/** Which kernels read these operands: an f16 first operand needs an f16 second one. */
function precisionOf(a: Tensor, b: Tensor): Precision {
  if (b.dtype !== 'float16') {
    if (a.dtype === 'float16') throw new Error('matmul: an f16 first operand with an f32 second one');
    return 'f32';
  }
  return a.dtype === 'float16' ? 'f16' : 'f32f16';
}

/** The power of two at or above n (at least 16): the size part of a shape class. */
function bucket(n: number): number {
  return Math.max(16, 2 ** Math.ceil(Math.log2(Math.max(1, n))));
}
