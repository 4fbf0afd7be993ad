// How the 16×8-tile kernels (conv2d's and matmul's `shared` family) share an operand among the
// four invocations of a quad: quad swaps where the device has subgroups of at least 4 lanes,
// workgroup memory otherwise. The WGSL for each lives in shaders/share_*.wgsl.

import shareSubgroupWGSL from '../../shaders/share_subgroup.wgsl?raw';
import shareWorkgroupWGSL from '../../shaders/share_workgroup.wgsl?raw';
import { runtime } from '../runtime/device';

export type OperandSharing = 'subgroup' | 'workgroup';

let override: OperandSharing | null = null;

/** @internal tests run the kernels with each kind of sharing, whatever the device. */
export function setOperandSharing(s: OperandSharing | null): void {
  override = s;
}

/** The sharing this device's kernels use. */
export function operandSharing(): OperandSharing {
  if (override) return override;
  const rt = runtime();
  const minLanes = (rt.device as { adapterInfo?: { subgroupMinSize?: number } } | null)?.adapterInfo?.subgroupMinSize ?? 0;
  return rt.hasFeature('subgroups') && minLanes >= 4 ? 'subgroup' : 'workgroup';
}

/** The WGSL that implements `s` (prepended before shaders/tile_16x8.wgsl). */
export function sharingWGSL(s: OperandSharing): string {
  return s === 'subgroup' ? shareSubgroupWGSL : shareWorkgroupWGSL;
}
