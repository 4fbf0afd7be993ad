// The adapters this environment offers. WebGPU has no call that lists them: each request names a
// preference and gets one adapter (or none), so ask with every preference and the fallback flag,
// and keep each distinct adapter once, noting which requests returned it.

import { describeAdapter, WANTED_FEATURES, type AdapterDescription } from './device';
import { getGPU } from './gpu-provider';
import { requiredLimits } from './limits';

/** How an adapter was asked for (init's powerPreference / forceFallbackAdapter options). */
export type AdapterRequest = 'default' | 'low-power' | 'high-performance' | 'fallback';

export interface AdapterSummary extends AdapterDescription {
  /** Every feature the adapter offers. */
  features: string[];
  /** The optional features webgrad would use on it. */
  usedFeatures: string[];
  /** The adapter's maxima for the limits webgrad requests (what a device on it gets). */
  limits: Record<string, number>;
  /** The requests that returned this adapter: pass one to wg.init() to get it. */
  requests: AdapterRequest[];
}

const REQUESTS: [AdapterRequest, GPURequestAdapterOptions][] = [
  ['default', {}],
  ['low-power', { powerPreference: 'low-power' }],
  ['high-performance', { powerPreference: 'high-performance' }],
  ['fallback', { forceFallbackAdapter: true }],
];

/** The distinct adapters available here, in the order first found ([] when WebGPU has none; WebGPUUnavailableError without WebGPU). */
export async function adapters(): Promise<AdapterSummary[]> {
  const gpu = await getGPU();
  const found = new Map<string, AdapterSummary>();
  for (const [request, options] of REQUESTS) {
    const adapter = await gpu.requestAdapter(options);
    if (!adapter) continue;
    const description = describeAdapter(adapter.info, (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter);
    const key = JSON.stringify(description);
    const seen = found.get(key);
    if (seen) {
      seen.requests.push(request);
      continue;
    }
    const features = [...adapter.features].sort();
    found.set(key, {
      ...description,
      features,
      usedFeatures: WANTED_FEATURES.filter((f) => adapter.features.has(f)),
      limits: requiredLimits(adapter),
      requests: [request],
    });
  }
  return [...found.values()];
}
