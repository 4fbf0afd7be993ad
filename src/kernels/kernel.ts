// A kernel is one WGSL entry point and the shape of its bindings. Every kernel follows one layout:
//   @group(0) @binding(0) var<uniform> p: Params;        (a slot of the per-batch params buffer)
//   @group(0) @binding(1..n) var<storage, read|read_write> ...;   (in the order of `buffers`)
// and computes its flat workgroup index as
//   let wid = wg.x + wg.y * nwg.x + wg.z * nwg.x * nwg.y;
// from @builtin(workgroup_id) wg and @builtin(num_workgroups) nwg, because the runtime folds
// large dispatches into 2-D/3-D grids (see fold() in executor.ts). A kernel returns early for
// wid at or past its own workgroup count, since folding can round the grid up.

export type Access = 'read' | 'write';

export interface Kernel {
  /** Name used in errors and the profiler, e.g. "matmul.direct". */
  readonly name: string;
  readonly code: string;
  readonly entryPoint: string;
  /** Storage bindings 1..n: 'read' is read-only storage, 'write' is read_write storage. */
  readonly buffers: readonly Access[];
}

export function defineKernel(name: string, code: string, buffers: readonly Access[], entryPoint = 'main'): Kernel {
  return { name, code, entryPoint, buffers };
}

/** Values for a kernel's `override` constants (booleans become true/false overrides). */
export type Constants = Record<string, number | boolean>;
