// Compiling pipelines ahead of their first dispatch: find which ones some code needs (its
// dispatches, real or in a dry run, are recorded), then compile those missing in the background
// with createComputePipelineAsync, all at once, so that an implementation with compiler threads
// uses them. wg.precompile (src/precompile.ts), Trainer.precompile and the autotuner use it.

import { runtime } from './device';
import { GPUValidationError } from './errors';
import { pipelineKey } from './pipeline-cache';
import type { Constants, Program } from './program';

/** A pipeline to compile: a kernel and its override constants. */
export interface PipelineRequest {
  kernel: Program;
  constants: Constants;
}

/** Reported each time a pipeline is ready. */
export interface PrecompileProgress {
  /** Pipelines compiled so far, of how many were missing. */
  compiled: number;
  total: number;
  /** The kernel whose pipeline just became ready (null in the first report, before any is). */
  kernel: string | null;
}

export interface PrecompileOptions {
  onProgress?: (p: PrecompileProgress) => void;
}

/** The pipelines that the dispatches made while `fn` runs (dry runs included) need and that are not compiled yet, each once. */
export function recordPipelines(fn: () => void): PipelineRequest[] {
  const ex = runtime().executor;
  const wanted = new Map<string, PipelineRequest>();
  const outer = ex.pipelineRecorder;
  const pipelines = ex.pipelines;
  ex.pipelineRecorder = (kernel, constants) => {
    outer?.(kernel, constants);
    const key = pipelineKey(kernel, constants);
    // The CPU backend compiles nothing per kernel: nothing is wanted there.
    if (pipelines && !wanted.has(key) && !pipelines.has(kernel, constants)) wanted.set(key, { kernel, constants: { ...constants } });
  };
  try {
    fn();
  } finally {
    ex.pipelineRecorder = outer;
  }
  return [...wanted.values()];
}

/** Compile `wanted` in the background, all at once; resolves (with how many) when every one is ready. */
export async function compilePipelines(wanted: readonly PipelineRequest[], { onProgress }: PrecompileOptions = {}): Promise<number> {
  const cache = runtime().executor.pipelines;
  let compiled = 0;
  if (!cache) return 0;
  if (wanted.length) onProgress?.({ compiled, total: wanted.length, kernel: null });
  await Promise.all(
    wanted.map(({ kernel, constants }) =>
      cache.compile(kernel, constants).then(
        () => onProgress?.({ compiled: ++compiled, total: wanted.length, kernel: kernel.name }),
        (e: unknown) => {
          throw new GPUValidationError(`the pipeline of ${kernel.name} did not compile: ${(e as Error).message ?? e}`);
        },
      ),
    ),
  );
  return compiled;
}
