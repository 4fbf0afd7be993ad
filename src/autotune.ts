// wg.autotune(fn): find the kernels and shapes `fn` uses in a dry run, then time the candidate
// configurations of every new shape class (src/kernels/tuning/autotune.ts does the timing).

import { autotuner, type TuneResult } from './kernels/tuning/autotune';
import { dryRun } from './memory';
import { tidy } from './scope';

/**
 * Run `fn` once without touching the GPU to find the kernels and shapes it uses, then time the
 * candidate configurations of every new shape class. Later calls of the same ops run tuned.
 */
export async function autotune(fn: () => unknown, onProgress?: (r: TuneResult) => void): Promise<TuneResult[]> {
  const t = autotuner();
  if (!t.enabled) return [];
  dryRun(() => tidy(() => void fn()));
  return t.tune(onProgress);
}
