// wg.precompile(fn): compile the GPU pipelines that `fn` would dispatch ahead of time and in the
// background, so that its first real run does not stop while the driver compiles them one by one
// (seconds on a software adapter; a visible stall on GPUs too). A dry run of `fn` (no allocation,
// no dispatch) finds them (runtime/pipeline-compiler.ts compiles them).

import { compilePipelines, recordPipelines, type PrecompileOptions } from './runtime/pipeline-compiler';
import { dryRun } from './memory';
import { tidy } from './scope';

export type { PrecompileOptions, PrecompileProgress } from './runtime/pipeline-compiler';

/**
 * Run `fn` once without touching the GPU and compile, in the background, the pipelines of every
 * kernel it dispatches that is not compiled yet. Resolves (with how many it compiled) when all
 * are ready; later runs of `fn` find them.
 */
export async function precompile(fn: () => unknown, options: PrecompileOptions = {}): Promise<number> {
  return compilePipelines(
    recordPipelines(() => dryRun(() => tidy(() => void fn()))),
    options,
  );
}
