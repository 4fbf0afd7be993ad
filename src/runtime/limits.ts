// The limits webgrad works within: the device's, capped by the user's `budget`.

export interface Budget {
  /** Cap on one storage binding, below the device's maxStorageBufferBindingSize. */
  maxBindingBytes?: number;
  /** Cap on live device bytes held by tensors; allocations beyond it throw OutOfMemoryError. */
  memoryBudgetBytes?: number;
}

export interface EngineLimits {
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
  maxComputeWorkgroupStorageSize: number;
  maxComputeInvocationsPerWorkgroup: number;
  maxComputeWorkgroupSizeX: number;
  maxComputeWorkgroupSizeY: number;
  maxComputeWorkgroupSizeZ: number;
  maxComputeWorkgroupsPerDimension: number;
  maxStorageBuffersPerShaderStage: number;
  minStorageBufferOffsetAlignment: number;
  minUniformBufferOffsetAlignment: number;
  /** Live-tensor bytes allowed (Infinity when no budget is set). */
  memoryBudgetBytes: number;
}

/** The limits requested from the adapter: its maxima for everything compute work depends on. */
export const REQUESTED_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
] as const;

export function requiredLimits(adapter: GPUAdapter): Record<string, number> {
  const out: Record<string, number> = {};
  for (const name of REQUESTED_LIMITS) out[name] = adapter.limits[name];
  return out;
}

export function engineLimits(device: GPUDevice, budget: Budget = {}): EngineLimits {
  const l = device.limits;
  const binding = Math.min(l.maxStorageBufferBindingSize, l.maxBufferSize);
  return {
    maxBufferSize: l.maxBufferSize,
    maxStorageBufferBindingSize:
      budget.maxBindingBytes !== undefined ? Math.min(binding, budget.maxBindingBytes) : binding,
    maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
    maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
    maxComputeWorkgroupSizeY: l.maxComputeWorkgroupSizeY,
    maxComputeWorkgroupSizeZ: l.maxComputeWorkgroupSizeZ,
    maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
    maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
    minStorageBufferOffsetAlignment: l.minStorageBufferOffsetAlignment,
    minUniformBufferOffsetAlignment: l.minUniformBufferOffsetAlignment,
    memoryBudgetBytes: budget.memoryBudgetBytes ?? Infinity,
  };
}

/**
 * The CPU backend's limits: tensors may fill what the wasm memory can grow to (`tensorBytes`), and
 * that is also the memory budget (a Trainer plans against it). A kernel reads any range of the
 * memory, so one binding may span it all (budget.maxBindingBytes still caps it, as tests do to
 * exercise the segment paths); the workgroup limits are WebGPU's defaults, never used there.
 */
export function wasmLimits(tensorBytes: number, budget: Budget = {}): EngineLimits {
  return {
    maxBufferSize: tensorBytes,
    maxStorageBufferBindingSize: Math.min(tensorBytes, budget.maxBindingBytes ?? Infinity),
    maxComputeWorkgroupStorageSize: 16384,
    maxComputeInvocationsPerWorkgroup: 256,
    maxComputeWorkgroupSizeX: 256,
    maxComputeWorkgroupSizeY: 256,
    maxComputeWorkgroupSizeZ: 64,
    maxComputeWorkgroupsPerDimension: 65535,
    maxStorageBuffersPerShaderStage: 16,
    // A v128 (the kernels need no alignment; bindings start on one).
    minStorageBufferOffsetAlignment: 16,
    minUniformBufferOffsetAlignment: 256,
    memoryBudgetBytes: Math.min(tensorBytes, budget.memoryBudgetBytes ?? Infinity),
  };
}

export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}
