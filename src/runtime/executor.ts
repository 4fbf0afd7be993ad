// What the layers above the runtime ask of a backend: run a kernel, copy, upload, read back,
// flush, wait, device-side checks and giving buffers back. Two executors implement it: the WebGPU
// one (gpu-executor.ts: dispatches recorded into command buffers, submitted in batches) and the
// CPU one (wasm/wasm-executor.ts: each kernel runs at once on the wasm thread pool). Ops and the
// kernels layer see only this interface.

import { bufferContents, type BufferPool } from './buffer-pool';
import type { PipelineCache } from './pipeline-cache';
import type { BufferRange, DeviceBuffer } from './device-buffer';
import { LimitError, type WebGradError } from './errors';
import { formatBytes, type EngineLimits } from './limits';
import type { Constants, ParamValues, Program } from './program';

/** Bytes of one dispatch's uniform parameters on WebGPU (a slot of the params buffer; dynamic offsets). */
export const PARAMS_SLOT_BYTES = 256;

export type BackendName = 'webgpu' | 'wasm';

export interface Dispatch {
  constants?: Constants;
  /** One range (or whole buffer) per storage binding of the kernel, in order. */
  buffers: readonly (DeviceBuffer | BufferRange)[];
  /** The kernel's parameters by name (its WGSL Params fields; each `<binding>_offset` filled in). */
  values: ParamValues;
  /** WebGPU workgroups; folded into a 2-D/3-D grid when it passes the per-dimension limit. */
  workgroups: number;
}

/** Observes each dispatch (the profiler and tests hook in here). */
export interface DispatchObserver {
  /**
   * `ranges`: what each storage binding of the dispatch binds; `pass`: the WebGPU compute pass
   * (null on the CPU backend).
   */
  onDispatch(kernel: Program, d: Dispatch, pass: GPUComputePassEncoder | null, index: number, ranges: readonly BufferRange[]): void;
  /** The CPU backend: the dispatch `index` took `ms` (kernels run at once, so this is its own time). */
  afterDispatch?(index: number, ms: number): void;
  beforeEnd?(pass: GPUComputePassEncoder): void;
  /**
   * With this, every dispatch gets a compute pass of its own, begun with the descriptor it returns
   * (the profiler's timestamp writes: Dawn and Chromium time whole passes).
   */
  passPerDispatch?(): GPUComputePassDescriptor;
  /** After each queue submission. */
  afterSubmit?(): void;
}

export interface Executor {
  readonly backend: BackendName;
  /** Compiled pipelines (null on the CPU backend, which compiles nothing per kernel). */
  readonly pipelines: PipelineCache | null;
  observer: DispatchObserver | null;
  /** Told of every dispatch, dry runs' too: the pipelines some code needs (precompile.ts). */
  pipelineRecorder: ((kernel: Program, constants: Constants) => void) | null;
  /** Dispatches made since init (tests use it to see that work was split). */
  dispatchCount: number;

  /**
   * A device-side check, for conditions only the device can see (e.g. a label out of range in a
   * tensor). Bind `buffer` as a 'write' storage binding and have the kernel atomically max `code`
   * into its first word when the condition fails; the next readback throws `error(message)`
   * instead of returning data computed from bad input.
   */
  deviceAssert(message: string, error: (m: string) => WebGradError): { buffer: DeviceBuffer; code: number };
  dispatch(kernel: Program, d: Dispatch): void;
  /** Copy bytes between buffers, in order with the dispatches. */
  copy(src: DeviceBuffer, srcOffset: number, dst: DeviceBuffer, dstOffset: number, size: number): void;
  /** Write CPU data into a buffer, after every dispatch before it that touches it. */
  upload(buffer: DeviceBuffer, offset: number, data: ArrayBufferView): void;
  /** Give a tensor's buffer back to the pool once no dispatch can still use it. */
  release(buffer: DeviceBuffer): void;
  /** Start everything recorded so far. */
  flush(): void;
  /** Read `size` bytes of `buffer` from `offset` (both multiples of 4) back. */
  read(buffer: DeviceBuffer, offset: number, size: number): Promise<ArrayBuffer>;
  /** Wait for all work to finish; throws the first device error seen. */
  sync(): Promise<void>;
  /** Throw (as a WebGradError) the first device error of the work so far. */
  checkErrors(): Promise<void>;
  /** Device calls from here to the next flush report their errors to this batch (WebGPU's error scopes). */
  openScopes(): void;
  destroy(): void;
}

/**
 * The messages of the device-side checks registered and not yet known to have passed, by code
 * (both executors keep one: the device holds only the largest failed code).
 */
export class DeviceAsserts {
  private messages = new Map<number, { message: string; error: (m: string) => WebGradError }>();
  private next = 1;

  register(message: string, error: (m: string) => WebGradError): number {
    const code = this.next++;
    this.messages.set(code, { message, error });
    return code;
  }

  /** The code the next registration gets: checks below it were registered before now. */
  get mark(): number {
    return this.next;
  }

  /** Every check registered before `mark` ran and passed: forget them. */
  passed(mark: number): void {
    for (const code of this.messages.keys()) if (code < mark) this.messages.delete(code);
  }

  /** The error for a failed check's `code` (every pending check is then forgotten). */
  failure(code: number, fallback: (m: string) => WebGradError): WebGradError {
    const entry = this.messages.get(code);
    this.messages.clear();
    return entry ? entry.error(entry.message) : fallback(`a device-side check (code ${code}) failed`);
  }
}

/**
 * What every executor checks before it runs a dispatch, and the ranges the dispatch binds: as many
 * buffers as the kernel has bindings, each within maxStorageBufferBindingSize (a LimitError naming
 * the kernel and the operand). Null when there is nothing to run: no workgroups, or a dry run (which
 * only counts the dispatch and the bytes it binds). The pipeline recorder hears of every dispatch
 * that has work, dry runs' too.
 */
export function dispatchRanges<B extends DeviceBuffer>(
  ex: Pick<Executor, 'pipelineRecorder'>,
  pool: BufferPool,
  limits: EngineLimits,
  kernel: Program,
  d: Dispatch,
): BufferRange<B>[] | null {
  if (d.buffers.length !== kernel.access.length) {
    throw new Error(`${kernel.name}: ${d.buffers.length} buffers bound, the kernel has ${kernel.access.length}`);
  }
  if (d.workgroups <= 0) return null;
  ex.pipelineRecorder?.(kernel, d.constants ?? {});
  if (pool.dry) {
    pool.dry.dispatched(d.buffers.reduce((n, b) => n + b.size, 0));
    return null;
  }
  const ranges = d.buffers.map((b) => ('buffer' in b ? b : wholeRange(b))) as BufferRange<B>[];
  for (const r of ranges) {
    if (r.size > limits.maxStorageBufferBindingSize) {
      const what = bufferContents.get(r.buffer)?.what ?? 'an operand';
      throw new LimitError(
        `${kernel.name}: ${what} (${formatBytes(r.size)}) is larger than one storage binding may be ` +
          `(maxStorageBufferBindingSize ${formatBytes(limits.maxStorageBufferBindingSize)})`,
      );
    }
  }
  return ranges;
}

/** A whole buffer bound: the range that holds tensor data (rounded up to 16 bytes for vec4 views). */
export function wholeRange<B extends DeviceBuffer>(b: B): BufferRange<B> {
  const bytes = bufferContents.get(b)?.bytes ?? b.size;
  return { buffer: b, offset: 0, size: Math.min(b.size, Math.ceil(bytes / 16) * 16) };
}
