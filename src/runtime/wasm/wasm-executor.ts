// The CPU backend's executor: each kernel runs at once, to completion, on the wasm thread pool
// (pool.ts), as its wasm twin called with the launch's own names — its bindings as byte addresses
// of the bound ranges, its WGSL Params fields, its override constants. Names the twin does not
// take (GPU-only fields: workgroup counts, tile sizes) are dropped; a field the launch left out
// is 0 and a constant its WGSL default, as on WebGPU. So there is nothing to batch, flush or wait
// for: copies, uploads and reads touch the wasm memory directly, in program order.

import { now } from '../../clock';
import type { BufferPool } from '../buffer-pool';
import type { BufferRange, DeviceBuffer, HeapBuffer } from '../device-buffer';
import { GPUValidationError, type WebGradError } from '../errors';
import { DeviceAsserts, dispatchRanges, type Dispatch, type DispatchObserver, type Executor } from '../executor';
import type { EngineLimits } from '../limits';
import type { Constants, Program } from '../program';
import type { WasmPool } from './pool';
import { SIGNATURES, type Signature, type WasmArg, type WasmRunArgs } from './signatures';

/**
 * Below `minBytes` bound, a kernel runs on the calling thread alone: waking a helper costs tens of
 * microseconds, more than such a kernel takes. (The tests set it to 0, so that every kernel's work
 * is shared between threads there.)
 */
export const parallelism = { minBytes: 64 * 1024 };

export class WasmExecutor implements Executor {
  readonly backend = 'wasm';
  readonly pipelines = null;
  observer: DispatchObserver | null = null;
  pipelineRecorder: ((kernel: Program, constants: Constants) => void) | null = null;
  dispatchCount = 0;
  private asserts = new DeviceAsserts();
  /** The device-side checks' status word (16 bytes of the heap). */
  private status: HeapBuffer;

  constructor(
    readonly wasm: WasmPool,
    private pool: BufferPool,
    private limits: EngineLimits,
    makeBuffer: (size: number) => HeapBuffer,
  ) {
    this.status = makeBuffer(16);
    this.bytes().fill(0, this.status.address, this.status.address + 16);
  }

  /** The whole wasm memory as bytes (a fresh view: the memory may have grown). */
  private bytes(): Uint8Array {
    return new Uint8Array(this.wasm.memory.buffer);
  }

  /** The kernel binds `buffer` as its status and atomically maxes `code` into word 0 (see Executor). */
  deviceAssert(message: string, error: (m: string) => WebGradError): { buffer: DeviceBuffer; code: number } {
    return { buffer: this.status, code: this.asserts.register(message, error) };
  }

  dispatch(kernel: Program, d: Dispatch): void {
    const twin = kernel.wasm;
    if (!twin) throw new Error(`${kernel.name} has no kernel on the CPU backend`);
    const ranges = dispatchRanges<HeapBuffer>(this, this.pool, this.limits, kernel, d);
    if (!ranges) return;
    const bound = ranges.reduce((n, r) => n + r.size, 0);
    const sig = SIGNATURES.get(twin.kernel)!;
    const args = twinArgs(sig, kernel, d, ranges, twin.defaults);
    const index = this.dispatchCount++;
    const observer = this.observer;
    observer?.onDispatch(kernel, d, null, index, ranges);
    const t0 = observer?.afterDispatch ? now() : 0;
    this.wasm.runSync(twin.kernel, args, bound < parallelism.minBytes ? 1 : this.wasm.threads);
    observer?.afterDispatch?.(index, now() - t0);
  }

  copy(src: DeviceBuffer, srcOffset: number, dst: DeviceBuffer, dstOffset: number, size: number): void {
    if (this.pool.dry) return;
    const from = (src as HeapBuffer).address + srcOffset;
    this.bytes().copyWithin((dst as HeapBuffer).address + dstOffset, from, from + size);
  }

  upload(buffer: DeviceBuffer, offset: number, data: ArrayBufferView): void {
    if (this.pool.dry) return;
    this.bytes().set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), (buffer as HeapBuffer).address + offset);
  }

  release(buffer: DeviceBuffer): void {
    this.pool.release(buffer);
  }

  flush(): void {}

  async read(buffer: DeviceBuffer, offset: number, size: number): Promise<ArrayBuffer> {
    if (this.pool.dry) throw new Error('a dry run cannot read tensors back');
    const mark = this.asserts.mark;
    const status = new Int32Array(this.wasm.memory.buffer, this.status.address, 4);
    if (status[0]) {
      const code = status[0];
      status.fill(0);
      throw this.asserts.failure(code, (m) => new GPUValidationError(m));
    }
    this.asserts.passed(mark);
    // A copy in an ArrayBuffer of its own (the memory may be a SharedArrayBuffer).
    const out = new ArrayBuffer(size);
    const at = (buffer as HeapBuffer).address + offset;
    new Uint8Array(out).set(this.bytes().subarray(at, at + size));
    return out;
  }

  async sync(): Promise<void> {}

  async checkErrors(): Promise<void> {}

  openScopes(): void {}

  destroy(): void {
    void this.wasm.close();
  }
}

/** The twin's arguments: its bindings, params and constants, by the names the launch gave. */
function twinArgs(sig: Signature, kernel: Program, d: Dispatch, ranges: readonly BufferRange<HeapBuffer>[], defaults: Readonly<Record<string, number>>): WasmRunArgs {
  const bind: Record<string, number> = {};
  for (const f of sig.bind) {
    const i = kernel.bindings.indexOf(f.name);
    bind[f.name] = ranges[i]!.buffer.address + ranges[i]!.offset;
  }
  const params: Record<string, WasmArg> = {};
  for (const f of sig.params) params[f.name] = d.values[f.name] ?? 0;
  const constants: Record<string, WasmArg> = {};
  for (const f of sig.constants) constants[f.name] = d.constants?.[f.name] ?? defaults[f.name] ?? 0;
  return { bind, params, constants };
}
