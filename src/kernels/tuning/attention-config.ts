// How the fused attention kernels (shaders/attention*.wgsl) run on this adapter: whether the four
// invocations of a quad share the loads of the streamed operand (keys and values forward and for
// dQ, queries and output gradients for dK/dV), and how many invocations a workgroup has (each
// computes 4 rows, so a workgroup covers 4·wg rows; causal workgroups stop at their last row's
// diagonal, so smaller workgroups waste less above it). The autotuner times the candidates per
// shape class; defaultAttentionConfig() is the choice without timing, setAttentionConfig() forces
// one (tests run every variant, benchmarks compare them).

import { runtime, type DeviceInfo } from '../../runtime/device';
import { LimitError } from '../../runtime/errors';
import type { EngineLimits } from '../../runtime/limits';

export interface AttentionConfig {
  /** Share the streamed operand's loads within quads (share_*.wgsl) instead of each invocation loading all four rows. */
  shared: boolean;
  /** Invocations per workgroup: a multiple of 4 (the quads). */
  wg: number;
}

const WORKGROUPS = [4, 8, 16, 32, 64];

/**
 * Software adapters (measured on Dawn + SwiftShader, 2 cores, bench/attention.ts): every storage
 * load is an emulated per-lane gather, so sharing them within the quad is what counts; small
 * workgroups waste less work above the causal diagonal.
 */
const DEFAULT_SOFTWARE: AttentionConfig = { shared: true, wg: 8 };
/** GPUs, untimed: quads share loads (quad swaps where subgroups exist), 64 rows per workgroup. */
const DEFAULT_GPU: AttentionConfig = { shared: true, wg: 16 };

/** Why `c` cannot run with `limits`, or null when it can. */
export function invalidAttentionReason(c: AttentionConfig, limits: EngineLimits): string | null {
  if (!Number.isInteger(c.wg) || c.wg < 4 || c.wg % 4 !== 0) return `a workgroup of ${c.wg} invocations is not a positive multiple of 4`;
  if (c.wg > Math.min(limits.maxComputeInvocationsPerWorkgroup, limits.maxComputeWorkgroupSizeX)) {
    return `${c.wg} invocations exceed maxComputeInvocationsPerWorkgroup/maxComputeWorkgroupSizeX (${limits.maxComputeInvocationsPerWorkgroup}/${limits.maxComputeWorkgroupSizeX})`;
  }
  if (c.shared && c.wg * 16 > limits.maxComputeWorkgroupStorageSize) {
    return `sharing through workgroup memory needs ${c.wg * 16} bytes, more than maxComputeWorkgroupStorageSize (${limits.maxComputeWorkgroupStorageSize})`;
  }
  return null;
}

/** Every configuration the limits allow (what the autotuner times). */
export function attentionConfigs(limits: EngineLimits): AttentionConfig[] {
  const out: AttentionConfig[] = [];
  for (const shared of [true, false]) {
    for (const wg of WORKGROUPS) {
      const c = { shared, wg };
      if (!invalidAttentionReason(c, limits)) out.push(c);
    }
  }
  return out;
}

/**
 * What the autotuner times. Every candidate compiles three kernels (forward, dQ, dK/dV), which takes
 * seconds each on a software adapter: there only the two measured best (bench/attention.ts:
 * sharing in quads, 4 or 8 invocations a workgroup; 16 and more waste work above the causal
 * diagonal, and no sharing ran 1.7× slower); a GPU gets every configuration its limits allow.
 */
export function attentionTuningCandidates(info: DeviceInfo): AttentionConfig[] {
  const all = attentionConfigs(info.limits);
  if (!info.adapterInfo.isFallbackAdapter) return all;
  return all.filter((c) => c.shared && c.wg <= 8);
}

export function defaultAttentionConfig(info: DeviceInfo): AttentionConfig {
  const c = info.adapterInfo.isFallbackAdapter ? DEFAULT_SOFTWARE : DEFAULT_GPU;
  return invalidAttentionReason(c, info.limits) ? attentionConfigs(info.limits)[0]! : c;
}

let forced: AttentionConfig | null = null;

/** Use `c` for every attention kernel from now on (null: back to the default or the tuner's pick). */
export function setAttentionConfig(c: AttentionConfig | null): void {
  if (c) {
    const why = invalidAttentionReason(c, runtime().limits);
    if (why) throw new LimitError(`scaledDotProductAttention: configuration ${describeAttentionConfig(c)} cannot run here: ${why}`);
  }
  forced = c ? { ...c } : null;
}

export function forcedAttentionConfig(): AttentionConfig | null {
  return forced;
}

export function describeAttentionConfig(c: AttentionConfig): string {
  return `${c.shared ? 'shared' : 'direct'} wg${c.wg}`;
}
