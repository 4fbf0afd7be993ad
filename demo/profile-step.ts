// The worker's side of "Profile a step": the page asks, and the next training step runs under
// wg.profile; its per-kernel table goes back to the page (profile-panel.ts shows it).

import * as wg from '../src/index';
import type { StepProfile } from './protocol';

let waiting: ((p: StepProfile) => void)[] = [];

/** The profile of the next training step, once it has run. */
export function nextStepProfile(): Promise<StepProfile> {
  return new Promise((resolve) => waiting.push(resolve));
}

/** Runs one training step, under the profiler if a profile was asked for. */
export async function profiledStep<T>(step: number, fn: () => Promise<T>): Promise<T> {
  if (!waiting.length) return fn();
  const p = await wg.profile(fn);
  const profile: StepProfile = {
    step,
    backend: p.backend,
    timestamps: p.timestamps,
    totalGpuMs: p.totalGpuMs,
    wallMs: p.wallMs,
    dispatches: p.dispatches.length,
    submissions: p.submissions.length,
    kernels: p.kernels,
  };
  const resolve = waiting;
  waiting = [];
  for (const r of resolve) r(profile);
  return p.result;
}
