// The engine's one device: the choice of backend (WebGPU, or the CPU's WebAssembly SIMD), acquiring
// it, its limits and features, and its loss. Everything above the runtime works through
// `runtime()`'s pool and executor, whichever backend they belong to.

import { BufferPool, DryRunStats, TENSOR_USAGE } from './buffer-pool';
import { HeapBuffer } from './device-buffer';
import { deviceLostError } from './device-loss';
import { NotInitializedError, OutOfMemoryError, WebGPUUnavailableError, WebGradError } from './errors';
import type { BackendName, Executor } from './executor';
import { fromGPUError, GPUExecutor } from './gpu-executor';
import { getGPU, unavailableMessage } from './gpu-provider';
import { engineLimits, formatBytes, requiredLimits, wasmLimits, type Budget, type EngineLimits } from './limits';
import { simdSupported } from './wasm/module';
import { WasmPool } from './wasm/pool';
import { WasmExecutor } from './wasm/wasm-executor';

export type { BackendName } from './executor';

/** Which backend init() starts: 'auto' chooses (see start()). */
export type BackendChoice = 'auto' | BackendName;

export interface WasmOptions {
  /** Threads that run kernels, the calling one included (default: the machine's cores, at most 16). */
  threads?: number;
  /** The most the wasm memory (every tensor) may grow to, in bytes (default 2 GiB; at most 4 GiB). */
  maxMemoryBytes?: number;
  /** Use relaxed SIMD's fused multiply-add where the engine has it (default true). */
  relaxedSimd?: boolean;
}

/** What a dry run would have done (Runtime.dryRun). */
export interface DryRunResult {
  /** Peak bytes allocated above what was live before. */
  peakBytes: number;
  /** The largest single tensor. */
  largestBytes: number;
  /** Kernels dispatched, and the bytes their storage bindings span. */
  dispatches: number;
  boundBytes: number;
}

export interface InitOptions {
  /**
   * 'auto' (the default; in Node, $WEBGRAD_BACKEND may set another): WebGPU on a hardware
   * adapter, the CPU backend (WebAssembly SIMD) where WebGPU is missing or its adapter is a
   * software fallback. 'webgpu' or 'wasm' take that backend (and fail if it cannot start).
   */
  backend?: BackendChoice;
  powerPreference?: GPUPowerPreference;
  /** Use this device instead of requesting one (webgrad will not destroy it). Implies WebGPU. */
  device?: GPUDevice;
  /** Caps below the device's limits (tests use it to simulate small GPUs). */
  budget?: Budget;
  /** Ask for the fallback (software) adapter. Implies WebGPU. */
  forceFallbackAdapter?: boolean;
  /**
   * Time kernel configurations per shape class and keep the fastest (default true). Off, every
   * kernel uses its untimed default: results are repeatable run to run.
   */
  autotune?: boolean;
  /** The CPU backend's threads, memory and SIMD. */
  wasm?: WasmOptions;
}

export interface AdapterDescription {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter: boolean;
}

/** The CPU backend as it runs. */
export interface WasmInfo {
  /** Threads that run kernels, the calling one included. */
  threads: number;
  /** Why there is only one thread, when there is (no SharedArrayBuffer: the page is not cross-origin isolated). */
  threadsReason?: string;
  /** Relaxed SIMD's fused multiply-add is in use. */
  relaxedSimd: boolean;
  /** The most the wasm memory may grow to. */
  maxMemoryBytes: number;
}

export interface DeviceInfo {
  /** The backend that runs the kernels. */
  backend: BackendName;
  /** Why this backend: what 'auto' found, or that it was asked for. */
  backendReason: string;
  /** The WebGPU adapter (on the CPU backend, a description of it). */
  adapterInfo: AdapterDescription;
  limits: EngineLimits;
  /** The optional WebGPU features in use (none on the CPU backend). */
  features: string[];
  /** The CPU backend's threads and SIMD (absent on WebGPU). */
  wasm?: WasmInfo;
}

/** Optional features webgrad uses when the adapter has them. */
export const WANTED_FEATURES = ['shader-f16', 'subgroups', 'timestamp-query'] as const;

interface Backend {
  info: DeviceInfo;
  pool: BufferPool;
  executor: Executor;
  /** The GPU device (null on the CPU backend). */
  device: GPUDevice | null;
  ownsDevice: boolean;
}

export class Runtime {
  readonly info: DeviceInfo;
  readonly pool: BufferPool;
  readonly executor: Executor;
  /** The GPU device (null on the CPU backend). */
  readonly device: GPUDevice | null;
  readonly ownsDevice: boolean;
  lost: GPUDeviceLostInfo | null = null;
  /** Tensors alive (for memory()). */
  liveTensors = 0;
  /** A device error seen outside any batch, thrown at the next call. */
  private pendingError: WebGradError | null = null;

  constructor(
    b: Backend,
    readonly options: InitOptions = {},
  ) {
    this.info = b.info;
    this.pool = b.pool;
    this.executor = b.executor;
    this.device = b.device;
    this.ownsDevice = b.ownsDevice;
    void b.device?.lost.then((info) => {
      if (runtimeState.current === this) this.lost = info;
    });
  }

  get backend(): BackendName {
    return this.info.backend;
  }

  get limits(): EngineLimits {
    return this.info.limits;
  }

  hasFeature(f: string): boolean {
    return this.info.features.includes(f);
  }

  /** Throws if the device is gone or an earlier asynchronous device error is unreported. */
  check(): void {
    if (this.lost) throw deviceLostError(this.lost);
    if (this.pendingError) {
      const e = this.pendingError;
      this.pendingError = null;
      throw e;
    }
  }

  /**
   * Run `fn` without touching the device: allocations are only counted and kernels are skipped.
   * Returns the peak bytes allocated by fn (above what was live before), its largest tensor, and
   * the kernels it would have dispatched with the bytes they bind.
   * (src/memory.ts's dryRun() also rewinds the random generator: use that one.)
   */
  dryRun(fn: () => void): DryRunResult {
    if (this.pool.dry) throw new Error('dry runs do not nest');
    const stats = new DryRunStats();
    this.pool.dry = stats;
    try {
      fn();
    } finally {
      this.pool.dry = null;
    }
    return { peakBytes: stats.peakBytes, largestBytes: stats.largestBytes, dispatches: stats.dispatches, boundBytes: stats.boundBytes };
  }

  reportError(e: WebGradError): void {
    this.pendingError ??= e;
  }
}

const runtimeState: { current: Runtime | null; starting: Promise<Runtime> | null } = { current: null, starting: null };

/** The initialised runtime; throws a clear error before init() or after device loss. */
export function runtime(): Runtime {
  const rt = runtimeState.current;
  if (!rt) throw new NotInitializedError('webgrad is not initialised: call `await wg.init()` first');
  rt.check();
  return rt;
}

/** The runtime if there is one, without checks (for dispose paths that must never throw). */
export function currentRuntime(): Runtime | null {
  return runtimeState.current;
}

let defaultBackend: { choice: string; source: string } = { choice: 'auto', source: 'the default' };

/**
 * The backend init() takes when its options name none; `source` says who chose it (the Node entry
 * reads $WEBGRAD_BACKEND). Checked by init(), so that a bad value fails there, not at import.
 */
export function setDefaultBackend(b: string, source: string): void {
  defaultBackend = { choice: b, source };
}

function checkBackend(b: unknown, what: string): BackendChoice {
  if (b !== 'auto' && b !== 'webgpu' && b !== 'wasm') {
    throw new WebGradError(`${what} must be 'auto', 'webgpu' or 'wasm', got ${JSON.stringify(b)}`);
  }
  return b;
}

export async function init(opts: InitOptions = {}): Promise<DeviceInfo> {
  const cur = runtimeState.current;
  if (cur && !cur.lost) return cur.info;
  runtimeState.starting ??= start(opts).finally(() => (runtimeState.starting = null));
  const rt = await runtimeState.starting;
  return rt.info;
}

/** Release the device (and, in Node, let the process exit). Tensors made before are unusable. */
export function shutdown(): void {
  const rt = runtimeState.current;
  runtimeState.current = null;
  if (!rt) return;
  rt.executor.destroy();
  rt.pool.trim(0);
  if (rt.ownsDevice) rt.device?.destroy();
}

/**
 * The backend for `opts`: the one asked for, or (auto) WebGPU on a hardware adapter and the CPU
 * backend where there is no WebGPU, no adapter, or only a software one — a CPU running WebGPU's
 * shaders through an emulated GPU is an order of magnitude slower than WebAssembly SIMD.
 */
async function start(opts: InitOptions): Promise<Runtime> {
  const [choice, source] =
    opts.backend !== undefined ? [checkBackend(opts.backend, 'init(): backend'), `init({ backend: '${opts.backend}' })`]
    : opts.device ? ['webgpu', 'init({ device })']
    : opts.forceFallbackAdapter ? ['webgpu', 'init({ forceFallbackAdapter })']
    : [checkBackend(defaultBackend.choice, defaultBackend.source), defaultBackend.source];
  if (choice === 'wasm') return install(await startWasm(opts, `asked for (${source})`));
  if (choice === 'webgpu') return install(await startWebGPU(opts, null, `asked for (${source})`));
  if (!simdSupported()) return install(await startWebGPU(opts, null, 'WebGPU (this JavaScript engine has no WebAssembly SIMD for the CPU backend)'));
  let gpu: GPU;
  try {
    gpu = await getGPU();
  } catch (e) {
    if (!(e instanceof WebGPUUnavailableError)) throw e;
    return install(await startWasm(opts, `WebGPU is unavailable here (${firstSentence(e.message)})`));
  }
  const adapter = await gpu.requestAdapter({ powerPreference: opts.powerPreference });
  if (!adapter) return install(await startWasm(opts, 'WebGPU found no adapter'));
  const desc = describeAdapter(adapter.info, (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter);
  if (desc.isFallbackAdapter) {
    const name = [desc.description, desc.architecture].filter(Boolean).join(', ') || 'a software adapter';
    return install(await startWasm(opts, `WebGPU's adapter is a software fallback (${name}), slower than WebAssembly SIMD on the CPU`));
  }
  return install(await startWebGPU(opts, adapter, `a hardware WebGPU adapter (${[desc.vendor, desc.architecture].filter(Boolean).join(' ') || desc.description || 'unnamed'})`));
}

function install(b: Backend & { options: InitOptions }): Runtime {
  const rt = new Runtime(b, b.options);
  b.device?.addEventListener('uncapturederror', (ev) => {
    rt.reportError(fromGPUError((ev as GPUUncapturedErrorEvent).error));
  });
  runtimeState.current = rt;
  return rt;
}

function firstSentence(message: string): string {
  return message.replace(/^WebGPU is not available:?\s*/, '').split(/\.(\s|$)/)[0] || message;
}

async function startWebGPU(opts: InitOptions, adapter: GPUAdapter | null, reason: string): Promise<Backend & { options: InitOptions }> {
  let device = opts.device;
  let adapterInfo: AdapterDescription;
  if (device) {
    adapterInfo = describeAdapter(device.adapterInfo, false);
  } else {
    adapter ??= await (await getGPU()).requestAdapter({
      powerPreference: opts.powerPreference,
      forceFallbackAdapter: opts.forceFallbackAdapter,
    });
    if (!adapter) throw new WebGPUUnavailableError(unavailableMessage('no GPU adapter was found'));
    const features = WANTED_FEATURES.filter((f) => adapter!.features.has(f));
    device = await adapter.requestDevice({
      label: 'webgrad',
      requiredFeatures: features as GPUFeatureName[],
      requiredLimits: requiredLimits(adapter),
    });
    adapterInfo = describeAdapter(adapter.info, (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter);
  }
  const gpu = device;
  const features = WANTED_FEATURES.filter((f) => gpu.features.has(f));
  const limits = engineLimits(gpu, opts.budget);
  const pool = new BufferPool((size) => gpu.createBuffer({ size, usage: TENSOR_USAGE }), limits);
  const executor = new GPUExecutor(gpu, pool, limits);
  const info: DeviceInfo = { backend: 'webgpu', backendReason: reason, adapterInfo, limits, features };
  return { info, pool, executor, device: gpu, ownsDevice: !opts.device, options: opts };
}

async function startWasm(opts: InitOptions, reason: string): Promise<Backend & { options: InitOptions }> {
  const o = opts.wasm ?? {};
  const wasm = await WasmPool.create({ threads: o.threads, maxBytes: o.maxMemoryBytes, relaxed: o.relaxedSimd });
  const limits = wasmLimits(wasm.tensorBytes, opts.budget);
  const heap = wasm.heap;
  const makeBuffer = (size: number): HeapBuffer => {
    try {
      return new HeapBuffer(heap.alloc(size), size, (at) => heap.release(at));
    } catch (e) {
      if (!(e instanceof RangeError)) throw e;
      throw new OutOfMemoryError(
        `the wasm memory has no room for ${formatBytes(size)}: ${formatBytes(heap.liveBytes)} are in use of its ` +
          `${formatBytes(wasm.maxBytes)} limit (init({ wasm: { maxMemoryBytes } }) raises it, up to 4 GiB)`,
      );
    }
  };
  const pool = new BufferPool(makeBuffer, limits);
  const executor = new WasmExecutor(wasm, pool, limits, makeBuffer);
  const threads = wasm.threads;
  const info: DeviceInfo = {
    backend: 'wasm',
    backendReason: reason,
    adapterInfo: {
      vendor: 'webgrad',
      architecture: 'wasm-simd128',
      device: 'cpu',
      description: `WebAssembly SIMD${wasm.relaxed ? ' (relaxed)' : ''} on ${threads} thread${threads === 1 ? '' : 's'}`,
      isFallbackAdapter: false,
    },
    limits,
    features: [],
    wasm: { threads, ...(wasm.reason ? { threadsReason: wasm.reason } : {}), relaxedSimd: wasm.relaxed, maxMemoryBytes: wasm.maxBytes },
  };
  return { info, pool, executor, device: null, ownsDevice: false, options: opts };
}

export function describeAdapter(info: GPUAdapterInfo | undefined, fallback: boolean | undefined): AdapterDescription {
  const i = (info ?? {}) as Partial<GPUAdapterInfo> & { isFallbackAdapter?: boolean };
  return {
    vendor: i.vendor ?? '',
    architecture: i.architecture ?? '',
    device: i.device ?? '',
    description: i.description ?? '',
    isFallbackAdapter: Boolean(i.isFallbackAdapter ?? fallback ?? false),
  };
}
