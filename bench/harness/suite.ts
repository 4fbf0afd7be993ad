// Runs every work item on every engine. Within a work item the engines take turns run by run
// (warm-ups first, then timed rounds, each round starting with the next engine), so that load
// from other programs on the machine falls on all of them alike; no two engines ever run at the
// same time (after a WebGPU engine's run the next waits until its adapter's threads are likely
// idle). One engine's failure on a work item becomes an error in its result and does not stop
// the others.

import type { Engine, EngineSource, Prepared } from './engine';
import type { Progress, Result } from './results';
import { median, timed } from './timing';
import { describe, flops, workData, type EngineName, type Work } from './workloads';

export interface SuiteOptions {
  warmup: number;
  runs: number;
  /** Pause after each run of a WebGPU engine (default 500 ms; quick runs that time nothing pass 0). */
  settleMs?: number;
  onProgress?: (p: Progress) => void;
}

interface Entry {
  name: EngineName;
  prepared: Prepared;
  times: number[];
  check?: number;
}

export async function runSuite(sources: readonly EngineSource[], works: readonly Work[], opts: SuiteOptions): Promise<Result[]> {
  const progress = opts.onProgress ?? (() => {});
  const engines = new Map<EngineName, Engine | string>();
  for (const s of sources) {
    try {
      const t = await timed(s.load);
      engines.set(s.name, t.value);
      progress({ type: 'engine', engine: s.name, ms: t.ms, ...(t.value.about ? { about: t.value.about } : {}) });
    } catch (e) {
      engines.set(s.name, errorText(e));
      progress({ type: 'engine', engine: s.name, ms: 0, error: errorText(e) });
    }
  }

  const results: Result[] = [];
  const total = works.length * sources.length;
  const finish = (r: Result) => {
    results.push(r);
    progress({ type: 'result', result: r, done: results.length, total });
  };

  for (const work of works) {
    const data = workData(work);
    const base = { work: work.name, shape: describe(work) };
    const live: Entry[] = [];
    for (const s of sources) {
      const engine = engines.get(s.name)!;
      if (typeof engine === 'string') {
        finish({ ...base, engine: s.name, error: `could not start: ${engine}` });
        continue;
      }
      try {
        live.push({ name: s.name, prepared: await engine.prepare(work, data), times: [] });
      } catch (e) {
        finish({ ...base, engine: s.name, error: errorText(e) });
      }
    }

    const fail = (entry: Entry, e: unknown) => {
      live.splice(live.indexOf(entry), 1);
      dispose(entry);
      finish({ ...base, engine: entry.name, error: errorText(e) });
    };
    const rounds = opts.warmup + opts.runs;
    for (let r = 0; r < rounds; r++) {
      const warmup = r < opts.warmup;
      // Each round starts with the next engine: an engine that leaves work behind it (a WebGPU
      // engine's software adapter finishing on its own threads) does not always weigh on the same one.
      const order = live.map((_, i) => live[(i + r) % live.length]!);
      for (const entry of order) {
        if (!live.includes(entry)) continue;
        await yieldToPage();
        try {
          const t = await timed(entry.prepared.run);
          if (!Number.isFinite(t.value)) throw new Error(`the run returned ${t.value}, not a finite number`);
          entry.check ??= t.value;
          // An engine in a Worker times its run there (no message round trip in the figure).
          const ms = entry.prepared.measuredMs?.() ?? t.ms;
          if (!warmup) entry.times.push(ms);
          progress({
            type: 'run', work: work.name, engine: entry.name, warmup,
            index: warmup ? r + 1 : r - opts.warmup + 1, of: warmup ? opts.warmup : opts.runs, ms,
          });
        } catch (e) {
          fail(entry, e);
        }
        // A WebGPU engine's read-back waits for its work, but a software adapter's threads go on
        // for a while (SwiftShader's scheduler spins before it sleeps, buffers are freed): let
        // them stop before the next engine's run, which would otherwise share the cores with them.
        if (!entry.name.endsWith('-wasm')) await settle(opts.settleMs ?? SETTLE_MS);
      }
    }

    const flop = flops(work);
    for (const entry of live) {
      const ms = median(entry.times);
      finish({
        ...base,
        engine: entry.name,
        median_ms: ms,
        ...(flop !== undefined ? { gflops: flop / ms / 1e6 } : {}),
        runs_ms: entry.times,
        check: entry.check,
      });
      dispose(entry);
    }
  }
  return results;
}

function dispose(entry: Entry): void {
  try {
    entry.prepared.dispose();
  } catch {
    // Freeing memory after a failed run may fail too; the result already says what went wrong.
  }
}

function errorText(e: unknown): string {
  const text = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return text.length > 500 ? `${text.slice(0, 500)}…` : text;
}

/** Let the page repaint (progress) between runs. */
/** Pause after a WebGPU engine's run (see above), by default. */
const SETTLE_MS = 500;

function settle(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function yieldToPage(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}
