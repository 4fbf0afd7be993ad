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
  liveBytes = 0;
  pooledBytes = 0;
  peakBytes = 0;
  /** Called with each buffer that is destroyed, so caches can forget it. */
  onDestroy: (b: GPUBuffer) => void = () => {};

  constructor(
    private device: GPUDevice,
    private limits: EngineLimits,
  ) {}

  acquire(bytes: number, what = 'tensor'): GPUBuffer {
    const size = this.classOf(bytes);
    if (bytes > this.limits.maxBufferSize) {
      throw new LimitError(
        `${what} needs ${formatBytes(bytes)}, more than the device's maxBufferSize (${formatBytes(this.limits.maxBufferSize)})`,
      );
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

  /** Return a buffer for reuse. The caller guarantees no pending GPU work still reads it. */
  release(buf: GPUBuffer): void {
    const size = this.classOf(buf.size);
    this.liveBytes -= size;
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
    if (this.liveBytes + this.pooledBytes + size > budget) this.trim(budget - this.liveBytes - size);
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
