// The CPU backend's threads: one WebAssembly.Memory holding every tensor, shared by the calling
// thread and N − 1 helpers (worker_threads in Node, Web Workers in a browser), each with its own
// instance of the kernel module over that memory. `run(kernel, args)` writes the kernel's
// argument block, wakes the helpers through control words in the memory (Atomics, no message
// round trip), runs the kernel on the calling thread too, and returns when every thread is done.
// Inside the kernel the threads claim output tiles from a shared counter (wasm/common.ts).
//
// Without SharedArrayBuffer (a browser page that is not cross-origin isolated) the memory is not
// shared and the pool has one thread; `reason` says why.

import { Heap, RESERVED } from './heap';
import { loadKernelModule } from './module';
import { HEADER_BYTES, KERNEL_NAMES, packArgs, SIGNATURES, type WasmRunArgs } from './signatures';
import workerSource from './worker.js?raw';

const GEN = 0, KERNEL = 1, ARGS = 2, THREADS = 3, DONE = 4, FAILED = 5, JOINED = 6;
const PAGE = 65536;
/** Private scratch per thread: packed panels (wasm/common.ts SCRATCH_BYTES). */
export const SCRATCH_BYTES = 1 << 20;
const ARGS_BYTES = 1024;

export interface PoolOptions {
  /** Threads including the calling one (default: the machine's cores, at most 16). */
  threads?: number;
  /** Largest size the memory may grow to, in bytes (default 2 GiB; at most 4 GiB). */
  maxBytes?: number;
  /** Use relaxed SIMD where the engine has it (default true). */
  relaxed?: boolean;
}

/** ES2024's Atomics.waitAsync (the project's lib is ES2022). */
interface AtomicsWaitAsync {
  waitAsync(a: Int32Array, index: number, value: number, timeout?: number): { value: Promise<string> | string };
}

interface Helper {
  terminate(): unknown;
}

export class WasmPool {
  readonly heap: Heap;
  private control: Int32Array;
  private readonly argsAt: number;
  private readonly scratch: number[];
  private readonly kernels: ((args: number, scratch: number) => void)[];
  private readonly canBlock: boolean;
  private errors: string[] = [];
  private closed = false;
  /** Runs on more than one thread, and helper joins over them (a diagnostic: helpers that woke in time). */
  readonly stats = { parallelRuns: 0, joins: 0 };

  private constructor(
    readonly memory: WebAssembly.Memory,
    instance: WebAssembly.Instance,
    /** Threads taking part in a run, the calling thread included. */
    readonly threads: number,
    /** Why there is only one thread, when there is. */
    readonly reason: string | undefined,
    /** The kernels use relaxed SIMD (fused multiply-add). */
    readonly relaxed: boolean,
    private readonly helpers: Helper[],
    /** The most the memory may grow to, in bytes. */
    readonly maxBytes: number,
    heap: Heap,
    scratch: number[],
    argsAt: number,
  ) {
    this.heap = heap;
    this.scratch = scratch;
    this.argsAt = argsAt;
    this.control = new Int32Array(memory.buffer, 0, 8);
    this.kernels = KERNEL_NAMES.map((n) => instance.exports[n] as (a: number, s: number) => void);
    this.canBlock = blockingAllowed();
  }

  /** The control words (a fresh view when growth detached an unshared memory's buffer). */
  private get ctl(): Int32Array {
    if (this.control.length === 0) this.control = new Int32Array(this.memory.buffer, 0, 8);
    return this.control;
  }

  static async create(options: PoolOptions = {}): Promise<WasmPool> {
    const maxBytes = Math.floor(Math.min(options.maxBytes ?? 2 ** 31, 2 ** 32) / PAGE) * PAGE;
    const wanted = Math.max(1, Math.floor(options.threads ?? (await defaultThreads())));
    const sharedOk = typeof SharedArrayBuffer !== 'undefined' && (typeof crossOriginIsolated === 'undefined' || crossOriginIsolated);
    const threads = sharedOk ? wanted : 1;
    const reason = threads > 1 ? undefined
      : !sharedOk ? 'SharedArrayBuffer is unavailable (the page is not cross-origin isolated): one thread'
      : options.threads !== undefined ? 'one thread requested'
      : 'this machine reports one core';
    const { module, relaxed } = await loadKernelModule(threads > 1, options.relaxed ?? true);
    const memory = new WebAssembly.Memory({ initial: 2, maximum: maxBytes / PAGE, ...(threads > 1 ? { shared: true } : {}) });
    const heap = new Heap(memory, maxBytes);
    const scratch = Array.from({ length: threads }, () => heap.alloc(SCRATCH_BYTES));
    const argsAt = heap.alloc(ARGS_BYTES);
    const instance = await WebAssembly.instantiate(module, { env: { memory, abort: () => { throw new Error('wasm kernel aborted'); } } });
    const errors: string[] = [];
    const helpers = threads > 1 ? await startHelpers(module, memory, scratch, errors) : [];
    const pool = new WasmPool(memory, instance, threads, reason, relaxed, helpers, maxBytes, heap, scratch, argsAt);
    pool.errors = errors;
    return pool;
  }

  /** Bytes left for tensors when the memory has grown to its limit (past the reserved bytes, scratch and arguments). */
  get tensorBytes(): number {
    return this.maxBytes - RESERVED - this.threads * SCRATCH_BYTES - ARGS_BYTES;
  }

  /** Float32 view of `length` elements at byte `address` (valid until the memory grows). */
  f32(address: number, length: number): Float32Array {
    return new Float32Array(this.memory.buffer, address, length);
  }

  i32(address: number, length: number): Int32Array {
    return new Int32Array(this.memory.buffer, address, length);
  }

  /**
   * Run `kernel` with its named bindings (byte addresses), params and constants — the names its
   * WGSL twin's launch() uses (kernels.json) — over `threads` threads (default all), and resolve
   * when all are done. One run at a time: a run must finish before the next starts.
   */
  async run(kernel: string, args: WasmRunArgs, threads = this.threads): Promise<void> {
    this.runSync(kernel, args, threads, false);
    if (Atomics.load(this.ctl, DONE) < this.pending) await this.waitAsync();
    this.finish(kernel);
  }

  private pending = 0;
  /** What the calling thread's part of the current run threw, if anything. */
  private trapped: unknown;

  /** As run(), returning when every thread is done (the CPU backend's executor runs kernels so). */
  runSync(kernel: string, args: WasmRunArgs, threads = this.threads, wait = true): void {
    if (this.closed) throw new Error('the wasm thread pool is closed');
    if (this.pending > 0) throw new Error('a wasm kernel run is still in progress');
    const sig = SIGNATURES.get(kernel);
    const index = KERNEL_NAMES.indexOf(kernel);
    if (!sig) throw new Error(`unknown wasm kernel ${kernel}`);
    if (sig.bytes > ARGS_BYTES) throw new Error(`wasm kernel ${kernel}: argument block too large`);
    packArgs(sig, args, new DataView(this.memory.buffer, this.argsAt, sig.bytes));
    const n = Math.max(1, Math.min(threads, this.threads));
    new Int32Array(this.memory.buffer, this.argsAt, HEADER_BYTES / 4)[1] = n;
    if (n > 1) {
      Atomics.store(this.ctl, KERNEL, index);
      Atomics.store(this.ctl, ARGS, this.argsAt);
      Atomics.store(this.ctl, THREADS, n);
      Atomics.store(this.ctl, DONE, 0);
      Atomics.store(this.ctl, JOINED, 0);   // open: helpers may join (worker.js)
      Atomics.add(this.ctl, GEN, 1);
      Atomics.notify(this.ctl, GEN);
    }
    // A trap here (a bad address) must still close the run and wait for the helpers that joined
    // it, or they would run on into the next run's arguments: rethrown by finish().
    this.trapped = undefined;
    try {
      this.kernels[index]!(this.argsAt, this.scratch[0]!);
    } catch (e) {
      this.trapped = e;
    }
    // Every task is claimed: close the run and wait only for the helpers that joined it.
    this.pending = n > 1 ? Atomics.exchange(this.ctl, JOINED, -1) : 0;
    if (n > 1) {
      this.stats.parallelRuns++;
      this.stats.joins += this.pending;
    }
    if (!wait) return;
    // The helpers that joined are running their last tasks: wait for them (a browser's main
    // thread may not block, so it spins; the wait is at most one task long).
    for (let d = Atomics.load(this.ctl, DONE); d < this.pending; d = Atomics.load(this.ctl, DONE)) {
      if (this.canBlock) Atomics.wait(this.ctl, DONE, d, 1);
    }
    this.finish(kernel);
  }

  private async waitAsync(): Promise<void> {
    for (let d = Atomics.load(this.ctl, DONE); d < this.pending; d = Atomics.load(this.ctl, DONE)) {
      if (this.canBlock) Atomics.wait(this.ctl, DONE, d, 1);
      else await (Atomics as unknown as AtomicsWaitAsync).waitAsync(this.ctl, DONE, d, 1).value;
    }
  }

  private finish(kernel: string): void {
    this.pending = 0;
    const helperFailed = Atomics.exchange(this.ctl, FAILED, 0);
    if (this.trapped !== undefined) {
      const e = this.trapped;
      this.trapped = undefined;
      throw e instanceof Error ? new Error(`wasm kernel ${kernel}: ${e.message}`, { cause: e }) : e;
    }
    if (helperFailed) {
      throw new Error(`wasm kernel ${kernel} failed in a helper thread${this.errors.length ? `: ${this.errors.shift()}` : ''}`);
    }
  }

  /** Stop the helper threads. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.helpers.length) {
      Atomics.store(this.ctl, KERNEL, -1);
      Atomics.add(this.ctl, GEN, 1);
      Atomics.notify(this.ctl, GEN);
      await Promise.all(this.helpers.map((h) => h.terminate()));
    }
  }
}

async function defaultThreads(): Promise<number> {
  const n = isNode() ? (await import('node:os')).availableParallelism()
    : typeof navigator !== 'undefined' && navigator.hardwareConcurrency ? navigator.hardwareConcurrency : 4;
  return Math.min(16, n);
}

function isNode(): boolean {
  return typeof process !== 'undefined' && !!process.versions?.node && typeof window === 'undefined';
}

/** Atomics.wait throws on a browser's main thread. */
function blockingAllowed(): boolean {
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0);
    return true;
  } catch {
    return false;
  }
}

async function startHelpers(module: WebAssembly.Module, memory: WebAssembly.Memory, scratch: number[], errors: string[]): Promise<Helper[]> {
  const names = KERNEL_NAMES;
  const ready: Promise<void>[] = [];
  const helpers: Helper[] = [];
  if (isNode()) {
    const { Worker } = await import('node:worker_threads');
    for (let id = 1; id < scratch.length; id++) {
      const w = new Worker(workerSource, { eval: true });
      w.unref();
      ready.push(new Promise((resolve, reject) => {
        w.on('message', (m: { ready?: number; error?: string }) => (m.error ? errors.push(m.error) : resolve()));
        w.once('error', reject);
      }));
      w.postMessage({ module, memory, names, id, scratch: scratch[id] });
      helpers.push(w);
    }
  } else {
    const url = URL.createObjectURL(new Blob([workerSource], { type: 'text/javascript' }));
    for (let id = 1; id < scratch.length; id++) {
      const w = new Worker(url);
      ready.push(new Promise((resolve, reject) => {
        w.onmessage = (e: MessageEvent<{ ready?: number; error?: string }>) => (e.data.error ? errors.push(e.data.error) : resolve());
        w.onerror = (e) => reject(new Error(e.message));
      }));
      w.postMessage({ module, memory, names, id, scratch: scratch[id] });
      helpers.push(w);
    }
  }
  await Promise.all(ready);
  return helpers;
}

