// wg.autotune(fn): find the kernels and shapes `fn` uses in a dry run, then time the candidate
// configurations of every new shape class (src/kernels/tuning/autotune.ts does the timing).

import { autotuner, type TuneOptions, type TuneResult } from './kernels/tuning/autotune';
import { dryRun } from './memory';
import { tidy } from './scope';

/**
 * Run `fn` once without touching the GPU to find the kernels and shapes it uses, then time the
 * candidate configurations of every new shape class. Later calls of the same ops run tuned.
 * Without `fn`, times the shape classes that ops already met (a Trainer's steps leave them).
 */
export async function autotune(fn?: (() => unknown) | null, options?: TuneOptions): Promise<TuneResult[]> {
  const t = autotuner();
  if (!t.enabled) return [];
  if (fn) dryRun(() => tidy(() => void fn()));
  return t.tune(options);
}
