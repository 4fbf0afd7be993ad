// wg.profile(fn): where the GPU time of some work goes, kernel by kernel.
//
// With the 'timestamp-query' feature, every dispatch runs in a compute pass of its own whose
// beginning and end write a GPU timestamp (WebGPU times passes, not single dispatches, and the
// executor normally records a whole batch of dispatches into one pass). The extra passes cost a
// little GPU time each, so a profiled run is slower than a normal one: profile only when asked.
// The timestamps are resolved into a buffer and read back when fn is done.
//
// Without the feature (or with { timestamps: false }) there are no GPU times per kernel: each
// queue submission is timed from submit to onSubmittedWorkDone on the CPU clock, which includes
// the queue's own latency and is only as fine as the event loop that reports it.
//
// Either way every dispatch is counted, with the bytes its storage bindings bind.
//
// On the CPU backend (wasm) there is no GPU and nothing to time on one: each kernel runs at once and
// to completion, so its time on the CPU clock is exactly its own, and that is what gpuMs holds there
// (timestamps is false, and there are no submissions).

import { now } from '../clock';
import { runtime } from '../runtime/device';
import { Usage } from '../runtime/buffer-pool';
import type { BufferRange } from '../runtime/device-buffer';
import type { BackendName } from '../runtime/executor';
import { WebGradError } from '../runtime/errors';
import type { Dispatch, DispatchObserver } from '../runtime/executor';
import type { Program } from '../runtime/program';
import { summarize, type KernelProfile, type OpProfile } from './summary';

/** Timestamp queries per query set (the largest a query set may be). */
const QUERIES_PER_SET = 4096;

export interface ProfileOptions {
  /**
   * Time kernels with timestamp queries when the device has them (default true). false reports
   * only wall time per submission, as on a device without 'timestamp-query'.
   */
  timestamps?: boolean;
}

/** One dispatch, in the order recorded. */
export interface DispatchProfile {
  kernel: string;
  /** The kernel's op: its name up to the first '.' or '/' ('matmul.direct' → 'matmul'). */
  op: string;
  workgroups: number;
  /** Bytes bound to its storage bindings (what it may read and write). */
  bytes: number;
  constants: Record<string, number | boolean>;
  /** GPU time from the first profiled dispatch's start to this one's (null without timestamps; the CPU backend: CPU time). */
  startMs: number | null;
  /** GPU time of its pass (null without timestamps; the CPU backend: the kernel's run time). */
  gpuMs: number | null;
}

/** One queue submission: the dispatches it carried and how long the queue took over it. */
export interface SubmissionProfile {
  dispatches: number;
  /** From submit (or the previous submission's completion, if later) to onSubmittedWorkDone. */
  wallMs: number;
}

export interface Profile<T = unknown> {
  /** What fn returned. */
  result: T;
  /** The backend that ran the kernels ('wasm': gpuMs are the kernels' CPU times). */
  backend: BackendName;
  /** True when GPU times come from timestamp queries; false: only wall times per submission. */
  timestamps: boolean;
  /** Sum of the dispatches' GPU times (null without timestamps). */
  totalGpuMs: number | null;
  /** Wall time of the whole profile: fn, and waiting for the GPU to finish its work. */
  wallMs: number;
  /** Per kernel name, most GPU time first (most bytes first without timestamps). */
  kernels: KernelProfile[];
  /** The same, grouped by op. */
  byOp: OpProfile[];
  dispatches: DispatchProfile[];
  submissions: SubmissionProfile[];
}

/**
 * Run `fn` (sync or async) and report the GPU work it caused: per kernel and per op, calls, GPU
 * time and bytes bound. Pending work is submitted first, and everything fn submitted is waited
 * for before returning. Profiles do not nest.
 */
export async function profile<T>(fn: () => T | Promise<T>, opts: ProfileOptions = {}): Promise<Profile<T>> {
  const rt = runtime();
  const ex = rt.executor;
  if (ex.observer) throw new WebGradError('profile: another profile (or dispatch observer) is active; profiles do not nest');
  const timed = (opts.timestamps ?? true) && rt.hasFeature('timestamp-query');
  ex.flush(); // a pass left open would take the first dispatches without timestamps
  const cpu = rt.backend === 'wasm';
  const recorder = new Recorder(rt.device, timed, cpu);
  const started = now();
  ex.observer = recorder;
  try {
    let result: T;
    try {
      result = await fn();
    } finally {
      ex.flush(); // fn's last dispatches, while their passes can still be timed
      ex.observer = null;
    }
    const submissions = await recorder.submissionTimes();
    const gpu = timed ? await recorder.passTimes() : null;
    await ex.checkErrors();
    const wallMs = now() - started;
    const times = gpu ?? (cpu ? recorder.cpuTimes() : null);
    const dispatches = recorder.dispatches.map((d, i) => ({
      ...d,
      startMs: times ? times[i]!.startMs : null,
      gpuMs: times ? times[i]!.gpuMs : null,
    }));
    const totalGpuMs = times ? dispatches.reduce((s, d) => s + d.gpuMs!, 0) : null;
    return { result, backend: rt.backend, timestamps: timed, totalGpuMs, wallMs, ...summarize(dispatches), dispatches, submissions };
  } finally {
    recorder.destroy();
  }
}

/** The dispatch observer of one profile. */
class Recorder implements DispatchObserver {
  readonly dispatches: Omit<DispatchProfile, 'startMs' | 'gpuMs'>[] = [];
  private readonly querySets: GPUQuerySet[] = [];
  private passes = 0;
  private readonly submissions: { dispatches: number; submittedAt: number; done: Promise<number> }[] = [];
  private submitted = 0;
  /** Set only when timing: the executor then gives each dispatch a pass of its own. */
  readonly passPerDispatch?: () => GPUComputePassDescriptor;

  /** The CPU backend: when each dispatch started and how long it ran (ms, on the CPU clock). */
  private readonly ran: { at: number; ms: number }[] = [];

  constructor(
    private readonly device: GPUDevice | null,
    timed: boolean,
    /** The CPU backend: kernels are named by the wasm twin that ran (their op by the WGSL kernel's name). */
    private readonly cpu: boolean,
  ) {
    if (timed) this.passPerDispatch = () => this.timestampWrites();
  }

  afterDispatch(_index: number, ms: number): void {
    this.ran.push({ at: now() - ms, ms });
  }

  /** The CPU backend's kernel times, as passTimes() gives the GPU's. */
  cpuTimes(): { startMs: number; gpuMs: number }[] {
    const origin = this.ran[0]?.at ?? 0;
    return this.ran.map((r) => ({ startMs: r.at - origin, gpuMs: r.ms }));
  }

  onDispatch(kernel: Program, d: Dispatch, _pass: GPUComputePassEncoder | null, _index: number, ranges: readonly BufferRange[]): void {
    this.dispatches.push({
      kernel: this.cpu && kernel.wasm ? kernel.wasm.kernel : kernel.name,
      op: opOf(kernel.name),
      workgroups: d.workgroups,
      bytes: ranges.reduce((s, r) => s + r.size, 0),
      constants: { ...d.constants },
    });
  }

  afterSubmit(): void {
    const count = this.dispatches.length - this.submitted;
    this.submitted = this.dispatches.length;
    this.submissions.push({ dispatches: count, submittedAt: now(), done: this.device!.queue.onSubmittedWorkDone().then(now) });
  }

  /** Timestamp writes for the next pass: queries 2i and 2i + 1 of the query sets. */
  private timestampWrites(): GPUComputePassDescriptor {
    const q = 2 * this.passes++;
    const set = Math.floor(q / QUERIES_PER_SET);
    if (set === this.querySets.length) {
      this.querySets.push(this.device!.createQuerySet({ type: 'timestamp', count: QUERIES_PER_SET, label: 'webgrad.profile' }));
    }
    const i = q % QUERIES_PER_SET;
    return { timestampWrites: { querySet: this.querySets[set]!, beginningOfPassWriteIndex: i, endOfPassWriteIndex: i + 1 } };
  }

  /** Each submission's time on the queue; the queue runs submissions in order. */
  async submissionTimes(): Promise<SubmissionProfile[]> {
    const done = await Promise.all(this.submissions.map((s) => s.done));
    let previous = -Infinity;
    return this.submissions.map((s, i) => {
      const wallMs = Math.max(0, done[i]! - Math.max(s.submittedAt, previous));
      previous = done[i]!;
      return { dispatches: s.dispatches, wallMs };
    });
  }

  /** Each pass's start (relative to the first) and duration, read back from the query sets. */
  async passTimes(): Promise<{ startMs: number; gpuMs: number }[]> {
    const queries = 2 * this.passes;
    if (queries === 0) return [];
    const bytes = this.querySets.length * QUERIES_PER_SET * 8;
    const resolved = this.device!.createBuffer({ label: 'webgrad.profile.resolve', size: bytes, usage: Usage.QUERY_RESOLVE | Usage.COPY_SRC });
    const readable = this.device!.createBuffer({ label: 'webgrad.profile.read', size: bytes, usage: Usage.MAP_READ | Usage.COPY_DST });
    try {
      const encoder = this.device!.createCommandEncoder({ label: 'webgrad.profile' });
      this.querySets.forEach((set, k) => {
        const count = Math.min(QUERIES_PER_SET, queries - k * QUERIES_PER_SET);
        encoder.resolveQuerySet(set, 0, count, resolved, k * QUERIES_PER_SET * 8);
      });
      encoder.copyBufferToBuffer(resolved, 0, readable, 0, bytes);
      this.device!.queue.submit([encoder.finish()]);
      await readable.mapAsync(1 /* GPUMapMode.READ */);
      const stamps = new BigUint64Array(readable.getMappedRange().slice(0));
      readable.unmap();
      const origin = stamps[0]!;
      const times = [];
      for (let p = 0; p < this.passes; p++) {
        const begin = stamps[2 * p]!;
        const end = stamps[2 * p + 1]!;
        // Timestamps may be quantized (Chromium rounds them to 100 µs by default) or, on some
        // drivers, out of order across a reset: never report a negative time.
        times.push({ startMs: begin > origin ? Number(begin - origin) / 1e6 : 0, gpuMs: end > begin ? Number(end - begin) / 1e6 : 0 });
      }
      return times;
    } finally {
      resolved.destroy();
      readable.destroy();
    }
  }

  destroy(): void {
    for (const s of this.querySets) s.destroy();
  }
}

/** A kernel's op: 'matmul.direct' → 'matmul', 'conv2d.grad_input/…' → 'conv2d'. */
function opOf(kernel: string): string {
  return kernel.split(/[./]/, 1)[0]!;
}
