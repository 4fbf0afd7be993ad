// Which matmul kernel runs on this adapter, with which tile and workgroup sizes. Two families
// (shaders/matmul.wgsl): `direct` (no workgroup memory; best on software adapters such as
// SwiftShader) and `staged` (tiles through workgroup memory; usually best on GPUs), plus the
// one-output-per-invocation `naive` baseline. matmulConfigs() lists every configuration the
// device's limits allow, for an autotuner to time; defaultMatmulConfig() is the choice without
// timing; setMatmulConfig() forces one (benchmarks, tests, a tuner's verdict).

import { runtime, type DeviceInfo } from '../../runtime/device';
import { LimitError } from '../../runtime/errors';
import type { EngineLimits } from '../../runtime/limits';

export type MatmulFamily = 'direct' | 'staged' | 'shared' | 'naive';

export interface MatmulConfig {
  family: MatmulFamily;
  /** Invocations per workgroup along N (columns of C) and along M (rows). */
  wgX: number;
  wgY: number;
  /** Rows and columns of C per invocation: 4 or 8 (16×8 for shared, 1 for naive). */
  tm: number;
  tn: number;
  /** staged: how many k the slices in workgroup memory hold (a multiple of 4); 0 otherwise. */
  bk: number;
}

/** Tiles per invocation that the kernels implement (each is TM×TN, in 4×4 register blocks). */
const TILES: readonly [number, number][] = [
  [4, 4],
  [8, 4],
  [4, 8],
  [8, 8],
];

/** Workgroup shapes tried: 64, 128 and 256 invocations, wide along N (neighbours share A rows). */
const WORKGROUPS: readonly [number, number][] = [
  [16, 4],
  [8, 8],
  [32, 4],
  [16, 8],
  [32, 8],
  [16, 16],
];

const SLICE_DEPTHS = [8, 16, 32];

/** The families with tiles and workgroup shapes to choose. */
export type TiledFamily = Exclude<MatmulFamily, 'naive'>;

/** The shared family's tile (shaders/matmul_shared.wgsl): 16 rows shared by a quad × 8 columns. */
const SHARED_TILE: readonly [number, number] = [16, 8];

/**
 * The default on software adapters, measured on Dawn + SwiftShader (2 cores, scripts/kernel-gflops.ts):
 * there every storage load is a per-lane gather that costs more than the arithmetic, so what counts
 * is loads per multiply-add. The shared family's 16×8 tile with A shared across a quad loads 12
 * values per 128 multiply-adds; the direct family's 8×8 tile loads 16 per 64. At 1024² the shared
 * family ran 2.9–3.1 GFLOP/s (1.5–1.6 per CPU-second) against 2.0–2.2 for direct 8×8 and
 * 1.6–1.8 for direct 4×4; workgroup shapes differed by less than the noise.
 */
const DEFAULT_SOFTWARE: MatmulConfig = { family: 'shared', wgX: 8, wgY: 8, tm: 16, tn: 8, bk: 0 };

/** 64×64 tiles of C per workgroup, 16-deep slices (8.5 KiB): fits WebGPU's default limits. */
const DEFAULT_STAGED: MatmulConfig = { family: 'staged', wgX: 16, wgY: 16, tm: 4, tn: 4, bk: 16 };

export const NAIVE_CONFIG: MatmulConfig = { family: 'naive', wgX: 64, wgY: 1, tm: 1, tn: 1, bk: 0 };

/** Bytes of workgroup memory a staged configuration needs: bk rows of A and B, each padded by a vec4. */
export function stagedStorageBytes(c: MatmulConfig): number {
  return (c.wgY * c.tm + 4 + c.wgX * c.tn + 4) * c.bk * 4;
}

/** Why `c` cannot run on a device with `limits`, or null when it can. */
export function invalidReason(c: MatmulConfig, limits: EngineLimits): string | null {
  const tiles = c.family === 'naive' ? [[1, 1]] : c.family === 'shared' ? [SHARED_TILE] : TILES;
  if (!tiles.some(([m, n]) => m === c.tm && n === c.tn)) {
    return `a ${c.tm}×${c.tn} tile per invocation is not implemented by the ${c.family} kernel`;
  }
  if (c.family === 'naive' && c.wgY !== 1) return 'the naive kernel takes a one-dimensional workgroup (wgY = 1)';
  if (c.wgX * c.wgY > limits.maxComputeInvocationsPerWorkgroup) {
    return `${c.wgX}×${c.wgY} invocations exceed maxComputeInvocationsPerWorkgroup (${limits.maxComputeInvocationsPerWorkgroup})`;
  }
  if (c.wgX > limits.maxComputeWorkgroupSizeX || c.wgY > limits.maxComputeWorkgroupSizeY) {
    return `workgroup ${c.wgX}×${c.wgY} exceeds maxComputeWorkgroupSizeX/Y (${limits.maxComputeWorkgroupSizeX}×${limits.maxComputeWorkgroupSizeY})`;
  }
  if (c.family === 'shared') {
    if (c.wgX % 4 !== 0) return `the shared kernel's quads lie along N: wgX = ${c.wgX} is not a multiple of 4`;
    const bytes = c.wgX * c.wgY * 16;
    if (bytes > limits.maxComputeWorkgroupStorageSize) {
      return `sharing through workgroup memory needs ${bytes} bytes, more than maxComputeWorkgroupStorageSize (${limits.maxComputeWorkgroupStorageSize})`;
    }
  }
  if (c.family === 'staged') {
    if (c.bk <= 0 || c.bk % 4 !== 0) return `slice depth bk = ${c.bk} is not a positive multiple of 4`;
    const bytes = stagedStorageBytes(c);
    if (bytes > limits.maxComputeWorkgroupStorageSize) {
      return `its slices need ${bytes} bytes of workgroup memory, more than maxComputeWorkgroupStorageSize (${limits.maxComputeWorkgroupStorageSize})`;
    }
  }
  return null;
}

/** Every direct, staged and shared configuration the limits allow (the candidates an autotuner times). */
export function matmulConfigs(limits: EngineLimits, family?: TiledFamily): MatmulConfig[] {
  const out: MatmulConfig[] = [];
  for (const f of family ? [family] : (['direct', 'staged', 'shared'] as const)) {
    for (const [wgX, wgY] of WORKGROUPS) {
      for (const [tm, tn] of f === 'shared' ? [SHARED_TILE] : TILES) {
        for (const bk of f === 'staged' ? SLICE_DEPTHS : [0]) {
          const c: MatmulConfig = { family: f, wgX, wgY, tm, tn, bk };
          if (!invalidReason(c, limits)) out.push(c);
        }
      }
    }
  }
  return out;
}

/** The configuration used without measurement: direct on a software adapter, staged otherwise. */
export function defaultMatmulConfig(info: DeviceInfo): MatmulConfig {
  const c = info.adapterInfo.isFallbackAdapter ? DEFAULT_SOFTWARE : DEFAULT_STAGED;
  if (!invalidReason(c, info.limits)) return c;
  return matmulConfigs(info.limits, c.family as TiledFamily)[0] ?? NAIVE_CONFIG;
}

let forced: MatmulConfig | null = null;

/** Use `c` for every matmul from now on (null: back to the default). Throws if the device cannot run it. */
export function setMatmulConfig(c: MatmulConfig | null): void {
  if (c) {
    const why = invalidReason(c, runtime().limits);
    if (why) throw new LimitError(`matmul: configuration ${describeConfig(c)} cannot run here: ${why}`);
  }
  forced = c ? { ...c } : null;
}

/** The configuration forced with setMatmulConfig, if any. */
export function forcedMatmulConfig(): MatmulConfig | null {
  return forced;
}

/** The configuration matmul uses when neither forced nor tuned. */
export function matmulConfig(): MatmulConfig {
  return forced ?? defaultMatmulConfig(runtime().info);
}

/**
 * What the autotuner times: a short list, since every candidate costs a pipeline compile (1–3 s
 * for staged ones on SwiftShader). A software adapter gets direct tiles only (staged never won
 * there); a GPU gets both families in the shapes that usually win.
 */
export function tuningCandidates(info: DeviceInfo): MatmulConfig[] {
  const wanted: MatmulConfig[] = [];
  for (const [tm, tn] of TILES) {
    for (const [wgX, wgY] of [[8, 8], [16, 4]] as const) wanted.push({ family: 'direct', wgX, wgY, tm, tn, bk: 0 });
  }
  if (!info.adapterInfo.isFallbackAdapter) {
    for (const [tm, tn] of [[4, 4], [8, 8], [8, 4]] as const) {
      for (const [wgX, wgY] of [[16, 16], [8, 8], [16, 8]] as const) {
        for (const bk of [16, 32]) wanted.push({ family: 'staged', wgX, wgY, tm, tn, bk });
      }
    }
  }
  return wanted.filter((c) => !invalidReason(c, info.limits));
}

export function describeConfig(c: MatmulConfig): string {
  if (c.family === 'naive') return `naive wg${c.wgX}`;
  return `${c.family} ${c.tm}x${c.tn} wg${c.wgX}x${c.wgY}${c.family === 'staged' ? ` bk${c.bk}` : ''}`;
}
