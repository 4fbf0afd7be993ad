// The memory planner: how large a micro-batch fits the device. A training step's peak memory is
// what stays (parameters, buffers, optimizer state) plus what one micro-batch's forward and
// backward pass allocate on top (activations, gradients, temporaries). The second part comes from
// a dry run of the real model code (src/runtime: ops run for their shapes and allocations only),
// so it is exact for the ops webgrad has, not a guess from layer types.

import { empty, sizeOf, type Tensor } from '../tensor';
import { runtime } from '../runtime/device';
import { dryRun } from '../memory';
import { LimitError } from '../runtime/errors';
import { formatBytes } from '../runtime/limits';
import { tidy } from '../scope';
import { sizeClass } from '../runtime/buffer-pool';
import type { Module } from '../nn/module';
import type { Optimizer } from '../optim/optimizer';

/** Default share of the device's maxBufferSize a training step may use (see the README). */
export const DEFAULT_BUDGET_FRACTION = 0.5;

export interface Plan {
  /** Samples per micro-batch. */
  microBatchSize: number;
  /** Micro-batches per step (the last may be smaller). */
  microBatches: number;
  /** Planned peak of live GPU bytes during the step. */
  estimatedPeakBytes: number;
  /** Why this micro-batch size: the numbers behind the choice, in words. */
  reason: string;
  /** The budget planned against. */
  budgetBytes: number;
  /** Parameters, buffers, optimizer state, the batch and other live tensors: bytes that stay for the whole step. */
  persistentBytes: number;
  /** Bytes one sample adds (activations and temporaries), from the dry run. */
  bytesPerSample: number;
}

export interface PlanInputs {
  model: Module;
  optimizer: Optimizer;
  /** A forward and backward pass on a micro-batch (run in the dry run, and for real by the trainer). */
  pass: (x: Tensor, y: Tensor) => void;
  xShape: readonly number[];
  yShape: readonly number[];
  /** The batch's dtypes (the dry run's inputs and targets have them). */
  xDType: 'float32' | 'int32';
  yDType: 'float32' | 'int32';
  /** Fixed micro-batch size, or 'auto' to choose the largest that fits. */
  microBatchSize: number | 'auto';
  budgetBytes: number;
  /** Measured correction: multiply the dry run's per-sample bytes by this (≥ 1). */
  correction?: number;
  /** Bytes of live tensors that the batch itself occupies now (counted once, as the batch). */
  liveBatchBytes?: number;
}

/** The budget a Trainer plans against when none is given. */
export function defaultBudget(): number {
  const limits = runtime().limits;
  if (Number.isFinite(limits.memoryBudgetBytes)) return limits.memoryBudgetBytes;
  return Math.floor(limits.maxBufferSize * DEFAULT_BUDGET_FRACTION * 4);
}

export function plan(inp: PlanInputs): Plan {
  const rt = runtime();
  const batch = inp.xShape[0]!;
  const params = inp.model.parameters();
  const bytesOf = (ts: Iterable<Tensor | null>) => [...ts].reduce((s, t) => s + (t ? sizeClass(t.size * 4) : 0), 0);
  const paramBytes = bytesOf(params);
  const bufferBytes = bytesOf(inp.model.namedBuffers().map(([, t]) => t));
  const gradBytes = bytesOf(params.map((p) => p.grad)); // freed when the step starts
  const stateBytes = inp.optimizer.stateBytes(); // what exists plus what the first step will add
  const existingStateBytes = bytesOf(Object.values(inp.optimizer.stateDict().state).flatMap((s) => Object.values(s.buffers)));
  const batchBytes = inputBytes(inp, batch);
  // Whatever else the program holds on the GPU.
  const otherBytes = Math.max(
    0,
    rt.pool.liveBytes - paramBytes - bufferBytes - gradBytes - existingStateBytes - (inp.liveBatchBytes ?? 0),
  );
  // Gradients live through the step too; the dry run allocates them, so they are not counted here.
  const persistentBytes = paramBytes + bufferBytes + stateBytes + batchBytes + otherBytes;
  const correction = inp.correction ?? 1;

  // Peak bytes of one micro-batch of m samples above the persistent state, and its largest tensor.
  const cache = new Map<number, { peak: number; largest: number }>();
  const measure = (m: number) => {
    let r = cache.get(m);
    if (!r) {
      const { peakBytes, largestBytes } = dryPass(inp, m);
      // The dry run made its own inputs; the real step reads views of the batch (counted above).
      r = { peak: (peakBytes - inputBytes(inp, m)) * correction, largest: largestBytes };
      cache.set(m, r);
    }
    return r;
  };
  const fits = (m: number) => {
    const r = measure(m);
    return persistentBytes + r.peak <= inp.budgetBytes && r.largest <= rt.limits.maxStorageBufferBindingSize;
  };

  // What one sample is, in words: a sequence of T tokens (int32 ids [B, T]), or a sample.
  const sequence = inp.xDType === 'int32' && inp.xShape.length === 2;
  const samples = (n: number) =>
    sequence ? `${n} sequence${n === 1 ? '' : 's'} of ${inp.xShape[1]} tokens` : `${n} sample${n === 1 ? '' : 's'}`;
  const perSampleWord = sequence ? `sequence of ${inp.xShape[1]} tokens` : 'sample';
  let m: number;
  let why: string;
  if (inp.microBatchSize !== 'auto') {
    m = Math.min(batch, Math.max(1, Math.floor(inp.microBatchSize)));
    why = `micro-batch size fixed at ${samples(m)}`;
  } else if (fits(batch)) {
    m = batch;
    why = `the whole batch of ${samples(batch)} fits the budget`;
  } else {
    if (!fits(1)) {
      const r = measure(1);
      const binding = r.largest > rt.limits.maxStorageBufferBindingSize;
      throw new LimitError(
        binding
          ? `Trainer.plan: one ${perSampleWord} needs a tensor of ${formatBytes(r.largest)}, more than one storage binding ` +
              `(maxStorageBufferBindingSize ${formatBytes(rt.limits.maxStorageBufferBindingSize)})`
          : `Trainer.plan: even one ${perSampleWord} needs ${formatBytes(persistentBytes + r.peak)} ` +
              `(model and optimizer state ${formatBytes(persistentBytes)} + ${formatBytes(r.peak)} for the pass), ` +
              `more than the memory budget of ${formatBytes(inp.budgetBytes)}`,
      );
    }
    // Largest m that fits: peak bytes grow with m, so bisect.
    let lo = 1;
    let hi = batch;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (fits(mid)) lo = mid;
      else hi = mid;
    }
    m = lo;
    const r = measure(batch);
    why =
      `the whole batch of ${samples(batch)} would need ${formatBytes(persistentBytes + r.peak)}` +
      (r.largest > rt.limits.maxStorageBufferBindingSize
        ? ` and a tensor of ${formatBytes(r.largest)} (over the ${formatBytes(rt.limits.maxStorageBufferBindingSize)} binding limit)`
        : '') +
      `; ${samples(m)} per micro-batch is the largest that fits`;
  }
  const peak = persistentBytes + measure(m).peak;
  const perSample = m > 1 ? (measure(m).peak - measure(1).peak) / (m - 1) : measure(1).peak;
  const microBatches = Math.ceil(batch / m);
  return {
    microBatchSize: m,
    microBatches,
    estimatedPeakBytes: Math.round(peak),
    budgetBytes: inp.budgetBytes,
    persistentBytes,
    bytesPerSample: Math.round(perSample),
    reason:
      `${why}: model, optimizer state and batch ${formatBytes(persistentBytes)}, about ${formatBytes(perSample)} per ${perSampleWord} ` +
      `for activations and gradients, budget ${formatBytes(inp.budgetBytes)} → ${microBatches} micro-batch` +
      `${microBatches === 1 ? '' : 'es'} of ${m}, planned peak ${formatBytes(peak)}`,
  };
}

/** Bytes of the inputs and targets of m samples. */
function inputBytes(inp: PlanInputs, m: number): number {
  return sizeClass(4 * m * sizeOf(inp.xShape.slice(1))) + sizeClass(4 * m * sizeOf(inp.yShape.slice(1)));
}

/**
 * The peak bytes of two consecutive micro-batches of m samples (the second one accumulates into
 * the gradients the first made), measured by a dry run of the real pass. Gradients are detached
 * for the run and restored after it.
 */
function dryPass(inp: PlanInputs, m: number): { peakBytes: number; largestBytes: number } {
  const params = inp.model.parameters();
  const saved = params.map((p) => p.grad);
  for (const p of params) p.grad = null;
  try {
    return dryRun(() => {
      for (let i = 0; i < 2; i++) {
        tidy(() => {
          const x = empty([m, ...inp.xShape.slice(1)], inp.xDType, 'dry-run input');
          const y = empty([m, ...inp.yShape.slice(1)], inp.yDType, 'dry-run labels');
          inp.pass(x, y);
        });
      }
      for (const p of params) p.grad?.dispose();
    });
  } finally {
    params.forEach((p, i) => {
      if (p.grad && p.grad !== saved[i]) p.grad.dispose();
      p.grad = saved[i]!;
    });
  }
}
