// Reading by index, with the semantics of shaders/gather.wgsl (embedding, indexSelect, gather),
// and the sort keys of the deterministic scatter-add (src/ops/scatter-add.ts). Output element i
// walks the output shape (RANK dimensions): its id is read at Σ coords·idx_strides, the source
// element at Σ coords·src_strides + id·axis_stride. Elements move as 32-bit words.
//   gather {idx, src, out, status}: out[i] = src[…]; an id outside [0, limit) raises `code` in
//     status[0] and writes 0; ids outside the bound block [lo, lo + len) of the indexed dimension
//     are left to the launch that binds theirs.
//   gather_keys {idx, keys}: entry i of `padded` gets the pair (key, i), the key being the offset
//     the entry adds into (0xffffffff for an id out of range and for the padding past n).

import { claim, i32At, u32At, u32Of } from './common';
import { gather as G, gather_keys as K } from './generated/fields';

// @ts-ignore: decorator
@inline const CHUNK: u32 = 4096;

/** status = max(status, code), atomically. */
function raise(status: usize, code: u32): void {
  let seen = atomic.load<u32>(status);
  while (seen < code) {
    const was = atomic.cmpxchg<u32>(status, seen, code);
    if (was == seen) return;
    seen = was;
  }
}

export function gather(args: usize, scratch: usize): void {
  const n = u32At(args, G.n), limit = u32At(args, G.limit), lo = u32At(args, G.lo), len = u32At(args, G.len);
  const axisStride = u32At(args, G.axis_stride), code = u32At(args, G.code);
  const rank = max(1, i32At(args, G.RANK));
  const idx = <usize>u32At(args, G.bind.idx) + (<usize>u32At(args, G.idx_offset) << 2);
  const src = <usize>u32At(args, G.bind.src) + (<usize>u32At(args, G.src_offset) << 2);
  const out = <usize>u32At(args, G.bind.out) + (<usize>u32At(args, G.out_offset) << 2);
  const status = <usize>u32At(args, G.bind.status);
  const tasks = <i32>((n + CHUNK - 1) / CHUNK);
  for (let t = claim(args); t < tasks; t = claim(args)) {
    const end = min(n, <u32>(t + 1) * CHUNK);
    for (let i = <u32>t * CHUNK; i < end; i++) {
      // Offsets of element i in the ids and in the source (without the id's part).
      let rem = i, oi: u32 = 0, os: u32 = 0;
      for (let d = rank - 1; d >= 0; d--) {
        const size = u32Of(args, G.shape, d);
        const c = rem % size;
        rem /= size;
        oi += c * u32Of(args, G.idx_strides, d);
        os += c * u32Of(args, G.src_strides, d);
      }
      const id = load<i32>(idx + (<usize>oi << 2));
      if (id < 0 || <u32>id >= limit) {
        raise(status, code);
        store<u32>(out + (<usize>i << 2), 0);
        continue;
      }
      const v = <u32>id;
      if (v < lo || v - lo >= len) continue;
      store<u32>(out + (<usize>i << 2), load<u32>(src + (<usize>(os + (v - lo) * axisStride) << 2)));
    }
  }
}

export function gather_keys(args: usize, scratch: usize): void {
  const n = u32At(args, K.n), padded = u32At(args, K.padded), limit = u32At(args, K.limit);
  const axisStride = u32At(args, K.axis_stride);
  const rank = max(1, i32At(args, K.RANK));
  const idx = <usize>u32At(args, K.bind.idx) + (<usize>u32At(args, K.idx_offset) << 2);
  const keys = <usize>u32At(args, K.bind.keys) + (<usize>u32At(args, K.keys_offset) << 2);
  const tasks = <i32>((padded + CHUNK - 1) / CHUNK);
  for (let t = claim(args); t < tasks; t = claim(args)) {
    const end = min(padded, <u32>(t + 1) * CHUNK);
    for (let i = <u32>t * CHUNK; i < end; i++) {
      let key: u32 = 0xffffffff, entry: u32 = 0xffffffff;
      if (i < n) {
        let rem = i, oi: u32 = 0, os: u32 = 0;
        for (let d = rank - 1; d >= 0; d--) {
          const size = u32Of(args, K.shape, d);
          const c = rem % size;
          rem /= size;
          oi += c * u32Of(args, K.idx_strides, d);
          os += c * u32Of(args, K.src_strides, d);
        }
        const id = load<i32>(idx + (<usize>oi << 2));
        if (id >= 0 && <u32>id < limit) key = os + <u32>id * axisStride;
        entry = i;
      }
      store<u32>(keys + (<usize>(2 * i) << 2), key);
      store<u32>(keys + (<usize>(2 * i + 1) << 2), entry);
    }
  }
}
