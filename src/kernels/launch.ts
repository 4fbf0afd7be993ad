// The one way to run a kernel: launch(kernel, { bind, params, constants, workgroups }).
// Each binding is a view (bound from an aligned offset: binding.ts) or a whole buffer; params are
// named as in the kernel's WGSL struct. A Params field named `<binding>_offset` receives, unless
// given, the element offset at which that binding's view starts within its bound range — the one
// offset a kernel must add to its indices (never the tensor's own offset, which counts from the
// buffer's start).

import { runtime } from '../runtime/device';
import type { Constants } from '../runtime/program';
import { bindView } from './binding';
import type { Kernel } from './kernel';
import { encodeParams, type ParamValues } from './params';
import type { View } from './view';

export type Binding = View | GPUBuffer;

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
  const buffers = kernel.bindings.map((name) => {
    const b = args.bind[name];
    if (!b) throw new Error(`${kernel.name}: binding "${name}" not given (bindings: ${kernel.bindings.join(', ')})`);
    if (!isView(b)) return b;
    const bound = bindView(op, b, `"${name}" operand`);
    const offsetField = `${name}_offset`;
    if (!(offsetField in values) && kernel.params?.fields.has(offsetField)) values[offsetField] = bound.offset;
    return bound.range;
  });
  for (const name in args.bind) {
    if (!kernel.bindings.includes(name)) throw new Error(`${kernel.name}: has no binding "${name}" (bindings: ${kernel.bindings.join(', ')})`);
  }
  runtime().executor.dispatch(kernel, {
    constants: args.constants,
    buffers,
    params: encodeParams(kernel.name, kernel.params, values),
    workgroups: args.workgroups,
  });
}

function isView(b: Binding): b is View {
  return typeof (b as View).buffer === 'function';
}
