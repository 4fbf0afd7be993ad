// What a tensor's storage holds: a GPUBuffer on the WebGPU backend, a block of the wasm memory on
// the CPU backend. The layers above the runtime only pass these along (to views, bindings, the
// pool and the executor); only the backend's own executor looks inside.

/** A block of the CPU backend's WebAssembly memory (src/runtime/wasm/heap.ts), the counterpart of a GPUBuffer. */
export class HeapBuffer {
  constructor(
    /** Byte address in the wasm memory. */
    readonly address: number,
    /** Bytes (the size class the pool asked for). */
    readonly size: number,
    private readonly free: (address: number) => void,
  ) {}

  /** Give the block back to the heap (the pool does, when it trims). */
  destroy(): void {
    this.free(this.address);
  }
}

export type DeviceBuffer = GPUBuffer | HeapBuffer;

/** A range of a buffer bound to one storage binding of a kernel. */
export interface BufferRange<B extends DeviceBuffer = DeviceBuffer> {
  buffer: B;
  /** Byte offset (a multiple of minStorageBufferOffsetAlignment). */
  offset: number;
  /** Byte size bound. */
  size: number;
}
