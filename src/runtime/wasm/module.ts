// The compiled kernel module (wasm/*.ts, built by scripts/build-wasm.mjs), inlined in the bundle
// as data URLs, and the choice among its four builds: for a shared memory (threads) or not, and
// with relaxed SIMD (fused multiply-add) where the engine validates it, else plain SIMD. Relaxed
// SIMD's madd may round once (fused) or twice: both are float32 results, within the tolerance
// every test and the float32 contract allow; the plain build is the exact fallback.

import plainUrl from '../../../wasm/build/kernels.wasm?url&inline';
import relaxedUrl from '../../../wasm/build/kernels-relaxed.wasm?url&inline';
import sharedUrl from '../../../wasm/build/kernels-shared.wasm?url&inline';
import sharedRelaxedUrl from '../../../wasm/build/kernels-shared-relaxed.wasm?url&inline';

export interface KernelModule {
  module: WebAssembly.Module;
  /** Built for a shared memory (threads). */
  shared: boolean;
  /** Uses relaxed SIMD (f32x4.relaxed_madd). */
  relaxed: boolean;
}

function bytes(dataUrl: string): Uint8Array<ArrayBuffer> {
  const text = atob(dataUrl.slice(dataUrl.indexOf(',') + 1));
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

/** Whether this engine runs WebAssembly SIMD at all (the kernels need it). */
export function simdSupported(): boolean {
  return WebAssembly.validate(bytes(plainUrl));
}

/** Compile the build for `shared` memory, relaxed SIMD unless refused or unsupported. */
export async function loadKernelModule(shared: boolean, allowRelaxed = true): Promise<KernelModule> {
  const relaxedBytes = bytes(shared ? sharedRelaxedUrl : relaxedUrl);
  const relaxed = allowRelaxed && WebAssembly.validate(relaxedBytes);
  const chosen = relaxed ? relaxedBytes : bytes(shared ? sharedUrl : plainUrl);
  if (!WebAssembly.validate(chosen)) {
    throw new Error('this JavaScript engine does not support WebAssembly SIMD, which the CPU backend needs');
  }
  return { module: await WebAssembly.compile(chosen), shared, relaxed };
}
