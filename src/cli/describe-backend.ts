// The line a training command prints first: which backend runs the kernels, on what, and why
// (wg.init()'s choice: on a machine whose only WebGPU adapter is a software one, the CPU backend).

import type * as wg from '../node';

/** The backend line: which backend runs the kernels, on what, and why. */
export function describeBackend(info: wg.DeviceInfo): string {
  if (info.wasm) {
    const w = info.wasm;
    const threads = `${w.threads} thread${w.threads === 1 ? '' : 's'}${w.threadsReason ? ` (${w.threadsReason})` : ''}`;
    return `backend: CPU (WebAssembly SIMD${w.relaxedSimd ? ', relaxed' : ''}, ${threads}): ${info.backendReason}`;
  }
  const ad = info.adapterInfo;
  return (
    `backend: WebGPU on ${[ad.vendor, ad.architecture, ad.description].filter(Boolean).join(' ')}${ad.isFallbackAdapter ? ' (software fallback)' : ''}; ` +
    `features: ${info.features.join(', ') || 'none'}: ${info.backendReason}`
  );
}
