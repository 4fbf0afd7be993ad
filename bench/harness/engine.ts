// What the benchmark asks of an engine: set a work item up (untimed), then run it again and again.

import type { AttentionData, AttentionWork, GptData, GptWork, CnnWork, ConvData, ConvWork, EngineName, LayerNormWork, MatmulData, MatmulWork, MlpWork, NormData, StepData, Work, WorkData } from './workloads';

export interface Engine {
  readonly name: EngineName;
  /** How it runs, when it says (webgrad: its backend, threads and SIMD). */
  readonly about?: string;
  /** Upload the data and build what the runs need; nothing here is timed. */
  prepare(work: Work, data: WorkData<Work>): Promise<Prepared>;
}

export interface Prepared {
  /**
   * One timed run. It ends by reading a result back to the CPU after every GPU command of the
   * run has finished, and returns a number that should agree across engines: the loss of a
   * training step (before its update), or the first element of the result.
   */
  run(): Promise<number>;
  /** The last run's own time when the engine measured it (one in a Worker, without the message round trip). */
  measuredMs?(): number | undefined;
  dispose(): void;
}

/** An engine that is loaded (its module imported, its device opened) only when first needed. */
export interface EngineSource {
  name: EngineName;
  load: () => Promise<Engine>;
}

/** How an engine prepares each kind of work item. */
export interface Preparers {
  matmul(work: MatmulWork, data: MatmulData): Prepared | Promise<Prepared>;
  conv2d(work: ConvWork, data: ConvData): Prepared | Promise<Prepared>;
  mlp(work: MlpWork, data: StepData): Prepared | Promise<Prepared>;
  cnn(work: CnnWork, data: StepData): Prepared | Promise<Prepared>;
  layernorm(work: LayerNormWork, data: NormData): Prepared | Promise<Prepared>;
  attention(work: AttentionWork, data: AttentionData): Prepared | Promise<Prepared>;
  gpt(work: GptWork, data: GptData): Prepared | Promise<Prepared>;
}

/** An engine that hands each work item to the preparer of its kind. */
export function engine(name: EngineName, about: string | undefined, p: Preparers): Engine {
  return {
    name,
    about,
    async prepare(work: Work, data: WorkData<Work>): Promise<Prepared> {
      switch (work.kind) {
        case 'matmul':
          return p.matmul(work, data as MatmulData);
        case 'conv2d':
          return p.conv2d(work, data as ConvData);
        case 'mlp':
          return p.mlp(work, data as StepData);
        case 'cnn':
          return p.cnn(work, data as StepData);
        case 'layernorm':
          return p.layernorm(work, data as NormData);
        case 'attention':
          return p.attention(work, data as AttentionData);
        case 'gpt':
          return p.gpt(work, data as GptData);
      }
    },
  };
}
