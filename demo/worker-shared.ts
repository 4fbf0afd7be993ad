// What both training workers (worker.ts for the digits, text-worker.ts for text) do alike:
// start the backend and describe it, keep kernel tuning results in IndexedDB, run GPU work one
// piece at a time, tune kernels between steps with progress, measure a rate, and describe a plan.

import * as wg from '../src/index';
import { setTuningStore } from '../src/kernels/tuning/tuning-store';
import type { PlanInfo } from './protocol';
import { loadTuning, storeTuning, type TuningResults } from './storage';

/** The device messages both protocols share. */
export type DeviceMessage =
  | { type: 'device'; info: wg.DeviceInfo }
  | { type: 'adapters'; adapters: wg.AdapterSummary[] }
  | { type: 'unavailable'; message: string };

/**
 * Starts `backend` (tuning results kept in IndexedDB first, so a later visit starts tuned) and
 * reports the device; null when WebGPU was asked for and is missing (the page was told why).
 */
export async function startBackend(backend: wg.BackendChoice, send: (msg: DeviceMessage) => void): Promise<wg.DeviceInfo | null> {
  await keepTuningResults();
  let info: wg.DeviceInfo;
  try {
    info = await wg.init({ backend });
  } catch (e) {
    if (e instanceof wg.WebGPUUnavailableError) {
      send({ type: 'unavailable', message: e.message });
      return null;
    }
    throw e;
  }
  send({ type: 'device', info });
  void wg.adapters().then((adapters) => send({ type: 'adapters', adapters }), () => undefined);
  return info;
}

/**
 * Kernel tuning results live in IndexedDB (read before the device starts, written as they come): a
 * Worker has no localStorage. Both modes' workers tune, so each write adds to what is stored
 * rather than replacing it with this worker's view.
 */
async function keepTuningResults(): Promise<void> {
  let results = await loadTuning().catch(() => ({}));
  setTuningStore({
    load: () => results,
    save: (all) => {
      results = all;
      loadTuning()
        .then((stored) => storeTuning(mergeTuning(stored, all)))
        .catch(() => undefined); // storage full or denied: tuned for this visit only
    },
  });
}

/** `stored` with `fresh`'s winners added, adapter by adapter (fresh wins where both have a kernel). */
function mergeTuning(stored: TuningResults, fresh: TuningResults): TuningResults {
  const out: TuningResults = { ...stored };
  for (const [adapter, winners] of Object.entries(fresh)) out[adapter] = { ...stored[adapter], ...winners };
  return out;
}

/** GPU work runs one piece at a time, so a prediction or a sample never lands in the middle of a step. */
let gpuQueue: Promise<unknown> = Promise.resolve();
export function exclusive<T>(fn: () => Promise<T>): Promise<T> {
  const run = gpuQueue.then(fn, fn);
  gpuQueue = run.catch(() => undefined);
  return run;
}

/**
 * Times the kernels' configurations for shape classes met since the last call (the first step,
 * an evaluation, a sample), reporting each as `detail` and the share done. Returns whether any
 * was tuned.
 */
export async function tuneKernels(signal: AbortSignal, report: (detail: string, share: number) => void): Promise<boolean> {
  let tuned = false;
  await exclusive(() =>
    wg.autotune(null, {
      signal,
      onProgress: (p) => {
        tuned = true;
        const share = (p.problem - 1 + p.candidate / p.candidates) / p.problems;
        report(`Tuning GPU kernels for this adapter: ${p.kernel} ${p.problem}/${p.problems}…`, share);
      },
    }),
  );
  return tuned;
}

/**
 * Lets the worker's messages in (Pause, a prompt, a drawing). On the CPU backend a Worker's kernels
 * wait for their threads with Atomics.wait, so a whole training step can finish in microtasks
 * without the event loop ever taking the next message: a loop of steps calls this between them.
 * (A MessagePort's message, not setTimeout, which clamps nested timers to 4 ms.)
 */
export function yieldToMessages(): Promise<void> {
  return new Promise((resolve) => {
    const { port1, port2 } = new MessageChannel();
    port1.onmessage = () => {
      port1.close();
      resolve();
    };
    port2.postMessage(null);
  });
}

/** Items (samples, tokens) per second over the last `window` measurements. */
export class RateMeter {
  private readonly counts: number[] = [];
  private readonly ms: number[] = [];
  constructor(private readonly window: number) {}
  add(count: number, ms: number): void {
    this.counts.push(count);
    this.ms.push(ms);
    if (this.counts.length > this.window) {
      this.counts.shift();
      this.ms.shift();
    }
  }
  perSecond(): number {
    const ms = this.ms.reduce((a, b) => a + b, 0);
    return ms > 0 ? (this.counts.reduce((a, b) => a + b, 0) * 1000) / ms : 0;
  }
}

export function planInfo(batchSize: number, p: wg.Plan): PlanInfo {
  return {
    batchSize,
    microBatchSize: p.microBatchSize,
    microBatches: p.microBatches,
    estimatedPeakBytes: p.estimatedPeakBytes,
    budgetBytes: p.budgetBytes,
    reason: p.reason,
  };
}
