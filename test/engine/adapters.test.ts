import { afterAll, describe, expect, it } from 'vitest';
import { wg } from '../helpers';

afterAll(() => wg.shutdown());

describe('wg.adapters', () => {
  it('lists each distinct adapter once, with the requests that return it, its features and limits; init() uses the default one', async () => {
    const list = await wg.adapters();
    expect(list.length).toBeGreaterThan(0);
    const keys = list.map((a) => JSON.stringify([a.vendor, a.architecture, a.device, a.description, a.isFallbackAdapter]));
    expect(new Set(keys).size).toBe(list.length);
    const requests = list.flatMap((a) => a.requests);
    expect(new Set(requests).size).toBe(requests.length); // each request answered by one adapter
    expect(requests).toContain('default');
    for (const a of list) {
      expect(a.requests.length).toBeGreaterThan(0);
      expect([...a.features].sort()).toEqual(a.features);
      for (const f of a.usedFeatures) expect(a.features).toContain(f);
      expect(a.usedFeatures.every((f) => ['shader-f16', 'subgroups', 'timestamp-query'].includes(f))).toBe(true);
      expect(a.limits.maxBufferSize).toBeGreaterThan(0);
      expect(a.limits.maxStorageBufferBindingSize).toBeGreaterThan(0);
      expect(a.limits.maxComputeInvocationsPerWorkgroup).toBeGreaterThanOrEqual(64);
      if (a.requests.includes('fallback')) expect(a.isFallbackAdapter).toBe(true);
    }

    const info = await wg.init();
    const chosen = list.find((a) => a.requests.includes('default'))!;
    expect(info.adapterInfo).toEqual({
      vendor: chosen.vendor,
      architecture: chosen.architecture,
      device: chosen.device,
      description: chosen.description,
      isFallbackAdapter: chosen.isFallbackAdapter,
    });
    expect(info.features).toEqual(chosen.usedFeatures);
    expect(info.limits.maxBufferSize).toBe(chosen.limits.maxBufferSize);
  });
});
