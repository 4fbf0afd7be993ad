// Batched matrix multiply with the semantics of shaders/matmul*.wgsl (see matmul_layout.wgsl):
//
//   C[batch] (+)= A[batch] · B[batch], C an M×N block with rows ldc apart at c_offset + batch·M·ldc;
//   logical A (m, k) at a_offset + batch offset + m·sam + k·sak, where (sam, sak) = (lda, 1), or
//   (1, lda) with TRANS_A; B (k, n) likewise with TRANS_B. Batch offsets come from per-dimension
//   batch strides (0 where an operand is broadcast). ACCUMULATE adds the product to C.
//
// Tasks are blocks of MC × NC elements of one matrix of the batch (gemm.ts does the rest).

import { claim, i32At, u32At, u32Of } from './common';
import { matmul as F } from './generated/fields';
import { A_PACK, B_PACK, gemmBlock, KC, MC, MR, NC, NR } from './gemm';

export function matmul(args: usize, scratch: usize): void {
  const M = i32At(args, F.M);
  const N = i32At(args, F.N);
  const K = i32At(args, F.K);
  const lda = i32At(args, F.lda);
  const ldb = i32At(args, F.ldb);
  const ldc = i32At(args, F.ldc);
  const transA = u32At(args, F.TRANS_A) != 0;
  const transB = u32At(args, F.TRANS_B) != 0;
  const accumulate = u32At(args, F.ACCUMULATE) != 0;
  const sam = transA ? 1 : lda;
  const sak = transA ? lda : 1;
  const sbk = transB ? 1 : ldb;
  const sbn = transB ? ldb : 1;
  const a = <usize>u32At(args, F.bind.a);
  const b = <usize>u32At(args, F.bind.b);
  const c = <usize>u32At(args, F.bind.c);
  const mBlocks = (M + MC - 1) / MC;
  const nBlocks = (N + NC - 1) / NC;
  const perMatrix = mBlocks * nBlocks;
  const tasks = i32At(args, F.batches) * perMatrix;

  for (let t = claim(args); t < tasks; t = claim(args)) {
    const batch = t / perMatrix;
    const m0 = ((t % perMatrix) / nBlocks) * MC;
    const n0 = (t % nBlocks) * NC;
    const mc = min(MC, M - m0);
    const nc = min(NC, N - n0);
    // Where this matrix of the batch lives (like place() in matmul_layout.wgsl).
    let rem = <u32>batch;
    let ao = u32At(args, F.a_offset);
    let bo = u32At(args, F.b_offset);
    for (let d = i32At(args, F.batch_rank) - 1; d >= 0; d--) {
      const size = u32Of(args, F.batch_shape, d);
      const i = rem % size;
      rem /= size;
      ao += i * u32Of(args, F.a_bstrides, d);
      bo += i * u32Of(args, F.b_bstrides, d);
    }
    const cBlock = c + ((<usize>u32At(args, F.c_offset) + <usize>batch * <usize>M * <usize>ldc + <usize>m0 * <usize>ldc + <usize>n0) << 2);
    if (K == 0) {
      if (!accumulate) zeroBlock(cBlock, mc, nc, ldc);
      continue;
    }
    for (let k0 = 0; k0 < K; k0 += KC) {
      const kc = min(KC, K - k0);
      packA(scratch + A_PACK, a + (<usize>ao << 2), sam, sak, m0, mc, k0, kc, M);
      packB(scratch + B_PACK, b + (<usize>bo << 2), sbk, sbn, k0, kc, n0, nc);
      gemmBlock(scratch + A_PACK, scratch + B_PACK, mc, nc, kc, cBlock, ldc, accumulate || k0 > 0, scratch);
    }
  }
}

function zeroBlock(c: usize, rows: i32, cols: i32, ldc: i32): void {
  for (let r = 0; r < rows; r++) memory.fill(c + ((<usize>r * <usize>ldc) << 2), 0, <usize>cols << 2);
}

/** Rows m0.. (mc of them) of A over k0..k0+kc into MR-row micro-panels, zero past the block. */
function packA(dst: usize, base: usize, sam: i32, sak: i32, m0: i32, mc: i32, k0: i32, kc: i32, M: i32): void {
  const sk = <usize>sak << 2;
  for (let i = 0; i < mc; i += MR) {
    const panel = dst + <usize>(i / MR) * <usize>(kc * MR * 4);
    for (let r = 0; r < MR; r++) {
      let d = panel + (<usize>r << 2);
      if (i + r < mc) {
        let s = base + ((<usize>(m0 + i + r) * <usize>sam + <usize>k0 * <usize>sak) << 2);
        for (let k = 0; k < kc; k++) {
          store<f32>(d, load<f32>(s));
          s += sk;
          d += MR * 4;
        }
      } else {
        for (let k = 0; k < kc; k++) {
          store<f32>(d, 0);
          d += MR * 4;
        }
      }
    }
  }
}

/** Columns n0.. (nc of them) of B over k0..k0+kc into NR-column micro-panels, zero past the block. */
function packB(dst: usize, base: usize, sbk: i32, sbn: i32, k0: i32, kc: i32, n0: i32, nc: i32): void {
  for (let j = 0; j < nc; j += NR) {
    const panel = dst + <usize>(j / NR) * <usize>(kc * NR * 4);
    if (sbn == 1 && j + NR <= nc) {
      // Rows of B are contiguous: two vectors per k.
      let s = base + ((<usize>k0 * <usize>sbk + <usize>(n0 + j)) << 2);
      const sk = <usize>sbk << 2;
      let d = panel;
      for (let k = 0; k < kc; k++) {
        v128.store(d, v128.load(s));
        v128.store(d, v128.load(s, 16), 16);
        s += sk;
        d += NR * 4;
      }
      continue;
    }
    const sk = <usize>sbk << 2;
    for (let q = 0; q < NR; q++) {
      let d = panel + (<usize>q << 2);
      if (j + q < nc) {
        let s = base + ((<usize>k0 * <usize>sbk + <usize>(n0 + j + q) * <usize>sbn) << 2);
        for (let k = 0; k < kc; k++) {
          store<f32>(d, load<f32>(s));
          s += sk;
          d += NR * 4;
        }
      } else {
        for (let k = 0; k < kc; k++) {
          store<f32>(d, 0);
          d += NR * 4;
        }
      }
    }
  }
}
