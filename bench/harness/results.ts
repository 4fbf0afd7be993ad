// The benchmark's output: what bench-results.json holds.

import type { EngineName } from './workloads';

export interface Result {
  /** matmul-1024, conv2d-fwd-bwd, mlp-step, cnn-step, … */
  work: string;
  engine: EngineName;
  /** The shapes, in words. */
  shape: string;
  median_ms?: number;
  /** Floating-point operations per second over the median time, where meaningful. */
  gflops?: number;
  /** Every timed run, in order. */
  runs_ms?: number[];
  /** The loss of the first step, or the first element of the result: equal across engines when they do the same math. */
  check?: number;
  /** Why the engine could not do this work item (instead of a time). */
  error?: string;
}

export interface AdapterDescription {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter?: boolean;
}

export interface BenchReport {
  adapter: AdapterDescription | null;
  browser: string;
  date: string;
  /** Warm-up runs and timed runs per engine and work item. */
  warmup: number;
  runs: number;
  /** Load average of the machine (1, 5, 15 min) before and after, when the driver knows it. */
  load?: { cores: number; before: number[]; after: number[] };
  /** How each engine that said so runs (webgrad: backend, threads, SIMD). */
  engines?: Partial<Record<EngineName, string>>;
  results: Result[];
}

/** Progress while the suite runs. */
export type Progress =
  | { type: 'engine'; engine: EngineName; ms: number; about?: string; error?: string }
  | { type: 'run'; work: string; engine: EngineName; warmup: boolean; index: number; of: number; ms: number }
  | { type: 'result'; result: Result; done: number; total: number };
