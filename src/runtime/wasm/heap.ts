// Allocation of the wasm memory, which holds every tensor of the CPU backend and each thread's
// scratch. The host manages it (the kernels allocate nothing): first fit over a free list sorted
// by address, neighbours merged on free, the memory grown when nothing fits. Blocks are aligned
// to 64 bytes (a cache line; v128 loads stay within one).
//
// The first RESERVED bytes are not handed out: the pool's control words live at address 0 and
// AssemblyScript's static data (none so far) from byte 1024 (--memoryBase in build-wasm.mjs).

export const RESERVED = 65536;
const ALIGN = 64;
const PAGE = 65536;

export class Heap {
  /** Free blocks [address, bytes], sorted by address. */
  private free: [number, number][] = [];
  private sizes = new Map<number, number>();
  private used = 0;

  constructor(readonly memory: WebAssembly.Memory, private readonly maxBytes: number) {
    const size = memory.buffer.byteLength;
    if (size > RESERVED) this.free.push([RESERVED, size - RESERVED]);
  }

  /** Bytes held by live allocations. */
  get liveBytes(): number {
    return this.used;
  }

  /** The address of a new block of at least `bytes` bytes (contents undefined). */
  alloc(bytes: number): number {
    const size = Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
    let i = this.free.findIndex(([, n]) => n >= size);
    if (i < 0) i = this.grow(size);
    const [at, n] = this.free[i]!;
    if (n === size) this.free.splice(i, 1);
    else this.free[i] = [at + size, n - size];
    this.sizes.set(at, size);
    this.used += size;
    return at;
  }

  release(address: number): void {
    const size = this.sizes.get(address);
    if (size === undefined) throw new Error(`wasm heap: ${address} is not an allocated block`);
    this.sizes.delete(address);
    this.used -= size;
    let i = this.free.findIndex(([at]) => at > address);
    if (i < 0) i = this.free.length;
    this.free.splice(i, 0, [address, size]);
    // Merge with the next, then the previous block.
    const next = this.free[i + 1];
    if (next && address + size === next[0]) {
      this.free[i] = [address, size + next[1]];
      this.free.splice(i + 1, 1);
    }
    const prev = this.free[i - 1];
    if (prev && prev[0] + prev[1] === address) {
      prev[1] += this.free[i]![1];
      this.free.splice(i, 1);
    }
  }

  /** Grow the memory so that a block of `size` fits at its end; the index of that free block. */
  private grow(size: number): number {
    const end = this.memory.buffer.byteLength;
    const last = this.free.at(-1);
    const tail = last && last[0] + last[1] === end ? last[1] : 0;
    const pages = Math.ceil((size - tail) / PAGE);
    if (end + pages * PAGE > this.maxBytes) {
      throw new RangeError(`wasm heap: cannot allocate ${size} bytes: ${this.used} bytes live, the memory's limit is ${this.maxBytes}`);
    }
    this.memory.grow(pages);
    if (tail) {
      last![1] += pages * PAGE;
    } else {
      this.free.push([end, pages * PAGE]);
    }
    return this.free.length - 1;
  }
}
