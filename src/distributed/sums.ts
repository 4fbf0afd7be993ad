// Where a replica keeps the vector the ring sums: this replica's contribution (its gradients, or its
// parameter deltas), laid end to end in layout order, then the partial sums, then the complete sums.
// The ring (ring.ts) reads what it sends from it, adds what it receives into it in the ring's fixed
// order, and overwrites it with the complete sums others send.
//   GpuSums   keeps it in one GPU buffer: the contribution is copied there by kernels as soon as it
//             is complete (no readback of the whole vector), each received part is uploaded and
//             added on the GPU (axpy with α = 1: one correctly rounded float32 addition, the bits
//             of the CPU's), only the chunks sent onward are read back, and the sums stay on the
//             GPU for the optimizer.
//   CpuSums   reads the contribution back and sums in a Float32Array (the reference the tests
//             compare GpuSums with, bit for bit).
// A GPU may flush subnormal floats (below 1.2e-38) to zero where the CPU keeps them: only there can
// the two differ.
// Which is faster depends on the machine: GpuSums moves more over the bus (each chunk sent onward
// is read back, each chunk received uploaded: about three vectors a step against CpuSums' two) and
// waits for a readback at every ring step, but adds nothing on the CPU. On SwiftShader (the GPU is
// the CPU) CpuSums was 1.2–2× faster per step for the MNIST MLP, so it is DataParallel's default.

import { contiguousCopy, tensor } from '../creation';
import { copyView, fillView } from '../kernels/copy';
import type { View } from '../kernels/view';
import { axpyInPlace } from '../ops/pointwise';
import { runtime } from '../runtime/device';
import { empty, type Tensor } from '../tensor';
import type { BucketPlan } from './layout';

export interface SumVector {
  /**
   * Put this replica's contribution for bucket k in place: what bucket k holds of `tensors` (one
   * per parameter in layout order, contiguous; null counts as zeros), plus `carried` (the wire
   * format's residual from the last sync, the whole vector) where given. Takes what the tensors
   * hold now (later changes to them do not count); resolves once it can be read.
   */
  fill(k: number, tensors: readonly (Tensor | null)[], carried: Float32Array | null): Promise<void>;
  /** Elements [lo, hi) of the vector. */
  read(lo: number, hi: number): Promise<Float32Array>;
  /** vector[lo + i] += values[i], as float32, after every earlier call. */
  add(lo: number, values: Float32Array): void;
  /** vector[lo + i] = values[i]. */
  set(lo: number, values: Float32Array): void;
  /** Parameter i's part of the vector, as a new tensor of its shape. */
  result(i: number): Tensor;
  dispose(): void;
}

export type Reduction = 'gpu' | 'cpu';

export function sumVector(kind: Reduction, plan: BucketPlan): SumVector {
  return kind === 'gpu' ? new GpuSums(plan) : new CpuSums(plan);
}

/** The parameters bucket k overlaps: [parameter index, start in the parameter, start in the vector, count]. */
function overlaps(plan: BucketPlan, k: number): [number, number, number, number][] {
  const { start, count } = plan.buckets[k]!;
  const out: [number, number, number, number][] = [];
  plan.layout.forEach((p, i) => {
    const from = plan.offsets[i]!;
    const size = p.shape.reduce((a, b) => a * b, 1);
    const lo = Math.max(start, from);
    const hi = Math.min(start + count, from + size);
    if (lo < hi) out.push([i, lo - from, lo, hi - lo]);
  });
  return out;
}

class CpuSums implements SumVector {
  private readonly flat: Float32Array;
  /** Readbacks started for parameters that span several buckets (one each). */
  private readonly reads = new Map<Tensor, Promise<Float32Array | Int32Array>>();

  constructor(private readonly plan: BucketPlan) {
    this.flat = new Float32Array(plan.total);
  }

  async fill(k: number, tensors: readonly (Tensor | null)[], carried: Float32Array | null): Promise<void> {
    const parts = overlaps(this.plan, k).map(([i, from, at, n]) => {
      const t = tensors[i];
      if (t && !this.reads.has(t)) this.reads.set(t, t.toArray()); // started now: it reads what t holds now
      return { t, from, at, n };
    });
    for (const { t, from, at, n } of parts) {
      if (t) this.flat.set((await this.reads.get(t)!).subarray(from, from + n), at);
      else this.flat.fill(0, at, at + n);
    }
    if (carried) {
      const { start, count } = this.plan.buckets[k]!;
      for (let i = start; i < start + count; i++) this.flat[i]! += carried[i]!;
    }
  }

  async read(lo: number, hi: number): Promise<Float32Array> {
    return this.flat.slice(lo, hi);
  }

  add(lo: number, values: Float32Array): void {
    for (let i = 0; i < values.length; i++) this.flat[lo + i]! += values[i]!;
  }

  set(lo: number, values: Float32Array): void {
    this.flat.set(values, lo);
  }

  result(i: number): Tensor {
    const p = this.plan.layout[i]!;
    const start = this.plan.offsets[i]!;
    return tensor(this.flat.subarray(start, start + p.shape.reduce((a, b) => a * b, 1)), p.shape);
  }

  dispose(): void {
    this.reads.clear();
  }
}

class GpuSums implements SumVector {
  private readonly flat: Tensor;

  constructor(private readonly plan: BucketPlan) {
    this.flat = empty([Math.max(1, plan.total)], 'float32', 'data-parallel sums');
  }

  async fill(k: number, tensors: readonly (Tensor | null)[], carried: Float32Array | null): Promise<void> {
    for (const [i, from, at, n] of overlaps(this.plan, k)) {
      const t = tensors[i];
      if (t) copyView(slice(t, t.offset + from, n), this.at(at, n), 'data-parallel sums');
      else fillView(this.at(at, n), 0);
    }
    if (carried) {
      const { start, count } = this.plan.buckets[k]!;
      this.add(start, carried.subarray(start, start + count));
    }
  }

  async read(lo: number, hi: number): Promise<Float32Array> {
    const bytes = await runtime().executor.read(this.flat.buffer('data-parallel sums'), (this.flat.offset + lo) * 4, (hi - lo) * 4);
    return new Float32Array(bytes);
  }

  add(lo: number, values: Float32Array): void {
    const part = tensor(values, [values.length]);
    const into = this.flat.view([values.length], [1], this.flat.offset + lo);
    try {
      axpyInPlace(into, part, 1);
    } finally {
      into.dispose();
      part.dispose();
    }
  }

  set(lo: number, values: Float32Array): void {
    runtime().executor.upload(this.flat.buffer('data-parallel sums'), (this.flat.offset + lo) * 4, values);
  }

  result(i: number): Tensor {
    const p = this.plan.layout[i]!;
    const strides = p.shape.map((_, d) => p.shape.slice(d + 1).reduce((a, b) => a * b, 1));
    const v = this.flat.view(p.shape, strides, this.flat.offset + this.plan.offsets[i]!);
    try {
      return contiguousCopy(v, 'data-parallel sums');
    } finally {
      v.dispose();
    }
  }

  dispose(): void {
    this.flat.dispose();
  }

  /** Elements [at, at + n) of the vector, as a view for a kernel. */
  private at(at: number, n: number): View {
    return slice(this.flat, this.flat.offset + at, n);
  }
}

/** `n` elements of a contiguous tensor's buffer from element `offset`, as a flat view for a kernel. */
function slice(t: Tensor, offset: number, n: number): View {
  return { shape: [n], strides: [1], offset, dtype: 'float32', buffer: (op) => t.buffer(op) };
}
