// Bind groups keyed by layout and the exact buffer ranges bound. A training loop reuses the same
// pooled buffers step after step, so most bind groups are built once. Entries that name a
// destroyed buffer are dropped; the cache is bounded.

import { bufferId } from './buffer-pool';
import type { BufferRange as Range, DeviceBuffer } from './device-buffer';

type BufferRange = Range<GPUBuffer>;

const MAX_ENTRIES = 4096;

export class BindGroupCache {
  private groups = new Map<string, GPUBindGroup>();
  private byBuffer = new Map<number, Set<string>>();

  constructor(private device: GPUDevice) {}

  get(layout: GPUBindGroupLayout, layoutKey: string, params: BufferRange, ranges: readonly BufferRange[]): GPUBindGroup {
    let key = layoutKey + ':' + bufferId(params.buffer);
    for (const r of ranges) key += `,${bufferId(r.buffer)}@${r.offset}+${r.size}`;
    let g = this.groups.get(key);
    if (g) return g;
    if (this.groups.size >= MAX_ENTRIES) this.clear();
    const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: params.buffer, offset: 0, size: params.size } }];
    ranges.forEach((r, i) => entries.push({ binding: i + 1, resource: { buffer: r.buffer, offset: r.offset, size: r.size } }));
    g = this.device.createBindGroup({ layout, entries });
    this.groups.set(key, g);
    for (const r of [params, ...ranges]) {
      const id = bufferId(r.buffer);
      let keys = this.byBuffer.get(id);
      if (!keys) this.byBuffer.set(id, (keys = new Set()));
      keys.add(key);
    }
    return g;
  }

  /** Forget every bind group that names `buffer` (it is about to be destroyed). */
  forget(buffer: DeviceBuffer): void {
    const id = bufferId(buffer);
    const keys = this.byBuffer.get(id);
    if (!keys) return;
    for (const k of keys) this.groups.delete(k);
    this.byBuffer.delete(id);
  }

  clear(): void {
    this.groups.clear();
    this.byBuffer.clear();
  }
}
