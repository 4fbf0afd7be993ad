// What the benchmark asks of an engine: set a work item up (untimed), then run it again and again.

import type { EngineName, Work, WorkData } from './workloads';

export interface Engine {
  readonly name: EngineName;
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
  dispose(): void;
}

/** An engine that is loaded (its module imported, its device opened) only when first needed. */
export interface EngineSource {
  name: EngineName;
  load: () => Promise<Engine>;
}
