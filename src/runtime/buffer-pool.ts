// A pool of device buffers keyed by size class, for both backends: GPUBuffers on WebGPU, blocks of
// the wasm memory on the CPU backend (an allocator given by the backend makes them). Creating a
// GPUBuffer is slow and fragments device memory, and so would a heap block per tensor; a training
// loop asks for the same sizes every step, so freed buffers are kept and handed out again. Size
// classes are four per power of two (at most 25% slack).

import type { DeviceBuffer } from './device-buffer';
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

/** The usage of every tensor's GPUBuffer. */
export const TENSOR_USAGE = Usage.STORAGE | Usage.COPY_SRC | Usage.COPY_DST;

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
  /** Bytes of device buffers held by live tensors (their size class). */
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
export const bufferContents = new WeakMap<DeviceBuffer, { bytes: number; what: string }>();

let nextBufferId = 1;
const bufferIds = new WeakMap<DeviceBuffer, number>();

/** A stable small id per buffer (keys of the bind-group cache). */
export function bufferId(b: DeviceBuffer): number {
  let id = bufferIds.get(b);
  if (id === undefined) bufferIds.set(b, (id = nextBufferId++));
  return id;
}

/** Makes a device buffer of `size` bytes (throws OutOfMemoryError when the device has no room). */
export type Allocator = (size: number) => DeviceBuffer;

export class BufferPool {
  private free = new Map<number, DeviceBuffer[]>();
  /** Released buffers that recorded-but-unsubmitted commands still use (reusable after submit). */
  private pending: DeviceBuffer[] = [];
  private pendingBytes = 0;
  liveBytes = 0;
  pooledBytes = 0;
  peakBytes = 0;
  /** Called with each buffer that is destroyed, so caches can forget it. */
  onDestroy: (b: DeviceBuffer) => void = () => {};
  /** Submits recorded work so that pending buffers become reusable (set by the executor). */
  onPressure: () => void = () => {};

  constructor(
    private allocate: Allocator,
    private limits: EngineLimits,
  ) {}

  /** Set during a dry run: allocations are counted, not made. */
  dry: DryRunStats | null = null;
  /** Testing hook: the allocation after this many more fails with OutOfMemoryError (null: never). */
  failAfter: number | null = null;

  acquire(bytes: number, what = 'tensor'): DeviceBuffer {
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
      buf = this.allocate(size);
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
  release(buf: DeviceBuffer, inFlight = false): void {
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

  private pool(buf: DeviceBuffer, size: number): void {
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

function isDryBuffer(b: DeviceBuffer): boolean {
  return dryBuffers.has(b);
}

/**
 * What a dry run allocated: ops run their shape checks and bookkeeping but no device memory is taken
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

  acquire(size: number, bytes: number): DeviceBuffer {
    this.liveBytes += size;
    this.peakBytes = Math.max(this.peakBytes, this.liveBytes);
    this.largestBytes = Math.max(this.largestBytes, bytes);
    const fake = { size, label: 'dry-run', destroy() {} } as unknown as DeviceBuffer;
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
