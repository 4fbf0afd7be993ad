// The WebGPU backend's executor: records kernel dispatches into one command encoder and submits
// them in batches. Ops are eager in meaning but lazy in submission: dispatches pile up until
// something needs the results (a readback), the params buffer is full, or flush() is called.
//
// Ordering rules this file keeps, because queue.writeBuffer runs at once on the queue timeline
// while recorded commands run only when submitted:
//  - a buffer that the open batch uses is never handed out again before the batch is submitted
//    (release() defers it), and
//  - writing into a buffer that the open batch uses flushes the batch first.

import { BindGroupCache } from './bind-group-cache';
import type { BufferPool } from './buffer-pool';
import { Usage } from './buffer-pool';
import type { DeviceBuffer } from './device-buffer';
import { lostDeviceError } from './device-loss';
import { GPUValidationError, LimitError, OutOfMemoryError, type WebGradError } from './errors';
import { DeviceAsserts, dispatchRanges, PARAMS_SLOT_BYTES, type Dispatch, type DispatchObserver, type Executor } from './executor';
import type { Constants, Program } from './program';
import type { EngineLimits } from './limits';
import { PipelineCache, signature } from './pipeline-cache';

const PARAMS_SLOTS = 512;

export class GPUExecutor implements Executor {
  readonly backend = 'webgpu';
  readonly pipelines: PipelineCache;
  readonly bindGroups: BindGroupCache;
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private scopesOpen = false;
  private used = new Set<GPUBuffer>();
  private paramsCPU = new Uint8Array(PARAMS_SLOTS * PARAMS_SLOT_BYTES);
  private paramsGPU: GPUBuffer;
  private slot = 0;
  private errors: Promise<GPUError | null>[] = [];
  private staging = new Map<number, GPUBuffer[]>();
  private assertGPU: GPUBuffer;
  private asserts = new DeviceAsserts();
  observer: DispatchObserver | null = null;
  /** Told of every dispatch, dry runs' too: the pipelines some code needs (precompile.ts). */
  pipelineRecorder: ((kernel: Program, constants: Constants) => void) | null = null;
  /** Dispatches recorded since init (tests use it to see that work was split). */
  dispatchCount = 0;

  constructor(
    private device: GPUDevice,
    private pool: BufferPool,
    private limits: EngineLimits,
  ) {
    this.pipelines = new PipelineCache(device);
    this.bindGroups = new BindGroupCache(device);
    this.paramsGPU = device.createBuffer({
      label: 'webgrad.params',
      size: this.paramsCPU.byteLength,
      usage: Usage.UNIFORM | Usage.COPY_DST,
    });
    this.assertGPU = device.createBuffer({
      label: 'webgrad.asserts',
      size: 16,
      usage: Usage.STORAGE | Usage.COPY_SRC | Usage.COPY_DST,
    });
    pool.onDestroy = (b) => this.bindGroups.forget(b);
    pool.onPressure = () => this.flush();
  }

  /** The kernel binds `buffer` as array<atomic<u32>> and does atomicMax(&status[0], code) (see Executor). */
  deviceAssert(message: string, error: (m: string) => WebGradError): { buffer: GPUBuffer; code: number } {
    return { buffer: this.assertGPU, code: this.asserts.register(message, error) };
  }

  dispatch(kernel: Program, d: Dispatch): void {
    const ranges = dispatchRanges<GPUBuffer>(this, this.pool, this.limits, kernel, d);
    if (!ranges) return;
    if (this.slot === PARAMS_SLOTS) this.flush();
    this.openScopes();
    const pipeline = this.pipelines.get(kernel, d.constants);
    const layout = this.pipelines.layout(kernel.access);
    const group = this.bindGroups.get(
      layout,
      signature(kernel.access),
      { buffer: this.paramsGPU, offset: 0, size: PARAMS_SLOT_BYTES },
      ranges,
    );
    const pass = this.beginPass();
    const offset = this.slot++ * PARAMS_SLOT_BYTES;
    this.paramsCPU.set(kernel.encodeParams(d.values), offset);
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group, [offset]);
    for (const r of ranges) this.used.add(r.buffer);
    this.observer?.onDispatch(kernel, d, pass, this.dispatchCount, ranges);
    const [x, y, z] = fold(d.workgroups, this.limits.maxComputeWorkgroupsPerDimension);
    pass.dispatchWorkgroups(x, y, z);
    this.dispatchCount++;
    if (this.observer?.passPerDispatch) this.endPass();
  }

  /** Copy bytes between buffers, in order with the recorded dispatches. */
  copy(src: DeviceBuffer, srcOffset: number, dst: DeviceBuffer, dstOffset: number, size: number): void {
    this.copyGPU(src as GPUBuffer, srcOffset, dst as GPUBuffer, dstOffset, size);
  }

  private copyGPU(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, size: number): void {
    if (this.pool.dry) return;
    this.endPass();
    this.beginEncoder().copyBufferToBuffer(src, srcOffset, dst, dstOffset, size);
    this.used.add(src).add(dst);
  }

  /** Write CPU data into a buffer, after every recorded command that touches it. */
  upload(buffer: DeviceBuffer, offset: number, data: ArrayBufferView): void {
    if (this.pool.dry) return;
    const b = buffer as GPUBuffer;
    if (this.used.has(b)) this.flush();
    this.openScopes();
    this.device.queue.writeBuffer(b, offset, data.buffer, data.byteOffset, data.byteLength);
  }

  /** Give a tensor's buffer back to the pool once no recorded command can still use it. */
  release(buffer: DeviceBuffer): void {
    this.pool.release(buffer, this.used.has(buffer as GPUBuffer));
  }

  /** Submit everything recorded so far. */
  flush(): void {
    this.endPass();
    if (this.encoder) {
      if (this.slot > 0) this.device.queue.writeBuffer(this.paramsGPU, 0, this.paramsCPU, 0, this.slot * PARAMS_SLOT_BYTES);
      this.device.queue.submit([this.encoder.finish()]);
      this.encoder = null;
      this.observer?.afterSubmit?.();
    }
    this.slot = 0;
    this.used.clear();
    this.pool.settle();
    this.closeScopes();
  }

  /** Read `size` bytes of `buffer` from `offset` (both multiples of 4) back to the CPU. */
  async read(buffer: DeviceBuffer, offset: number, size: number): Promise<ArrayBuffer> {
    if (this.pool.dry) throw new Error('a dry run cannot read tensors back');
    const b = buffer as GPUBuffer;
    const padded = Math.max(16, Math.ceil(size / 16) * 16);
    const mark = this.asserts.mark;
    // The device-assert status rides along in the last 16 bytes of the staging buffer.
    const staging = this.takeStaging(padded + 16);
    this.copyGPU(b, offset, staging, 0, Math.min(padded, b.size - offset));
    this.copyGPU(this.assertGPU, 0, staging, padded, 16);
    this.flush();
    try {
      await staging.mapAsync(1 /* GPUMapMode.READ */, 0, padded + 16);
    } catch (e) {
      await this.checkErrors();
      throw (await lostDeviceError(this.device)) ?? e;
    }
    const out = staging.getMappedRange(0, padded).slice(0, size);
    const status = new Uint32Array(staging.getMappedRange(padded, 16))[0]!;
    staging.unmap();
    this.giveStaging(staging);
    await this.checkErrors();
    if (status) {
      this.upload(this.assertGPU, 0, new Uint32Array(4));
      throw this.asserts.failure(status, (m) => new GPUValidationError(m));
    }
    this.asserts.passed(mark);
    return out;
  }

  /** Wait for the GPU to finish all submitted work; throws the first GPU error seen. */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    await this.checkErrors();
  }

  /** Throw (as a WebGradError) the first GPU error of the batches submitted so far. */
  async checkErrors(): Promise<void> {
    const pending = this.errors;
    this.errors = [];
    const results = await Promise.all(pending);
    const first = results.find((e) => e);
    if (first) throw fromGPUError(first);
  }

  destroy(): void {
    this.encoder = null;
    this.pass = null;
    this.paramsGPU.destroy();
    this.assertGPU.destroy();
    for (const list of this.staging.values()) for (const b of list) b.destroy();
    this.staging.clear();
    this.bindGroups.clear();
  }

  private beginEncoder(): GPUCommandEncoder {
    this.openScopes();
    return (this.encoder ??= this.device.createCommandEncoder());
  }

  private beginPass(): GPUComputePassEncoder {
    if (!this.pass) this.pass = this.beginEncoder().beginComputePass(this.observer?.passPerDispatch?.());
    return this.pass;
  }

  private endPass(): void {
    if (this.pass) {
      this.observer?.beforeEnd?.(this.pass);
      this.pass.end();
      this.pass = null;
    }
  }

  /** GPU calls between openScopes and the next flush report their errors to this batch. */
  openScopes(): void {
    if (this.scopesOpen) return;
    this.device.pushErrorScope('out-of-memory');
    this.device.pushErrorScope('validation');
    this.scopesOpen = true;
  }

  private closeScopes(): void {
    if (!this.scopesOpen) return;
    this.scopesOpen = false;
    const validation = this.device.popErrorScope();
    const oom = this.device.popErrorScope();
    this.errors.push(oom.then(async (e) => e ?? (await validation)));
  }

  private takeStaging(size: number): GPUBuffer {
    return (
      this.staging.get(size)?.pop() ??
      this.device.createBuffer({ label: 'webgrad.staging', size, usage: Usage.MAP_READ | Usage.COPY_DST })
    );
  }

  private giveStaging(b: GPUBuffer): void {
    let list = this.staging.get(b.size);
    if (!list) this.staging.set(b.size, (list = []));
    if (list.length < 4) list.push(b);
    else b.destroy();
  }
}

/** A GPUError as the WebGradError webgrad throws for it. */
export function fromGPUError(e: GPUError): WebGradError {
  return e.constructor.name === 'GPUOutOfMemoryError' || /out of memory/i.test(e.message)
    ? new OutOfMemoryError(`the GPU ran out of memory: ${e.message}`)
    : new GPUValidationError(`the GPU rejected a command: ${e.message}`);
}

/**
 * Fold a flat workgroup count into a grid whose dimensions each stay within `max`. The grid may
 * hold a few more workgroups than `count`; kernels return early past their count.
 */
export function fold(count: number, max: number): [number, number, number] {
  if (count <= max) return [count, 1, 1];
  const y = Math.ceil(count / max);
  if (y <= max) return [Math.ceil(count / y), y, 1];
  const z = Math.ceil(count / (max * max));
  if (z > max) throw new LimitError(`a dispatch of ${count} workgroups exceeds ${max}³ (maxComputeWorkgroupsPerDimension³)`);
  const perZ = Math.ceil(count / z);
  const y2 = Math.ceil(perZ / max);
  return [Math.ceil(perZ / y2), y2, z];
}
