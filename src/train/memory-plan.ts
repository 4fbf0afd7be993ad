// The memory planner: how large a micro-batch fits the device. A training step's peak memory is
// what stays (parameters, buffers, optimizer state) plus what one micro-batch's forward and
// backward pass allocate on top (activations, gradients, temporaries). The second part comes from
// a dry run of the real model code (src/runtime: ops run for their shapes and allocations only),
// so it is exact for the ops webgrad has, not a guess from layer types.
//
// Activation checkpointing (nn/checkpoint.ts) is the planner's second lever: a model's checkpointBlocks()
// can be checkpointed (every block, or every k-th), which keeps one input per block instead of
// its activations and costs one more forward pass of those blocks. Each choice is dry-run at the
// largest micro-batch it fits, and the planner takes the one with the cheapest step: a pass is
// priced by what its dry run dispatches (kernels, and the bytes they bind), so recomputation
// shows up as the extra forward it is, and fewer, larger micro-batches as fewer launches.

import { elementBytes, empty, sizeOf, type Tensor } from '../tensor';
import { runtime } from '../runtime/device';
import { dryRun } from '../memory';
import { LimitError } from '../runtime/errors';
import { formatBytes } from '../runtime/limits';
import { tidy } from '../scope';
import { sizeClass } from '../runtime/buffer-pool';
import type { Module } from '../nn/module';
import type { DryRunResult } from '../runtime/device';
import type { Optimizer } from '../optim/optimizer';

/** Default share of the device's maxBufferSize a training step may use (see the README). */
export const DEFAULT_BUDGET_FRACTION = 0.5;

/**
 * Which blocks are checkpointed: 'auto' (the planner chooses), 'none', 'blocks' (every block of
 * model.checkpointBlocks()), or every k-th block.
 */
export type Checkpointing = 'auto' | 'none' | 'blocks' | { every: number };

export interface Plan {
  /** Samples per micro-batch. */
  microBatchSize: number;
  /** Micro-batches per step (the last may be smaller). */
  microBatches: number;
  /** Planned peak of live GPU bytes during the step. */
  estimatedPeakBytes: number;
  /** Why this micro-batch size and checkpointing: the numbers behind the choice, in words. */
  reason: string;
  /** The budget planned against. */
  budgetBytes: number;
  /** Parameters, buffers, optimizer state, the batch and other live tensors: bytes that stay for the whole step. */
  persistentBytes: number;
  /** Bytes one sample adds (activations and temporaries), from the dry run. */
  bytesPerSample: number;
  /** Every k-th of model.checkpointBlocks() is checkpointed (blocks 0, k, 2k, …); 0: none. */
  checkpointEvery: number;
  /** How many blocks that is, of how many the model has. */
  checkpointedBlocks: number;
  blocks: number;
  /** The choices the planner weighed, the chosen one included (one entry unless checkpointing is 'auto'). */
  alternatives: PlanAlternative[];
}

/** One checkpointing choice at the largest micro-batch it fits (or the fixed one). */
export interface PlanAlternative {
  checkpointEvery: number;
  checkpointedBlocks: number;
  /** Whether it fits the budget (and the binding limit) at this micro-batch size. */
  fits: boolean;
  microBatchSize: number;
  microBatches: number;
  estimatedPeakBytes: number;
  /**
   * The step's estimated cost, in dispatch-equivalents (each kernel launch 1, plus the bytes the
   * kernels bind over DISPATCH_COST_BYTES): for comparing choices, not a time.
   */
  cost: number;
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
  /** Which blocks to checkpoint (default 'none'). */
  checkpointing?: Checkpointing;
  budgetBytes: number;
  /** Measured correction: multiply the dry run's per-sample bytes by this (≥ 1). */
  correction?: number;
  /** Bytes of live tensors that the batch itself occupies now (counted once, as the batch). */
  liveBatchBytes?: number;
}

/**
 * How much one kernel launch costs in bytes moved, for pricing a pass: about 10 µs of launch
 * overhead at about 100 GB/s. Only the ratio matters, and only between choices.
 */
export const DISPATCH_COST_BYTES = 1 << 20;

/** The budget a Trainer plans against when none is given. */
export function defaultBudget(): number {
  const limits = runtime().limits;
  if (Number.isFinite(limits.memoryBudgetBytes)) return limits.memoryBudgetBytes;
  return Math.floor(limits.maxBufferSize * DEFAULT_BUDGET_FRACTION * 4);
}

/** Set `checkpointed` on every k-th block (blocks 0, k, 2k, …; none for k = 0). */
export function applyCheckpointing(blocks: readonly Module[], every: number): void {
  blocks.forEach((b, i) => (b.checkpointed = every > 0 && i % every === 0));
}

/** The checkpointing choices to weigh: k for every k-th block, 0 for none. */
export function checkpointChoices(c: Checkpointing, blocks: number): number[] {
  if (c === 'none' || blocks === 0) return [0];
  if (c === 'blocks') return [1];
  if (c === 'auto') return [0, 1, 2, 4].filter((k) => k <= 1 || k < blocks);
  return [c.every];
}

/** Checks a Trainer's checkpointing option. */
export function checkCheckpointing(c: unknown): Checkpointing {
  if (c === 'auto' || c === 'none' || c === 'blocks') return c;
  if (typeof c === 'object' && c !== null && Number.isSafeInteger((c as { every?: unknown }).every) && (c as { every: number }).every >= 1) {
    return { every: (c as { every: number }).every };
  }
  throw new LimitError(
    `Trainer: checkpointing must be 'auto', 'none', 'blocks' or { every: k } with k a positive integer, got ${JSON.stringify(c) ?? String(c)}`,
  );
}

export function plan(inp: PlanInputs): Plan {
  const rt = runtime();
  const batch = inp.xShape[0]!;
  const params = inp.model.parameters();
  const bytesOf = (ts: Iterable<Tensor | null>) => [...ts].reduce((s, t) => s + (t ? sizeClass(t.size * elementBytes(t.dtype)) : 0), 0);
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
  const blocks = inp.model.checkpointBlocks();
  const choices = checkpointChoices(inp.checkpointing ?? 'none', blocks.length);
  const counted = (k: number) => (k === 0 ? 0 : Math.ceil(blocks.length / k));
  const { samples, perSampleWord } = sampleWords(inp);

  // One micro-batch of m samples with every k-th block checkpointed: its peak bytes above the
  // persistent state, its largest tensor, and its price.
  const cache = new Map<string, { peak: number; largest: number; cost: number }>();
  const measure = (k: number, m: number) => {
    let r = cache.get(`${k}/${m}`);
    if (!r) {
      const d = dryPass(inp, blocks, k, m);
      // The dry run made its own inputs; the real step reads views of the batch (counted above).
      // It ran two micro-batches: the price is per micro-batch.
      r = { peak: (d.peakBytes - inputBytes(inp, m)) * correction, largest: d.largestBytes, cost: (d.dispatches + d.boundBytes / DISPATCH_COST_BYTES) / 2 };
      cache.set(`${k}/${m}`, r);
    }
    return r;
  };
  const fits = (k: number, m: number) => {
    const r = measure(k, m);
    return persistentBytes + r.peak <= inp.budgetBytes && r.largest <= rt.limits.maxStorageBufferBindingSize;
  };
  const alternative = (k: number, m: number): PlanAlternative => {
    const microBatches = Math.ceil(batch / m);
    return {
      checkpointEvery: k,
      checkpointedBlocks: counted(k),
      fits: fits(k, m),
      microBatchSize: m,
      microBatches,
      estimatedPeakBytes: Math.round(persistentBytes + measure(k, m).peak),
      // Whole micro-batches of m, and the last one with what is left (priced at its own size).
      cost: Math.round(Math.floor(batch / m) * measure(k, m).cost + (batch % m ? measure(k, batch % m).cost : 0)),
    };
  };
  /** The largest micro-batch that fits with every k-th block checkpointed (0 when not even one sample does). */
  const largestFit = (k: number) => {
    if (fits(k, batch)) return batch;
    if (!fits(k, 1)) return 0;
    let lo = 1;
    let hi = batch;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (fits(k, mid)) lo = mid;
      else hi = mid;
    }
    return lo;
  };

  const saved = blocks.map((b) => b.checkpointed);
  let alternatives: PlanAlternative[];
  try {
    if (inp.microBatchSize !== 'auto') {
      const m = Math.min(batch, Math.max(1, Math.floor(inp.microBatchSize)));
      alternatives = choices.map((k) => alternative(k, m));
    } else {
      alternatives = [];
      for (const k of choices) {
        const m = largestFit(k);
        alternatives.push(alternative(k, Math.max(1, m)));
        // Nothing beats the whole batch without recomputation.
        if (k === 0 && m === batch) break;
      }
    }
  } finally {
    blocks.forEach((b, i) => (b.checkpointed = saved[i]!));
  }
  const feasible = alternatives.filter((a) => a.fits);
  const chosen =
    feasible.length > 0
      ? feasible.reduce((best, a) => (a.cost < best.cost ? a : best))
      : alternatives.reduce((best, a) => (a.estimatedPeakBytes < best.estimatedPeakBytes ? a : best));
  if (inp.microBatchSize === 'auto' && !chosen.fits) throw tooLarge(inp, chosen, persistentBytes, measure(chosen.checkpointEvery, 1), blocks.length);

  const { checkpointEvery: k, microBatchSize: m, microBatches } = chosen;
  const r = measure(k, m);
  const peak = persistentBytes + r.peak;
  const perSample = m > 1 ? (r.peak - measure(k, 1).peak) / (m - 1) : r.peak;
  const details =
    `model, optimizer state and batch ${formatBytes(persistentBytes)}, about ${formatBytes(perSample)} per ${perSampleWord} ` +
    `for activations and gradients, budget ${formatBytes(inp.budgetBytes)} → ${microBatches} micro-batch` +
    `${microBatches === 1 ? '' : 'es'} of ${m}, planned peak ${formatBytes(peak)}`;
  let reason: string;
  if (k === 0) {
    let why: string;
    if (inp.microBatchSize !== 'auto') why = `micro-batch size fixed at ${samples(m)}`;
    else if (m === batch) why = `the whole batch of ${samples(batch)} fits the budget`;
    else {
      const whole = measure(0, batch);
      why =
        `the whole batch of ${samples(batch)} would need ${formatBytes(persistentBytes + whole.peak)}` +
        (whole.largest > rt.limits.maxStorageBufferBindingSize
          ? ` and a tensor of ${formatBytes(whole.largest)} (over the ${formatBytes(rt.limits.maxStorageBufferBindingSize)} binding limit)`
          : '') +
        `; ${samples(m)} per micro-batch is the largest that fits`;
    }
    const declined = alternatives.find((a) => a.checkpointEvery > 0 && a.fits && a.microBatchSize > m);
    reason =
      `${why}: ${details}` +
      (declined
        ? ` (checkpointing ${describeEvery(declined.checkpointEvery, blocks.length)} would allow micro-batch ${declined.microBatchSize}, ` +
          `but recomputing costs more than it saves: ${costRatio(declined.cost, chosen.cost)})`
        : '');
  } else {
    const without = alternatives.find((a) => a.checkpointEvery === 0);
    const plain = measure(0, 1);
    const withoutIt = !without
      ? ''
      : without.fits
        ? `; without it micro-batch ${without.microBatchSize} (${costRatio(without.cost, chosen.cost)})`
        : inp.microBatchSize === 'auto'
          ? `; without it even micro-batch 1 needs ${formatBytes(persistentBytes + plain.peak)}`
          : `; without it ${formatBytes(without.estimatedPeakBytes)}`;
    reason =
      `micro-batch ${m} of ${batch}, checkpointing ${describeEvery(k, blocks.length)}: ` +
      `${formatBytes(peak)} planned of ${formatBytes(inp.budgetBytes)}${withoutIt}. ` +
      `${inp.checkpointing === 'auto' ? '' : 'Checkpointing as asked; '}${details}, recomputing ${counted(k)} block forward passes in backward`;
  }
  return {
    microBatchSize: m,
    microBatches,
    estimatedPeakBytes: Math.round(peak),
    budgetBytes: inp.budgetBytes,
    persistentBytes,
    bytesPerSample: Math.round(perSample),
    reason,
    checkpointEvery: k,
    checkpointedBlocks: counted(k),
    blocks: blocks.length,
    alternatives,
  };
}

/** "every block (12 of 12)", "every 2nd block (6 of 12)". */
function describeEvery(k: number, blocks: number): string {
  const n = Math.ceil(blocks / k);
  if (k === 1) return `every block (${n} of ${blocks})`;
  const suffix = k % 10 === 2 && k % 100 !== 12 ? 'nd' : k % 10 === 3 && k % 100 !== 13 ? 'rd' : 'th';
  return `every ${k}${suffix} block (${n} of ${blocks})`;
}

/** How another choice's estimated cost compares with the chosen one's, in words. */
function costRatio(other: number, chosen: number): string {
  const r = other / Math.max(1, chosen);
  return r >= 1 ? `about ${((r - 1) * 100).toFixed(0)}% slower by the planner's estimate` : `about ${((1 - r) * 100).toFixed(0)}% faster by the planner's estimate`;
}

/** What one sample is, in words: a sequence of T tokens (int32 ids [B, T]), or a sample. */
function sampleWords(inp: PlanInputs): { samples: (n: number) => string; perSampleWord: string } {
  const sequence = inp.xDType === 'int32' && inp.xShape.length === 2;
  return {
    samples: (n) => (sequence ? `${n} sequence${n === 1 ? '' : 's'} of ${inp.xShape[1]} tokens` : `${n} sample${n === 1 ? '' : 's'}`),
    perSampleWord: sequence ? `sequence of ${inp.xShape[1]} tokens` : 'sample',
  };
}

/** Not even one sample fits: the error names what it would take. */
function tooLarge(
  inp: PlanInputs,
  best: PlanAlternative,
  persistentBytes: number,
  r: { peak: number; largest: number },
  blocks: number,
): LimitError {
  const limits = runtime().limits;
  const { perSampleWord } = sampleWords(inp);
  const how = best.checkpointEvery > 0 ? `, checkpointing ${describeEvery(best.checkpointEvery, blocks)}` : '';
  return new LimitError(
    r.largest > limits.maxStorageBufferBindingSize
      ? `Trainer.plan: one ${perSampleWord} needs a tensor of ${formatBytes(r.largest)}, more than one storage binding ` +
          `(maxStorageBufferBindingSize ${formatBytes(limits.maxStorageBufferBindingSize)})`
      : `Trainer.plan: even one ${perSampleWord} needs ${formatBytes(persistentBytes + r.peak)} ` +
          `(model and optimizer state ${formatBytes(persistentBytes)} + ${formatBytes(r.peak)} for the pass${how}), ` +
          `more than the memory budget of ${formatBytes(inp.budgetBytes)}`,
  );
}

/** Bytes of the inputs and targets of m samples. */
function inputBytes(inp: PlanInputs, m: number): number {
  return sizeClass(4 * m * sizeOf(inp.xShape.slice(1))) + sizeClass(4 * m * sizeOf(inp.yShape.slice(1)));
}

/**
 * Two consecutive micro-batches of m samples (the second one accumulates into the gradients the
 * first made) with every k-th block checkpointed, dry-run through the real pass: their peak
 * bytes, largest tensor and dispatches. Gradients are detached for the run and restored after it.
 */
function dryPass(inp: PlanInputs, blocks: readonly Module[], k: number, m: number): DryRunResult {
  const params = inp.model.parameters();
  const saved = params.map((p) => p.grad);
  for (const p of params) p.grad = null;
  applyCheckpointing(blocks, k);
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
