// The register-blocked core shared by matmul and the convolutions: C (+)= A·B over packed panels.
//
// Blocking follows BLIS. A task owns a block of C of up to MC rows × NC columns. For each slice
// of KC values of k it packs its rows of A into micro-panels of MR rows (k-major: for each k, MR
// values) and its columns of B into micro-panels of NR columns (for each k, NR values), padding
// with zeros past the matrix, then runs the MR×NR micro-kernel over every pair of micro-panels.
// The micro-kernel keeps its MR×NR block of C in 12 v128 registers; each k step loads one row of
// the B panel (2 vectors) and broadcasts MR values of A. A B micro-panel (KC·NR·4 = 8 KiB) stays
// in L1 while the A block streams from L2.
//
// How A and B are read (strided matrices, image patches for the convolutions) is the packers'
// business (see matmul.ts, conv2d.ts): the core only sees packed panels.

import { madd } from './common';

// @ts-ignore: decorator
@inline export const MR: i32 = 6;
// @ts-ignore: decorator
@inline export const NR: i32 = 8;
// @ts-ignore: decorator
@inline export const KC: i32 = 256;
// @ts-ignore: decorator
@inline export const MC: i32 = 192;
// @ts-ignore: decorator
@inline export const NC: i32 = 256;

// Layout of a thread's scratch: the packed A block, the packed B block, an MR×NR edge tile.
// @ts-ignore: decorator
@inline export const A_PACK: usize = 0;
// @ts-ignore: decorator
@inline export const B_PACK: usize = <usize>(MC * KC * 4);
// @ts-ignore: decorator
@inline export const EDGE_TILE: usize = B_PACK + <usize>(KC * NC * 4);
/** Per-lane values a packer keeps for one B micro-panel (NR i32 each, a few rows of them). */
// @ts-ignore: decorator
@inline export const LANES: usize = EDGE_TILE + <usize>(MR * NR * 4);

/**
 * Pack rows m0.. (mc of them) of a matrix whose k index is split as k = (k1·K2 + k2)·K3 + k3:
 * element (m, k) at base + 4·(m·sm + k1·s1 + k2·s2 + k3·s3). A plain matrix has K2 = K3 = 1;
 * a convolution weight splits k into (channel, kernel row, kernel column). Micro-panels of MR
 * rows, k-major, zero past the block.
 */
export function packRows(dst: usize, base: usize, sm: i32, s1: i32, s2: i32, s3: i32, K2: i32, K3: i32,
                         m0: i32, mc: i32, k0: i32, kc: i32): void {
  const k23 = K2 * K3;
  for (let i = 0; i < mc; i += MR) {
    const panel = dst + <usize>(i / MR) * <usize>(kc * MR * 4);
    for (let r = 0; r < MR; r++) {
      let d = panel + (<usize>r << 2);
      if (i + r >= mc) {
        for (let k = 0; k < kc; k++) {
          store<f32>(d, 0);
          d += MR * 4;
        }
        continue;
      }
      let k1 = k0 / k23;
      let k2 = (k0 % k23) / K3;
      let k3 = k0 % K3;
      let off = (m0 + i + r) * sm + k1 * s1 + k2 * s2 + k3 * s3;
      for (let k = 0; k < kc; k++) {
        store<f32>(d, load<f32>(base + (<usize>off << 2)));
        d += MR * 4;
        off += s3;
        if (++k3 == K3) {
          k3 = 0;
          off += s2 - K3 * s3;
          if (++k2 == K2) {
            k2 = 0;
            off += s1 - K2 * s2;
            k1++;
          }
        }
      }
    }
  }
}

/**
 * C (+)= A·B for one block: `ap` holds ceil(mc/MR) packed A micro-panels, `bp` ceil(nc/NR) packed
 * B micro-panels, each kc deep. C's block starts at `c` with rows `ldc` elements apart. With `add`
 * the product is added to C, otherwise it overwrites C (which is then never read: NaN-poisoned
 * memory stays out of the result).
 */
export function gemmBlock(ap: usize, bp: usize, mc: i32, nc: i32, kc: i32, c: usize, ldc: i32, add: bool, scratch: usize): void {
  const ldcBytes = <usize>ldc << 2;
  const aPanel = <usize>(kc * MR * 4);
  const bPanel = <usize>(kc * NR * 4);
  for (let j = 0; j < nc; j += NR) {
    const b = bp + <usize>(j / NR) * bPanel;
    const cols = min(NR, nc - j);
    for (let i = 0; i < mc; i += MR) {
      const rows = min(MR, mc - i);
      const a = ap + <usize>(i / MR) * aPanel;
      const cij = c + <usize>i * ldcBytes + (<usize>j << 2);
      if (rows == MR && cols == NR) {
        micro6x8(a, b, kc, cij, ldcBytes, add);
      } else {
        // Edge: compute the full tile into scratch, then move the part inside C.
        const t = scratch + EDGE_TILE;
        micro6x8(a, b, kc, t, <usize>(NR * 4), false);
        for (let r = 0; r < rows; r++) {
          const src = t + <usize>(r * NR * 4);
          const dst = cij + <usize>r * ldcBytes;
          for (let q = 0; q < cols; q++) {
            const v = load<f32>(src + (<usize>q << 2));
            const at = dst + (<usize>q << 2);
            store<f32>(at, add ? load<f32>(at) + v : v);
          }
        }
      }
    }
  }
}

/** The 6×8 micro-kernel: C[6×8] (+)= Apanel[6×kc] · Bpanel[kc×8]. */
// @ts-ignore: decorator
@inline function micro6x8(a: usize, b: usize, kc: i32, c: usize, ldc: usize, add: bool): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0);
  let c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  let c40 = f32x4.splat(0), c41 = f32x4.splat(0);
  let c50 = f32x4.splat(0), c51 = f32x4.splat(0);
  for (let k = 0; k < kc; k++) {
    const b0 = v128.load(b);
    const b1 = v128.load(b, 16);
    let x = v128.load32_splat(a);
    c00 = madd(x, b0, c00); c01 = madd(x, b1, c01);
    x = v128.load32_splat(a, 4);
    c10 = madd(x, b0, c10); c11 = madd(x, b1, c11);
    x = v128.load32_splat(a, 8);
    c20 = madd(x, b0, c20); c21 = madd(x, b1, c21);
    x = v128.load32_splat(a, 12);
    c30 = madd(x, b0, c30); c31 = madd(x, b1, c31);
    x = v128.load32_splat(a, 16);
    c40 = madd(x, b0, c40); c41 = madd(x, b1, c41);
    x = v128.load32_splat(a, 20);
    c50 = madd(x, b0, c50); c51 = madd(x, b1, c51);
    a += 24;
    b += 32;
  }
  storeRow(c, c00, c01, add); c += ldc;
  storeRow(c, c10, c11, add); c += ldc;
  storeRow(c, c20, c21, add); c += ldc;
  storeRow(c, c30, c31, add); c += ldc;
  storeRow(c, c40, c41, add); c += ldc;
  storeRow(c, c50, c51, add);
}

// @ts-ignore: decorator
@inline function storeRow(c: usize, v0: v128, v1: v128, add: bool): void {
  if (add) {
    v0 = f32x4.add(v128.load(c), v0);
    v1 = f32x4.add(v128.load(c, 16), v1);
  }
  v128.store(c, v0);
  v128.store(c, v1, 16);
}
