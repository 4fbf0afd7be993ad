// The one way to run a kernel, on either backend: launch(kernel, { bind, params, constants, workgroups }).
// Each binding is a view (bound from an aligned offset: binding.ts) or a whole buffer; params are
// named as in the kernel's WGSL struct. A Params field named `<binding>_offset` receives, unless
// given, the element offset at which that binding's view starts within its bound range — the one
// offset a kernel must add to its indices (never the tensor's own offset, which counts from the
// buffer's start). On WebGPU the executor writes the Params struct and dispatches `workgroups`;
// on the CPU backend it calls the kernel's wasm twin with the same names (the twin ignores what
// only a GPU needs: workgroup counts and sizes, tile shapes).

import type { DeviceBuffer } from '../runtime/device-buffer';
import { runtime } from '../runtime/device';
import type { Constants } from '../runtime/program';
import { bindView } from './binding';
import type { Kernel } from './kernel';
import type { ParamValues } from './params';
import type { View } from './view';

export type Binding = View | DeviceBuffer;

export interface LaunchArgs {
  /** One entry per binding of the kernel, by name. */
  bind: Readonly<Record<string, Binding>>;
  params?: ParamValues;
  constants?: Constants;
  /** Workgroups to run; folded into a 2-D/3-D grid when past the per-dimension limit. */
  workgroups: number;
}

/** Run `kernel`; `op` names the op in errors (a view too large to bind, say). */
export function launch(kernel: Kernel, args: LaunchArgs, op = kernel.name): void {
  const values: Record<string, ParamValues[string]> = { ...args.params };
  for (const name in values) {
    if (!kernel.fields.has(name)) throw new Error(`${kernel.name}: its Params has no field "${name}" (fields: ${[...kernel.fields].join(', ') || 'none'})`);
  }
  const buffers = kernel.bindings.map((name) => {
    const b = args.bind[name];
    if (!b) throw new Error(`${kernel.name}: binding "${name}" not given (bindings: ${kernel.bindings.join(', ')})`);
    if (!isView(b)) return b;
    const bound = bindView(op, b, `"${name}" operand`);
    const offsetField = `${name}_offset`;
    if (!(offsetField in values) && kernel.fields.has(offsetField)) values[offsetField] = bound.offset;
    return bound.range;
  });
  for (const name in args.bind) {
    if (!kernel.bindings.includes(name)) throw new Error(`${kernel.name}: has no binding "${name}" (bindings: ${kernel.bindings.join(', ')})`);
  }
  runtime().executor.dispatch(kernel, { constants: args.constants, buffers, values, workgroups: args.workgroups });
}

/** Whether the CPU backend runs the kernels (for the few ops whose algorithm differs there). */
export function cpuBackend(): boolean {
  return runtime().backend === 'wasm';
}

function isView(b: Binding): b is View {
  return typeof (b as View).buffer === 'function';
}
