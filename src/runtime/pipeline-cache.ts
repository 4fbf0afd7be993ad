// Compiled pipelines, keyed by the program's code, entry point and override constants (two
// programs that share a name never share a pipeline). Shader modules and layouts are
// shared: every kernel with the same binding signature uses one bind-group layout.
// get() compiles on first use, which stalls the queue while the driver compiles; compile() does it
// ahead of time with createComputePipelineAsync (in the background, several at once where the
// implementation can), so that the first run of a kernel finds its pipeline ready.

import type { Access, Constants, Program } from './program';

export class PipelineCache {
  private modules = new Map<string, GPUShaderModule>();
  private layouts = new Map<string, GPUBindGroupLayout>();
  private pipelineLayouts = new Map<string, GPUPipelineLayout>();
  private pipelines = new Map<string, GPUComputePipeline>();
  /** Pipelines being compiled by compile(), by key. */
  private compiling = new Map<string, Promise<void>>();

  constructor(private device: GPUDevice) {}

  get(kernel: Program, constants: Constants = {}): GPUComputePipeline {
    const key = pipelineKey(kernel, constants);
    let p = this.pipelines.get(key);
    if (!p) {
      p = this.device.createComputePipeline(this.descriptor(kernel, constants));
      this.pipelines.set(key, p);
    }
    return p;
  }

  /** Whether get() would find this pipeline compiled. */
  has(kernel: Program, constants: Constants = {}): boolean {
    return this.pipelines.has(pipelineKey(kernel, constants));
  }

  /** Compile a pipeline in the background (createComputePipelineAsync); resolves once get() finds it. */
  compile(kernel: Program, constants: Constants = {}): Promise<void> {
    const key = pipelineKey(kernel, constants);
    if (this.pipelines.has(key)) return Promise.resolve();
    let done = this.compiling.get(key);
    if (!done) {
      done = this.device
        .createComputePipelineAsync(this.descriptor(kernel, constants))
        .then((p) => {
          // get() may have compiled it meanwhile (a dispatch did not wait): keep that one.
          if (!this.pipelines.has(key)) this.pipelines.set(key, p);
        })
        .finally(() => this.compiling.delete(key));
      this.compiling.set(key, done);
    }
    return done;
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

  private descriptor(kernel: Program, constants: Constants): GPUComputePipelineDescriptor {
    return {
      label: kernel.name,
      layout: this.pipelineLayout(signature(kernel.access), kernel.access),
      compute: { module: this.module(kernel), entryPoint: kernel.entryPoint, constants: toGPUConstants(constants) },
    };
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

/** What a pipeline is cached under. */
export function pipelineKey(kernel: Program, constants: Constants): string {
  return `${kernel.codeId}|${kernel.entryPoint}|${constantsKey(constants)}`;
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
