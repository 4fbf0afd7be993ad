// Compiled pipelines, keyed by the program's code, entry point and override constants (two
// programs that share a name never share a pipeline). Shader modules and layouts are
// shared: every kernel with the same binding signature uses one bind-group layout.

import type { Access, Constants, Program } from './program';

export class PipelineCache {
  private modules = new Map<string, GPUShaderModule>();
  private layouts = new Map<string, GPUBindGroupLayout>();
  private pipelineLayouts = new Map<string, GPUPipelineLayout>();
  private pipelines = new Map<string, GPUComputePipeline>();

  constructor(private device: GPUDevice) {}

  get(kernel: Program, constants: Constants = {}): GPUComputePipeline {
    const key = `${kernel.codeId}|${kernel.entryPoint}|${constantsKey(constants)}`;
    let p = this.pipelines.get(key);
    if (!p) {
      const sig = signature(kernel.access);
      p = this.device.createComputePipeline({
        label: kernel.name,
        layout: this.pipelineLayout(sig, kernel.access),
        compute: { module: this.module(kernel), entryPoint: kernel.entryPoint, constants: toGPUConstants(constants) },
      });
      this.pipelines.set(key, p);
    }
    return p;
  }

  /** The bind-group layout for kernels whose storage bindings are `buffers`. */
  layout(buffers: readonly Access[]): GPUBindGroupLayout {
    const sig = signature(buffers);
    let l = this.layouts.get(sig);
    if (!l) {
      const entries: GPUBindGroupLayoutEntry[] = [
        { binding: 0, visibility: 4 /* COMPUTE */, buffer: { type: 'uniform', hasDynamicOffset: true } },
      ];
      buffers.forEach((a, i) =>
        entries.push({
          binding: i + 1,
          visibility: 4,
          buffer: { type: a === 'read' ? 'read-only-storage' : 'storage' },
        }),
      );
      l = this.device.createBindGroupLayout({ label: sig, entries });
      this.layouts.set(sig, l);
    }
    return l;
  }

  get size(): number {
    return this.pipelines.size;
  }

  private pipelineLayout(sig: string, buffers: readonly Access[]): GPUPipelineLayout {
    let pl = this.pipelineLayouts.get(sig);
    if (!pl) {
      pl = this.device.createPipelineLayout({ bindGroupLayouts: [this.layout(buffers)] });
      this.pipelineLayouts.set(sig, pl);
    }
    return pl;
  }

  private module(kernel: Program): GPUShaderModule {
    let m = this.modules.get(kernel.code);
    if (!m) {
      m = this.device.createShaderModule({ label: kernel.name, code: kernel.code });
      this.modules.set(kernel.code, m);
    }
    return m;
  }
}

export function signature(buffers: readonly Access[]): string {
  return 'u' + buffers.map((a) => (a === 'read' ? 'r' : 'w')).join('');
}

function constantsKey(c: Constants): string {
  return Object.keys(c)
    .sort()
    .map((k) => `${k}=${+c[k]!}`)
    .join(',');
}

function toGPUConstants(c: Constants): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k in c) out[k] = +c[k]!;
  return out;
}
