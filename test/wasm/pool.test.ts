// The wasm pooling kernels against test/reference/pool.ts: max and average, forward and backward
// (the gather over covering windows, and the tiled max backward), with padding, overlapping
// windows, a strided (channels-last) source view, NaN in a window. Outputs poisoned with NaN.

import { describe, expect, it } from 'vitest';
import type { WasmPool } from '../../src/runtime/wasm/pool';
import { avgPool2d, maxPool2d, outShape, type PoolConfig } from '../reference/pool';
import { expectNear, poisoned, randomArray, read, THREADS, upload, usePools } from './helpers';

const CONFIGS: PoolConfig[] = [
  { shape: [2, 3, 9, 9], k: [2, 2], stride: [2, 2], padding: [0, 0] },
  { shape: [1, 2, 17, 13], k: [3, 3], stride: [2, 2], padding: [1, 1] },
  { shape: [3, 1, 7, 8], k: [3, 2], stride: [1, 2], padding: [1, 0] },
  { shape: [1, 1, 1, 1], k: [1, 1], stride: [1, 1], padding: [0, 0] },
];

function run(pool: WasmPool, cfg: PoolConfig, channelsLast: boolean, seed: number): void {
  const [N, C, H, W] = cfg.shape;
  const [, , OH, OW] = outShape(cfg);
  const x = randomArray(N * C * H * W, seed);
  x[3] = NaN;
  // Stored NHWC when channelsLast: strides (N, C, H, W) = (HWC, 1, WC, C).
  const strides = channelsLast ? [H * W * C, 1, W * C, C] : [C * H * W, H * W, W, 1];
  const stored = new Float32Array(x.length);
  for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) for (let h = 0; h < H; h++) for (let w = 0; w < W; w++) {
    stored[n * strides[0]! + c * strides[1]! + h * strides[2]! + w * strides[3]!] = x[((n * C + c) * H + h) * W + w]!;
  }
  const geo = { channels: C, in_h: H, in_w: W, out_h: OH, out_w: OW, k_h: cfg.k[0], k_w: cfg.k[1], s_h: cfg.stride[0], s_w: cfg.stride[1], p_h: cfg.padding[0], p_w: cfg.padding[1] };
  const outN = N * C * OH * OW, inN = N * C * H * W;
  const xAt = upload(pool, [0, ...stored]);
  const what = `${JSON.stringify(cfg)}${channelsLast ? ' NHWC' : ''}`;

  // Outputs one element into their buffers; argmax starts at element 0.
  const offsets = { src_offset: 1, out_offset: 1, argmax_offset: 0, dx_offset: 0 };
  const outAt = poisoned(pool, outN + 1), argAt = poisoned(pool, outN);
  pool.runSync('max_pool_forward', { bind: { src: xAt, out: outAt, argmax: argAt }, params: { ...geo, total: outN, src_strides: strides, ...offsets } });
  expectNear(read(pool, outAt + 4, outN), maxPool2d(x, cfg), 0, `max ${what}`);
  const avgAt = poisoned(pool, outN + 1);
  pool.runSync('avg_pool_forward', { bind: { src: xAt, out: avgAt }, params: { ...geo, total: outN, src_strides: strides, ...offsets } });
  const avg = avgPool2d(x, cfg);
  expectNear(read(pool, avgAt + 4, outN), avg, Float64Array.from(avg, (v) => Math.abs(v) * 1e-6 + 1e-7), `avg ${what}`);

  // Backward: the gradient contiguous, dx gathered from every window covering each element.
  const g = randomArray(outN, seed + 1);
  const gAt = upload(pool, g);
  const args = pool.i32(argAt, outN).slice();
  const wantMax = new Float64Array(inN), wantAvg = new Float64Array(inN);
  for (let i = 0; i < outN; i++) {
    const plane = Math.floor(i / (OH * OW));
    if (args[i]! >= 0) wantMax[plane * H * W + args[i]!]! += g[i]!;
    const oh = Math.floor(i / OW) % OH, ow = i % OW;
    for (let di = 0; di < cfg.k[0]; di++) for (let dj = 0; dj < cfg.k[1]; dj++) {
      const y = oh * cfg.stride[0] - cfg.padding[0] + di, xx = ow * cfg.stride[1] - cfg.padding[1] + dj;
      if (y >= 0 && y < H && xx >= 0 && xx < W) wantAvg[plane * H * W + y * W + xx]! += g[i]! / (cfg.k[0] * cfg.k[1]);
    }
  }
  const contiguous = [C * OH * OW, OH * OW, OW, 1];
  const back = { src_offset: 0, out_offset: 0, argmax_offset: 0, dx_offset: 2 };
  const dxAt = poisoned(pool, inN + 2);
  pool.runSync('max_pool_backward', { bind: { src: gAt, argmax: argAt, dx: dxAt }, params: { ...geo, total: inN, src_strides: contiguous, ...back } });
  expectNear(read(pool, dxAt + 8, inN), wantMax, 1e-6, `max backward ${what}`);
  const tiles = cfg.padding[0] === 0 && cfg.padding[1] === 0 && cfg.k[0] === cfg.stride[0] && cfg.k[1] === cfg.stride[1] && H % cfg.k[0] === 0 && W % cfg.k[1] === 0;
  if (tiles) {
    const tiledAt = poisoned(pool, inN + 2);
    pool.runSync('max_pool_backward_tiled', { bind: { src: gAt, argmax: argAt, dx: tiledAt }, params: { ...geo, total: outN, src_strides: contiguous, ...back } });
    expectNear(read(pool, tiledAt + 8, inN), wantMax, 0, `max backward tiled ${what}`);
    pool.heap.release(tiledAt);
  }
  const davgAt = poisoned(pool, inN + 2);
  pool.runSync('avg_pool_backward', { bind: { src: gAt, dx: davgAt }, params: { ...geo, total: inN, src_strides: contiguous, ...back } });
  expectNear(read(pool, davgAt + 8, inN), wantAvg, 1e-6, `avg backward ${what}`);
  for (const at of [xAt, outAt, argAt, avgAt, gAt, dxAt, davgAt]) pool.heap.release(at);
}

describe('wasm pooling', () => {
  const pools = usePools();
  for (const threads of THREADS) {
    it(`max and average, forward and backward (${threads} thread${threads > 1 ? 's' : ''})`, () => {
      const pool = pools.get(threads)!;
      CONFIGS.forEach((cfg, i) => run(pool, cfg, i % 2 === 1, 10 * i + threads));
      // 2×2 on 9×9 does not tile; a 2×2 pool on 8×8 does.
      run(pool, { shape: [2, 3, 8, 8], k: [2, 2], stride: [2, 2], padding: [0, 0] }, false, 99);
      expect(pool.threads).toBe(threads);
    });
  }
});
