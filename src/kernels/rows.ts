// How the row reductions (sum, max, mean, softmax, cross-entropy, the gradient statistics of
// clipGradNorm and loss scaling) combine the lanes of a row: with subgroup operations where the
// device has `subgroups`, through a tree in workgroup memory otherwise. The kernels are written
// once; the variant is a part prepended to their module (shaders/rows_*.wgsl).

import rowsSubgroupWGSL from '../../shaders/rows_subgroup.wgsl?raw';
import rowsTreeWGSL from '../../shaders/rows_tree.wgsl?raw';
import rowsWorkgroupWGSL from '../../shaders/rows_workgroup.wgsl?raw';
import { runtime } from '../runtime/device';
import { defineKernel, type Access, type Kernel } from './kernel';

export type RowCombine = 'subgroup' | 'workgroup';

/** WebGPU's largest subgroup size, assumed when the adapter does not report its own. */
const MAX_SUBGROUP_SIZE = 128;

let combineOverride: RowCombine | null = null;

/** @internal tests run the kernels with each variant, whatever the device. */
export function setRowCombine(c: RowCombine | null): void {
  combineOverride = c;
}

/** The largest subgroup the adapter may run (lanes per row are at least this in the subgroup variant). */
export function subgroupMaxSize(): number {
  const info = (runtime().device as { adapterInfo?: { subgroupMaxSize?: number } } | null)?.adapterInfo;
  return info?.subgroupMaxSize || MAX_SUBGROUP_SIZE;
}

/** Subgroups where the device has them and a workgroup can hold its largest subgroup. */
export function rowCombine(): RowCombine {
  if (combineOverride) return combineOverride;
  const rt = runtime();
  const l = rt.limits;
  const fits = subgroupMaxSize() <= Math.min(l.maxComputeInvocationsPerWorkgroup, l.maxComputeWorkgroupSizeX);
  return rt.hasFeature('subgroups') && fits ? 'subgroup' : 'workgroup';
}

/**
 * Lanes per row for the current variant: the subgroup variant needs a row that is split at all to
 * span whole subgroups (shaders/rows_subgroup.wgsl), so 2 … subgroupMaxSize−1 lanes are rounded
 * up; lanes that are not adjacent invocations (column reductions) use the tree anyway.
 */
export function rowLanes(lanes: number, lanesFast: boolean): number {
  if (lanes <= 1 || !lanesFast || rowCombine() === 'workgroup') return lanes;
  return Math.max(lanes, subgroupMaxSize());
}

const kernels = new Map<string, Kernel>();

/**
 * Entry point `entry` of `code` (a file whose first line is
 * `// @prepend rows_subgroup.wgsl|rows_workgroup.wgsl rows_tree.wgsl`), assembled for the current
 * variant, with the storage bindings `bindings` (in binding order). `code` may be a list: parts
 * the op chose (e.g. width4.wgsl), then the kernel file; `name` must tell such assemblies apart.
 * `wasm`: its twin on the CPU backend (see defineKernel).
 */
export function rowKernel(name: string, code: string | readonly string[], entry: string, bindings: Readonly<Record<string, Access>>, wasm?: string): Kernel {
  const c = rowCombine();
  const key = `${name}|${entry}|${c}`;
  let k = kernels.get(key);
  if (!k) {
    const parts = typeof code === 'string' ? [code] : code;
    k = defineKernel(`${name}/${c}`, { code: [c === 'subgroup' ? rowsSubgroupWGSL : rowsWorkgroupWGSL, rowsTreeWGSL, ...parts], entry, bindings, wasm });
    kernels.set(key, k);
  }
  return k;
}
