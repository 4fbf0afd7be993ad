// Tensor: a shape, strides and an offset into a refcounted device buffer (Storage: a GPUBuffer, or
// a block of the CPU backend's wasm memory). Views (reshape,
// transpose, slicing) share storage; the buffer goes back to the pool when its last user lets go.
// Op methods (a.add(b), a.matmul(b), …) are attached in src/ops/methods.ts.

import type { Node } from './autograd/node';
import { currentRuntime, runtime, type Runtime } from './runtime/device';
import { bufferContents } from './runtime/buffer-pool';
import type { DeviceBuffer } from './runtime/device-buffer';
import { DTypeError, DisposedError, ShapeError } from './runtime/errors';
import { copyView } from './kernels/copy';
import { contiguousStrides, elementBytes, formatShape, isContiguousView, sizeOf, type DType } from './kernels/view';
import { track, untrack } from './scope';

export { contiguousStrides, elementBytes, formatShape, sizeOf, type DType };

/** A device buffer shared by a tensor and its views, freed when the last reference is released. */
export class Storage {
  private refs = 1;

  constructor(
    readonly buffer: DeviceBuffer,
    /** Bytes the tensor data occupies (the buffer may be larger: its size class). */
    readonly bytes: number,
    /** The runtime (device) the buffer belongs to. */
    readonly rt: Runtime,
    /** The tensor it was made for, e.g. "tensor [200, 300] float32" (for error messages). */
    what = 'a tensor',
  ) {
    bufferContents.set(buffer, { bytes, what });
  }

  retain(): this {
    this.refs++;
    return this;
  }

  /** True when another tensor (a view) uses this storage too. */
  get isShared(): boolean {
    return this.refs > 1;
  }

  release(): void {
    if (--this.refs > 0) return;
    // A buffer of a device that is gone (lost, or shut down) is not pooled again.
    if (currentRuntime() === this.rt && !this.rt.lost) this.rt.executor.release(this.buffer);
  }
}

// Tensors that the program dropped without dispose() give their buffer back when collected.
const collected = new FinalizationRegistry<Storage>((s) => {
  if (currentRuntime() === s.rt) s.rt.liveTensors--;
  s.release();
});

let nextId = 1;

export class Tensor {
  readonly id = nextId++;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  /** Offset of element [0, 0, …] in the storage, in elements. */
  readonly offset: number;
  readonly dtype: DType;
  readonly size: number;
  requiresGrad: boolean;
  /** The gradient accumulated by backward() (leaf tensors with requiresGrad). */
  grad: Tensor | null = null;
  /** @internal the autograd node that produced this tensor (null for leaves and constants). */
  _node: Node | null = null;
  private _storage: Storage | null;

  /** @internal use the creation functions (wg.tensor, wg.zeros, …) or ops instead. */
  constructor(
    storage: Storage,
    shape: readonly number[],
    dtype: DType,
    opts: { strides?: readonly number[]; offset?: number; requiresGrad?: boolean } = {},
  ) {
    this._storage = storage;
    this.shape = Object.freeze([...shape]);
    this.strides = Object.freeze(opts.strides ? [...opts.strides] : contiguousStrides(shape));
    this.offset = opts.offset ?? 0;
    this.dtype = dtype;
    this.size = sizeOf(shape);
    this.requiresGrad = opts.requiresGrad ?? false;
    const rt = currentRuntime();
    if (rt) rt.liveTensors++;
    collected.register(this, storage, this);
    track(this);
  }

  get ndim(): number {
    return this.shape.length;
  }

  get disposed(): boolean {
    return this._storage === null;
  }

  /** @internal the storage, or a DisposedError naming `op`. */
  storage(op = 'this op'): Storage {
    if (!this._storage) {
      throw new DisposedError(
        `${op}: tensor ${formatShape(this.shape)} (${this.dtype}) was used after dispose() ` +
          '(or after the tidy() scope that created it ended)',
      );
    }
    return this._storage;
  }

  /** @internal the device buffer, checked for use-after-dispose. */
  buffer(op?: string): DeviceBuffer {
    return this.storage(op).buffer;
  }

  /** True when elements are laid out row-major without gaps (offset may be non-zero). */
  get isContiguous(): boolean {
    return isContiguousView(this);
  }

  /** Free the GPU memory now. Safe to call twice; views keep the storage alive. */
  dispose(): void {
    const s = this._storage;
    if (!s) return;
    this._storage = null;
    collected.unregister(this);
    untrack(this);
    if (currentRuntime() === s.rt) s.rt.liveTensors--;
    s.release();
    this._node?.release();
    this._node = null;
    this.grad?.dispose();
    this.grad = null;
  }

  /** True when this tensor's memory belonged to a device that is gone (lost, or replaced by a later init()). */
  get orphaned(): boolean {
    const s = this._storage;
    return s !== null && (s.rt !== currentRuntime() || s.rt.lost !== null);
  }

  /**
   * @internal Give an orphaned tensor new memory (contents undefined) on the current device,
   * keeping this Tensor object, so that whatever holds it (a module, an optimizer) holds it still.
   * `homes` maps old storage to new, so that views of one storage keep sharing it.
   */
  rehome(homes: Map<Storage, Storage>): void {
    const old = this.storage('rehome');
    if (!this.orphaned) return;
    let s = homes.get(old);
    if (s) s.retain();
    else homes.set(old, (s = freshStorage(runtime(), old.bytes, `tensor ${formatShape(this.shape)} ${this.dtype}`)));
    collected.unregister(this);
    collected.register(this, s, this);
    this._storage = s;
    s.rt.liveTensors++;
    this._node?.release(); // a graph over the old device's tensors
    this._node = null;
  }

  /** @internal a new Tensor object sharing this storage (for views and saved tensors). */
  view(shape: readonly number[], strides: readonly number[], offset: number): Tensor {
    return new Tensor(this.storage('view').retain(), shape, this.dtype, { strides, offset });
  }

  /** A copy of the data (Float32Array for float32, Int32Array for int32). */
  async toArray(): Promise<Float32Array | Int32Array> {
    const rt = runtime();
    if (this.dtype === 'float16') return readHalf(this);
    let src: Tensor = this;
    if (!this.isContiguous) {
      src = empty(this.shape, this.dtype, 'toArray');
      copyView(this, src, 'toArray');
    }
    try {
      const bytes = await rt.executor.read(src.buffer('toArray'), src.offset * 4, src.size * 4);
      return this.dtype === 'int32' ? new Int32Array(bytes) : new Float32Array(bytes);
    } finally {
      if (src !== this) src.dispose();
    }
  }

  /** The value of a one-element tensor. */
  async item(): Promise<number> {
    if (this.size !== 1) {
      throw new ShapeError(`item(): tensor ${formatShape(this.shape)} has ${this.size} elements, not 1`);
    }
    return (await this.toArray())[0]!;
  }

  toString(): string {
    return `Tensor(${formatShape(this.shape)}, ${this.dtype}${this.disposed ? ', disposed' : ''})`;
  }
}

/** @internal a fresh tensor of `shape` on a new pooled buffer (contents undefined). */
export function empty(shape: readonly number[], dtype: DType = 'float32', what = 'tensor'): Tensor {
  const rt = runtime();
  const bytes = Math.max(4, Math.ceil((sizeOf(shape) * elementBytes(dtype)) / 4) * 4);
  return new Tensor(freshStorage(rt, bytes, `tensor ${formatShape(shape)} ${dtype}`, `${what} ${formatShape(shape)}`), shape, dtype);
}

/** A new pooled buffer of `bytes` as storage (poisoned with NaN in tests). */
function freshStorage(rt: Runtime, bytes: number, contents: string, what = contents): Storage {
  rt.executor.openScopes();
  const buffer = rt.pool.acquire(bytes, what);
  if (debug.poisonOutputs) poison(rt, buffer);
  return new Storage(buffer, bytes, rt, contents);
}

/** Debug switches (tests turn poisoning on so that unwritten output elements read as NaN). */
export const debug = { poisonOutputs: false };

let nanBlock: Uint32Array | null = null;
function poison(rt: Runtime, buffer: DeviceBuffer): void {
  const n = buffer.size / 4;
  if (!nanBlock || nanBlock.length < n) nanBlock = new Uint32Array(Math.max(n, 1024)).fill(0x7fc00000);
  rt.executor.upload(buffer, 0, nanBlock.subarray(0, n));
}

/** The values of a contiguous float16 tensor as float32 (what toArray() returns for one). */
async function readHalf(t: Tensor): Promise<Float32Array> {
  if (!t.isContiguous) throw new DTypeError(`toArray: float16 tensor ${formatShape(t.shape)} is an internal view that cannot be read`);
  const first = t.offset - (t.offset % 2);
  const words = Math.ceil((t.offset + t.size - first) / 2);
  const bytes = await runtime().executor.read(t.buffer('toArray'), first * 2, words * 4);
  const halves = new Uint16Array(bytes);
  const out = new Float32Array(t.size);
  for (let i = 0; i < t.size; i++) out[i] = halfToFloat(halves[t.offset - first + i]!);
  return out;
}

/** The value of IEEE binary16 bits. */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}
