// The autotuner: picks, per kernel and shape class, the fastest of the configurations the device's
// limits allow, by timing them. Ops are synchronous, so tuning cannot happen inside the op call:
// an op asks pick() for its configuration (the tuned winner, or the untimed default) and, the
// first time a shape class is seen, leaves a problem to time; tune() — awaited by the Trainer
// before each step but its first, or by wg.autotune() — times the waiting problems, reporting
// each candidate timed. Winners are cached per adapter in memory and persisted (tuning-store.ts),
// so the next run starts tuned.
// With tuning off (init({ autotune: false }), and always on the CPU backend, whose kernels have no
// configurations), pick() always returns the default: deterministic.

import { runtime, type Runtime } from '../../runtime/device';
import { compilePipelines, recordPipelines } from '../../runtime/pipeline-compiler';
import { tuningEnabledByDefault, tuningStore } from './tuning-store';

/** One shape class of one kernel, ready to be timed. */
export interface TuningProblem<C> {
  /** Every configuration the device can run (only these are ever chosen). */
  candidates: readonly C[];
  /** The configuration used before (or without) timing. */
  fallback: C;
  /** A stable name of a configuration (the persisted form). */
  id(c: C): string;
  /** Operands for timing: returns a function that enqueues one run with a configuration, and a cleanup. */
  prepare(): { run(c: C): void; dispose(): void };
}

export interface TuneResult {
  kernel: string;
  shapeClass: string;
  winner: string;
  /** Median milliseconds per candidate, by id. */
  timings: Record<string, number>;
}

/** Where tune() is: reported as each shape class starts and after each of its candidates. */
export interface TuningProgress {
  kernel: string;
  shapeClass: string;
  /** The shape class being timed (from 1), of how many this tune() call has met so far. */
  problem: number;
  problems: number;
  /** Candidates timed for it so far (0: it starts), of how many. */
  candidate: number;
  candidates: number;
  /** The verdict, once the last candidate is timed (null before). */
  result: TuneResult | null;
}

export interface TuneOptions {
  onProgress?: (p: TuningProgress) => void;
  /** Stop between two candidates: what was timed is kept, the shape class under way waits for the next tune(). */
  signal?: AbortSignal;
}

/** Repetitions per candidate after one warm-up run; the median counts. */
const REPEATS = 3;

export class Autotuner {
  enabled = true;
  private winners: Record<string, string>;
  private pending = new Map<string, TuningProblem<unknown>>();
  /** Every tuning run so far (for reports and tests). */
  readonly history: TuneResult[] = [];

  constructor(private readonly adapterKey: string) {
    this.winners = { ...(tuningStore().load()[adapterKey] ?? {}) };
  }

  /** The configuration for this kernel and shape class now; leaves it to be timed if it is new. */
  pick<C>(kernel: string, shapeClass: string, problem: TuningProblem<C>): C {
    if (!this.enabled) return problem.fallback;
    const key = `${kernel}|${shapeClass}`;
    const id = this.winners[key];
    if (id !== undefined) {
      // A persisted winner is reused only if the device (and budget) still allows it.
      const c = problem.candidates.find((x) => problem.id(x) === id);
      if (c !== undefined) return c;
    }
    if (!this.pending.has(key)) this.pending.set(key, problem as TuningProblem<unknown>);
    return problem.fallback;
  }

  /** Whether some shape class waits to be timed. */
  get hasPending(): boolean {
    return this.enabled && this.pending.size > 0;
  }

  /** Time every waiting shape class; later pick() calls return the winners. */
  async tune({ onProgress, signal }: TuneOptions = {}): Promise<TuneResult[]> {
    const done: TuneResult[] = [];
    // Timing runs are not the caller's work: a profile under way (the executor's observer) does
    // not see them, and they run in the executor's usual passes, as the winners will.
    const ex = runtime().executor;
    ex.flush();
    const observer = ex.observer;
    ex.observer = null;
    try {
      while (this.enabled && this.pending.size && !signal?.aborted) {
        const [key, problem] = this.pending.entries().next().value as [string, TuningProblem<unknown>];
        this.pending.delete(key);
        const [kernel, shapeClass] = key.split('|') as [string, string];
        const where = { kernel, shapeClass, problem: done.length + 1, problems: done.length + 1 + this.pending.size };
        const r = await timeProblem(kernel, shapeClass, problem, signal, (candidate, result) =>
          onProgress?.({ ...where, candidate, candidates: problem.candidates.length, result }),
        );
        if (!r) {
          this.pending.set(key, problem); // stopped part-way: timed again next time
          break;
        }
        this.winners[key] = r.winner;
        this.history.push(r);
        done.push(r);
      }
    } finally {
      ex.observer = observer;
    }
    if (done.length) this.persist();
    return done;
  }

  /** Forget every result, in memory and in the store (for this adapter). */
  reset(): void {
    this.winners = {};
    this.pending.clear();
    this.persist();
  }

  private persist(): void {
    const all = tuningStore().load();
    all[this.adapterKey] = this.winners;
    tuningStore().save(all);
  }
}

/** Times every candidate of `problem`; null when `signal` stopped it first. */
async function timeProblem(
  kernel: string,
  shapeClass: string,
  problem: TuningProblem<unknown>,
  signal: AbortSignal | undefined,
  progress: (candidate: number, result: TuneResult | null) => void,
): Promise<TuneResult | null> {
  const ex = runtime().executor;
  const timings: Record<string, number> = {};
  const { run, dispose } = problem.prepare();
  progress(0, null);
  try {
    // Every candidate's pipelines compile at once, in the background, rather than one by one
    // in the warm-up runs.
    await compilePipelines(recordPipelines(() => runtime().dryRun(() => problem.candidates.forEach(run))));
    for (const [i, c] of problem.candidates.entries()) {
      if (signal?.aborted) return null;
      run(c); // warm-up
      await ex.sync();
      const times: number[] = [];
      for (let rep = 0; rep < REPEATS; rep++) {
        const t0 = performance.now();
        run(c);
        await ex.sync();
        times.push(performance.now() - t0);
      }
      times.sort((a, b) => a - b);
      timings[problem.id(c)] = times[REPEATS >> 1]!;
      if (i + 1 < problem.candidates.length) progress(i + 1, null);
    }
  } finally {
    dispose();
  }
  const winner = Object.entries(timings).sort((a, b) => a[1] - b[1])[0]![0];
  const result = { kernel, shapeClass, winner, timings };
  progress(problem.candidates.length, result);
  return result;
}

const tuners = new WeakMap<Runtime, Autotuner>();

/** The autotuner of the current device. */
export function autotuner(): Autotuner {
  const rt = runtime();
  let t = tuners.get(rt);
  if (!t) {
    const a = rt.info.adapterInfo;
    const l = rt.limits;
    // The same adapter with other limits (a budget) may allow other configurations: key both.
    const key = [a.vendor, a.architecture, a.device, a.description, l.maxComputeWorkgroupStorageSize, l.maxComputeInvocationsPerWorkgroup].join('/');
    t = new Autotuner(key);
    // The CPU backend's kernels have no configurations to choose among.
    t.enabled = rt.backend === 'webgpu' && (rt.options.autotune ?? tuningEnabledByDefault());
    tuners.set(rt, t);
  }
  return t;
}
