// What both modes of the page (main.ts for the digits, text-page.ts for text) do alike: find
// elements, say that WebGPU is missing, show dates, hand a file to the browser's downloads, read
// the backend asked for in the address, and describe a memory reading and a micro-batch plan.

import { formatBytes } from '../src/runtime/limits';
import type { BackendChoice, MemoryStats } from '../src/index';
import type { PlanInfo } from './protocol';

export const $ = <T extends HTMLElement = HTMLElement>(id: string): T => document.getElementById(id) as T;

export function showUnavailable(message: string): void {
  $('unavailable-message').textContent = message;
  $('unavailable').hidden = false;
  $('app').hidden = true;
}

export function formatDate(ms: number): string {
  return new Date(ms).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

export function downloadFile(bytes: Uint8Array, fileName: string): void {
  const url = URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>], { type: 'application/octet-stream' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = fileName;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/**
 * The backend the page asks for: ?backend=webgpu or ?backend=wasm in its address, else 'auto'
 * (WebGPU on a GPU; the CPU where WebGPU is missing or only a software stand-in).
 */
export function backendChoice(): BackendChoice {
  const b = new URLSearchParams(location.search).get('backend');
  return b === 'webgpu' || b === 'wasm' ? b : 'auto';
}

/** A memory reading for the readouts: while training (with the step's peak), or idle (`held`: what it holds). */
export function memoryText(m: MemoryStats, during: 'step' | 'idle', held: string): [string, string] {
  return during === 'step'
    ? [`${formatBytes(m.liveBytes)} in use, peak ${formatBytes(m.peakBytes)} during the step`, `(${m.liveTensors} tensors; ${formatBytes(m.pooledBytes)} of freed buffers kept for reuse)`]
    : [`${formatBytes(m.liveBytes)} in use`, `(${m.liveTensors} tensors: ${held})`];
}

/** A plan for the readouts; `unit` names what a batch holds ("sequences"; empty for samples). */
export function planText(p: PlanInfo | null, unit = ''): [string, string] {
  if (!p) return ['—', ''];
  const of = unit ? ` ${unit}` : '';
  const what =
    p.microBatches === 1
      ? `the whole batch of ${p.batchSize}${of} at once`
      : `${p.microBatches} micro-batches of ${p.microBatchSize}${of} (gradients accumulated: one update per batch of ${p.batchSize})`;
  return [what, `(${p.reason})`];
}

/** Selects `value`, adding it as an option first if the list lacks it (a loaded file's setting). */
export function selectValue(select: HTMLSelectElement, value: string): void {
  if (![...select.options].some((o) => o.value === value)) select.add(new Option(value, value));
  select.value = value;
}
