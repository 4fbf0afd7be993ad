// The engine's one device: acquiring it, its limits and features, and its loss.

import { BufferPool, DryRunStats } from './buffer-pool';
import { deviceLostError } from './device-loss';
import { NotInitializedError, WebGPUUnavailableError, type WebGradError } from './errors';
import { Executor, fromGPUError } from './executor';
import { getGPU, unavailableMessage } from './gpu-provider';
import { engineLimits, requiredLimits, type Budget, type EngineLimits } from './limits';

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
  powerPreference?: GPUPowerPreference;
  /** Use this device instead of requesting one (webgrad will not destroy it). */
  device?: GPUDevice;
  /** Caps below the device's limits (tests use it to simulate small GPUs). */
  budget?: Budget;
  /** Ask for the fallback (software) adapter. */
  forceFallbackAdapter?: boolean;
  /**
   * Time kernel configurations per shape class and keep the fastest (default true). Off, every
   * kernel uses its untimed default: results are repeatable run to run.
   */
  autotune?: boolean;
}

export interface AdapterDescription {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter: boolean;
}

export interface DeviceInfo {
  adapterInfo: AdapterDescription;
  limits: EngineLimits;
  features: string[];
}

/** Optional features webgrad uses when the adapter has them. */
export const WANTED_FEATURES = ['shader-f16', 'subgroups', 'timestamp-query'] as const;

export class Runtime {
  readonly pool: BufferPool;
  readonly executor: Executor;
  lost: GPUDeviceLostInfo | null = null;
  /** Tensors alive (for memory()). */
  liveTensors = 0;
  /** A GPU error seen outside any batch, thrown at the next call. */
  private pendingError: WebGradError | null = null;

  constructor(
    readonly device: GPUDevice,
    readonly info: DeviceInfo,
    readonly ownsDevice: boolean,
    readonly options: InitOptions = {},
  ) {
    this.pool = new BufferPool(device, info.limits);
    this.executor = new Executor(device, this.pool, info.limits);
    void device.lost.then((info) => {
      if (runtimeState.current === this) this.lost = info;
    });
  }

  get limits(): EngineLimits {
    return this.info.limits;
  }

  hasFeature(f: string): boolean {
    return this.info.features.includes(f);
  }

  /** Throws if the device is gone or an earlier asynchronous GPU error is unreported. */
  check(): void {
    if (this.lost) throw deviceLostError(this.lost);
    if (this.pendingError) {
      const e = this.pendingError;
      this.pendingError = null;
      throw e;
    }
  }

  /**
   * Run `fn` without touching the GPU: allocations are only counted and kernels are skipped.
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
  if (rt.ownsDevice) rt.device.destroy();
}

async function start(opts: InitOptions): Promise<Runtime> {
  let device = opts.device;
  let adapterInfo: AdapterDescription;
  if (device) {
    adapterInfo = describeAdapter(device.adapterInfo, false);
  } else {
    const gpu = await getGPU();
    const adapter = await gpu.requestAdapter({
      powerPreference: opts.powerPreference,
      forceFallbackAdapter: opts.forceFallbackAdapter,
    });
    if (!adapter) throw new WebGPUUnavailableError(unavailableMessage('no GPU adapter was found'));
    const features = WANTED_FEATURES.filter((f) => adapter.features.has(f));
    device = await adapter.requestDevice({
      label: 'webgrad',
      requiredFeatures: features as GPUFeatureName[],
      requiredLimits: requiredLimits(adapter),
    });
    adapterInfo = describeAdapter(adapter.info, (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter);
  }
  const features = WANTED_FEATURES.filter((f) => device.features.has(f));
  const info: DeviceInfo = { adapterInfo, limits: engineLimits(device, opts.budget), features };
  const rt = new Runtime(device, info, !opts.device, opts);
  device.addEventListener('uncapturederror', (ev) => {
    const err = (ev as GPUUncapturedErrorEvent).error;
    rt.reportError(fromGPUError(err));
  });
  runtimeState.current = rt;
  return rt;
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
