// The limits webgrad works within: the device's, capped by the user's `budget`.

export interface Budget {
  /** Cap on one storage binding, below the device's maxStorageBufferBindingSize. */
  maxBindingBytes?: number;
  /** Cap on live GPU bytes held by tensors; allocations beyond it throw OutOfMemoryError. */
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

export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}
