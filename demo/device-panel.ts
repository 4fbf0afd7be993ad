// The device panel: which GPU webgrad got, whether it is a software stand-in, the limits that
// decide how much fits, and the optional features it uses.

import type { AdapterSummary, DeviceInfo } from '../src/index';
import { formatBytes } from '../src/runtime/limits';

const FEATURES: [name: string, use: string][] = [
  ['shader-f16', 'half-precision arithmetic in shaders'],
  ['subgroups', 'sharing values between neighbouring threads'],
  ['timestamp-query', 'timing kernels on the GPU'],
];

export function showDevice(list: HTMLElement, info: DeviceInfo): void {
  const a = info.adapterInfo;
  const l = info.limits;
  const adapter = [a.vendor, a.architecture].filter(Boolean).join(' · ') || 'unnamed adapter';
  const rows: [id: string, term: string, value: string][] = [
    ['adapter', 'Adapter', adapter],
    ['description', 'Description', a.description || a.device || '—'],
    [
      'fallback',
      'Kind',
      a.isFallbackAdapter
        ? 'software (fallback adapter): the CPU stands in for a GPU, so training is slow'
        : 'hardware GPU',
    ],
    ['max-buffer', 'Largest buffer', formatBytes(l.maxBufferSize)],
    ['max-binding', 'Largest storage binding', formatBytes(l.maxStorageBufferBindingSize)],
    ['workgroup-storage', 'Workgroup storage', formatBytes(l.maxComputeWorkgroupStorageSize)],
    ['invocations', 'Threads per workgroup', String(l.maxComputeInvocationsPerWorkgroup)],
  ];
  list.replaceChildren();
  for (const [id, term, value] of rows) {
    const dt = document.createElement('dt');
    dt.textContent = term;
    const dd = document.createElement('dd');
    dd.id = `device-${id}`;
    dd.textContent = value;
    list.append(dt, dd);
  }
  const dt = document.createElement('dt');
  dt.textContent = 'Features in use';
  const dd = document.createElement('dd');
  dd.id = 'device-features';
  const ul = document.createElement('ul');
  ul.className = 'features';
  for (const [name, use] of FEATURES) {
    const has = info.features.includes(name);
    const li = document.createElement('li');
    li.className = has ? 'has' : 'lacks';
    li.title = use;
    li.textContent = `${has ? '✓' : '✗'} ${name}`;
    ul.append(li);
  }
  dd.append(ul);
  list.append(dt, dd);
  list.closest('section')?.classList.toggle('software', a.isFallbackAdapter);
}

/** Every adapter the browser offers, when there is more than one; the one in use is marked. */
export function showAdapters(list: HTMLElement, info: DeviceInfo, adapters: AdapterSummary[]): void {
  list.querySelector('#device-adapters')?.previousElementSibling?.remove();
  list.querySelector('#device-adapters')?.remove();
  if (adapters.length < 2) return;
  const name = (a: { vendor: string; architecture: string; description: string; device: string }) =>
    [a.vendor, a.architecture].filter(Boolean).join(' · ') + (a.description || a.device ? ` (${a.description || a.device})` : '');
  const dt = document.createElement('dt');
  dt.textContent = 'Adapters here';
  const dd = document.createElement('dd');
  dd.id = 'device-adapters';
  const ul = document.createElement('ul');
  ul.className = 'features';
  for (const a of adapters) {
    const inUse = name(a) === name(info.adapterInfo) && a.isFallbackAdapter === info.adapterInfo.isFallbackAdapter;
    const li = document.createElement('li');
    li.className = inUse ? 'has' : 'lacks';
    li.title = `asked for as: ${a.requests.join(', ')}; features webgrad would use: ${a.usedFeatures.join(', ') || 'none'}`;
    li.textContent = `${inUse ? '● ' : '○ '}${name(a)}${a.isFallbackAdapter ? ', software' : ''}${inUse ? ' — in use' : ''}`;
    ul.append(li);
  }
  dd.append(ul);
  list.append(dt, dd);
}
