// A pool of GPU storage buffers keyed by size class. Creating a GPUBuffer is slow and fragments
// device memory; a training loop asks for the same sizes every step, so freed buffers are kept
// and handed out again. Size classes are four per power of two (at most 25% slack).

import { LimitError, OutOfMemoryError } from './errors';
import { formatBytes, type EngineLimits } from './limits';

// GPUBufferUsage values, spelled out so that no global is needed (Dawn does not install them).
export const Usage = {
  MAP_READ: 0x0001,
  MAP_WRITE: 0x0002,
  COPY_SRC: 0x0004,
  COPY_DST: 0x0008,
  UNIFORM: 0x0040,
  STORAGE: 0x0080,
  QUERY_RESOLVE: 0x0200,
} as const;

const TENSOR_USAGE = Usage.STORAGE | Usage.COPY_SRC | Usage.COPY_DST;

/** The byte size a request of `bytes` is rounded up to. */
export function sizeClass(bytes: number): number {
  if (bytes <= 256) return Math.max(16, Math.ceil(bytes / 16) * 16);
  const pow = 2 ** Math.floor(Math.log2(bytes));
  const step = pow / 4;
  return Math.ceil(bytes / step) * step;
}

export interface MemoryStats {
  /** Tensors alive (created and not yet disposed). */
  liveTensors: number;
  /** Bytes of GPU buffers held by live tensors (their size class). */
  liveBytes: number;
  /** Bytes of freed buffers kept for reuse. */
  pooledBytes: number;
  /** The highest liveBytes seen since init (or since resetPeak). */
  peakBytes: number;
}

/**
 * What a pooled buffer holds now: the bytes of tensor data (its size class may be larger), which
 * a dispatch binds, and the tensor's description for error messages. Set by the tensor storage
 * that owns the buffer.
 */
export const bufferContents = new WeakMap<GPUBuffer, { bytes: number; what: string }>();

let nextBufferId = 1;
const bufferIds = new WeakMap<GPUBuffer, number>();

/** A stable small id per GPUBuffer (keys of the bind-group cache). */
export function bufferId(b: GPUBuffer): number {
  let id = bufferIds.get(b);
  if (id === undefined) bufferIds.set(b, (id = nextBufferId++));
  return id;
}

export class BufferPool {
  private free = new Map<number, GPUBuffer[]>();
  /** Released buffers that recorded-but-unsubmitted commands still use (reusable after submit). */
  private pending: GPUBuffer[] = [];
  private pendingBytes = 0;
  liveBytes = 0;
  pooledBytes = 0;
  peakBytes = 0;
  /** Called with each buffer that is destroyed, so caches can forget it. */
  onDestroy: (b: GPUBuffer) => void = () => {};
  /** Submits recorded work so that pending buffers become reusable (set by the executor). */
  onPressure: () => void = () => {};

  constructor(
    private device: GPUDevice,
    private limits: EngineLimits,
  ) {}

  /** Set during a dry run: allocations are counted, not made. */
  dry: DryRunStats | null = null;
  /** Testing hook: the allocation after this many more fails with OutOfMemoryError (null: never). */
  failAfter: number | null = null;

  acquire(bytes: number, what = 'tensor'): GPUBuffer {
    const size = this.classOf(bytes);
    if (bytes > this.limits.maxBufferSize) {
      throw new LimitError(
        `${what} needs ${formatBytes(bytes)}, more than the device's maxBufferSize (${formatBytes(this.limits.maxBufferSize)})`,
      );
    }
    if (this.dry) return this.dry.acquire(size, bytes);
    if (this.failAfter !== null && this.failAfter-- <= 0) {
      this.failAfter = null;
      throw new OutOfMemoryError(`${what} needs ${formatBytes(size)}: allocation failed (injected for testing)`);
    }
    const list = this.free.get(size);
    let buf = list?.pop();
    if (buf) {
      this.pooledBytes -= size;
    } else {
      this.makeRoom(size, what);
      buf = this.device.createBuffer({ size, usage: TENSOR_USAGE });
    }
    this.liveBytes += size;
    if (this.liveBytes > this.peakBytes) this.peakBytes = this.liveBytes;
    return buf;
  }

  /** The size class of a request, never above maxBufferSize (stable: classOf(classOf(n)) = classOf(n)). */
  classOf(bytes: number): number {
    return Math.min(sizeClass(bytes), this.limits.maxBufferSize);
  }

  /**
   * Return a buffer for reuse. When `inFlight`, recorded commands that are not yet submitted
   * still use it: it becomes reusable at the next settle().
   */
  release(buf: GPUBuffer, inFlight = false): void {
    if (isDryBuffer(buf)) {
      this.dry?.release(buf.size);
      return;
    }
    const size = this.classOf(buf.size);
    this.liveBytes -= size;
    if (inFlight) {
      this.pending.push(buf);
      this.pendingBytes += size;
    } else {
      this.pool(buf, size);
    }
  }

  /** Recorded work was submitted: pending buffers can be handed out again. */
  settle(): void {
    for (const b of this.pending) this.pool(b, this.classOf(b.size));
    this.pending.length = 0;
    this.pendingBytes = 0;
  }

  private pool(buf: GPUBuffer, size: number): void {
    let list = this.free.get(size);
    if (!list) this.free.set(size, (list = []));
    list.push(buf);
    this.pooledBytes += size;
  }

  /** Free pooled buffers until `size` more live bytes fit the budget, or say why it cannot. */
  private makeRoom(size: number, what: string): void {
    const budget = this.limits.memoryBudgetBytes;
    if (this.liveBytes + size > budget) {
      throw new OutOfMemoryError(
        `${what} needs ${formatBytes(size)} but ${formatBytes(this.liveBytes)} of the memory budget ` +
          `(${formatBytes(budget)}) is already live`,
      );
    }
    if (this.liveBytes + this.pendingBytes + this.pooledBytes + size > budget) {
      if (this.pendingBytes) this.onPressure();
      this.trim(budget - this.liveBytes - size);
    }
  }

  /** Destroy pooled buffers, largest first, until at most `maxPooledBytes` stay pooled. */
  trim(maxPooledBytes = 0): void {
    const sizes = [...this.free.keys()].sort((a, b) => b - a);
    for (const size of sizes) {
      const list = this.free.get(size)!;
      while (list.length && this.pooledBytes > maxPooledBytes) {
        const b = list.pop()!;
        this.pooledBytes -= size;
        this.onDestroy(b);
        b.destroy();
      }
      if (!list.length) this.free.delete(size);
    }
  }

  resetPeak(): void {
    this.peakBytes = this.liveBytes;
  }
}

const dryBuffers = new WeakSet<object>();

function isDryBuffer(b: GPUBuffer): boolean {
  return dryBuffers.has(b);
}

/**
 * What a dry run allocated: ops run their shape checks and bookkeeping but no GPU memory is taken
 * and no kernel runs. The memory planner uses it to find the peak bytes of a training step.
 */
export class DryRunStats {
  liveBytes = 0;
  peakBytes = 0;
  /** The largest single allocation (it must fit one storage binding). */
  largestBytes = 0;
  /** Kernels dispatched, and the bytes their storage bindings span: what the planner prices a pass by. */
  dispatches = 0;
  boundBytes = 0;

  acquire(size: number, bytes: number): GPUBuffer {
    this.liveBytes += size;
    this.peakBytes = Math.max(this.peakBytes, this.liveBytes);
    this.largestBytes = Math.max(this.largestBytes, bytes);
    const fake = { size, label: 'dry-run', destroy() {} } as unknown as GPUBuffer;
    dryBuffers.add(fake);
    return fake;
  }

  release(size: number): void {
    this.liveBytes -= size;
  }

  dispatched(boundBytes: number): void {
    this.dispatches++;
    this.boundBytes += boundBytes;
  }
}
