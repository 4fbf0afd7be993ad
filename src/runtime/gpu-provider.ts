// Where the GPU comes from. Browsers (pages and Workers) have `navigator.gpu`; the Node entry
// (src/node.ts) registers Dawn instead, so the browser bundle never touches the Dawn package.

import { WebGPUUnavailableError } from './errors';

export interface GPUProvider {
  get(): Promise<GPU>;
}

let provider: GPUProvider = { get: browserGPU };

export function setGPUProvider(p: GPUProvider): void {
  provider = p;
}

export function getGPU(): Promise<GPU> {
  return provider.get();
}

async function browserGPU(): Promise<GPU> {
  const gpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  if (!gpu) throw new WebGPUUnavailableError(unavailableMessage());
  return gpu;
}

/** Why there is no WebGPU here, and what to do about it, for the browser the user is in. */
export function unavailableMessage(detail?: string): string {
  const g = globalThis as { navigator?: { userAgent?: string }; isSecureContext?: boolean };
  const ua = g.navigator?.userAgent ?? '';
  const lines = ['WebGPU is not available' + (detail ? `: ${detail}` : '') + '.'];
  if (g.isSecureContext === false) {
    lines.push('This page is not a secure context: WebGPU needs https:// or http://localhost.');
  }
  if (!g.navigator) {
    lines.push("In Node.js, import 'webgrad/node' (it uses Dawn from the 'webgpu' package).");
  } else if (/Firefox\//.test(ua)) {
    lines.push('Firefox: use version 141 or later (Windows) or enable dom.webgpu.enabled in about:config.');
  } else if (/Edg\//.test(ua) || /Chrome\//.test(ua)) {
    lines.push(
      'Chrome/Edge: use version 113 or later; on Linux start it with --enable-unsafe-webgpu ' +
        '(and --enable-features=Vulkan), or enable chrome://flags/#enable-unsafe-webgpu. ' +
        'Check chrome://gpu for "WebGPU: Hardware accelerated".',
    );
  } else if (/Safari\//.test(ua)) {
    lines.push('Safari: use Safari 26 or later, or enable WebGPU under Develop > Feature Flags.');
  } else {
    lines.push('Use a browser with WebGPU: Chrome or Edge 113+, Safari 26+, Firefox 141+.');
  }
  return lines.join(' ');
}
