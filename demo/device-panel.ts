// The device panel: which backend runs the kernels and why; on WebGPU, which GPU webgrad got,
// whether it is a software stand-in, the limits that decide how much fits, and the optional
// features it uses; on the CPU backend, its threads, SIMD and memory limit.

import type { AdapterSummary, DeviceInfo } from '../src/index';
import { formatBytes } from '../src/runtime/limits';

const FEATURES: [name: string, use: string][] = [
  ['shader-f16', 'half-precision arithmetic in shaders'],
  ['subgroups', 'sharing values between neighbouring threads'],
  ['timestamp-query', 'timing kernels on the GPU'],
];

export function showDevice(list: HTMLElement, info: DeviceInfo): void {
  const heading = list.closest('section')?.querySelector('h2');
  if (heading) heading.textContent = info.wasm ? 'Your CPU' : 'Your GPU';
  if (info.wasm) {
    showCPU(list, info);
    return;
  }
  const a = info.adapterInfo;
  const l = info.limits;
  const adapter = [a.vendor, a.architecture].filter(Boolean).join(' · ') || 'unnamed adapter';
  const rows: [id: string, term: string, value: string][] = [
    ['adapter', 'Adapter', adapter],
    // Many browsers leave these empty (for privacy): then there is nothing to show.
    ...(a.description || a.device ? [['description', 'Description', a.description || a.device] as [string, string, string]] : []),
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
    ['backend-reason', 'Chosen because', info.backendReason],
  ];
  showRows(list, rows);
  appendMarks(
    list,
    'Features in use',
    'device-features',
    FEATURES.map(([name, use]) => {
      const has = info.features.includes(name);
      return { on: has, title: use, text: `${has ? '✓' : '✗'} ${name}` };
    }),
  );
  list.closest('section')?.classList.toggle('software', a.isFallbackAdapter);
}

/** The CPU backend: WebAssembly SIMD kernels on a pool of threads (Web Workers) over one memory. */
function showCPU(list: HTMLElement, info: DeviceInfo): void {
  const w = info.wasm!;
  showRows(list, [
    ['adapter', 'Runs on', `the CPU: WebAssembly SIMD${w.relaxedSimd ? ' (relaxed, fused multiply-add)' : ''}`],
    ['backend-reason', 'Chosen because', info.backendReason],
    ['threads', 'Threads', `${w.threads}${w.threadsReason ? ` — ${w.threadsReason}` : ''}`],
    ['max-buffer', 'Memory limit', formatBytes(w.maxMemoryBytes)],
  ]);
  list.closest('section')?.classList.remove('software');
}

function showRows(list: HTMLElement, rows: [id: string, term: string, value: string][]): void {
  list.replaceChildren();
  for (const [id, term, value] of rows) {
    const dt = document.createElement('dt');
    dt.textContent = term;
    const dd = document.createElement('dd');
    dd.id = `device-${id}`;
    dd.textContent = value;
    list.append(dt, dd);
  }
}

/** Every adapter the browser offers, when there is more than one; the one in use is marked. */
export function showAdapters(list: HTMLElement, info: DeviceInfo, adapters: AdapterSummary[]): void {
  list.querySelector('#device-adapters')?.previousElementSibling?.remove();
  list.querySelector('#device-adapters')?.remove();
  if (adapters.length < 2) return;
  const name = (a: { vendor: string; architecture: string; description: string; device: string }) =>
    [a.vendor, a.architecture].filter(Boolean).join(' · ') + (a.description || a.device ? ` (${a.description || a.device})` : '');
  appendMarks(
    list,
    'Adapters here',
    'device-adapters',
    adapters.map((a) => {
      const inUse = name(a) === name(info.adapterInfo) && a.isFallbackAdapter === info.adapterInfo.isFallbackAdapter;
      return {
        on: inUse,
        title: `asked for as: ${a.requests.join(', ')}; features webgrad would use: ${a.usedFeatures.join(', ') || 'none'}`,
        text: `${inUse ? '● ' : '○ '}${name(a)}${a.isFallbackAdapter ? ', software' : ''}${inUse ? ' — in use' : ''}`,
      };
    }),
  );
}

/** A term whose value is a list of items marked on (class "has") or off ("lacks"). */
function appendMarks(list: HTMLElement, term: string, id: string, items: { on: boolean; title: string; text: string }[]): void {
  const dt = document.createElement('dt');
  dt.textContent = term;
  const dd = document.createElement('dd');
  dd.id = id;
  const ul = document.createElement('ul');
  ul.className = 'features';
  for (const item of items) {
    const li = document.createElement('li');
    li.className = item.on ? 'has' : 'lacks';
    li.title = item.title;
    li.textContent = item.text;
    ul.append(li);
  }
  dd.append(ul);
  list.append(dt, dd);
}
