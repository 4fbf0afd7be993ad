// 32-bit word kernels with the semantics of shaders/copy.wgsl: fill n words of `out` with one bit
// pattern, and copy a strided view (shape over RANK dimensions, src_strides) to a strided
// destination (out_strides), each from its <binding>_offset. Walked as segments along the last dimension; where
// both last strides are 1 the words move four at a time.

import { claim, i32At, u32At, u32Of } from './common';
import { fill as L, copy as C } from './generated/fields';

// @ts-ignore: decorator
@inline const CHUNK: i32 = 16384;

export function fill(args: usize, scratch: usize): void {
  const n = i32At(args, L.n);
  const out = <usize>u32At(args, L.bind.out) + (<usize>u32At(args, L.out_offset) << 2);
  const value = u32At(args, L.value);
  const v = i32x4.splat(value);
  const tasks = (n + CHUNK - 1) / CHUNK;
  for (let t = claim(args); t < tasks; t = claim(args)) {
    const end = min(n, (t + 1) * CHUNK);
    let i = t * CHUNK;
    for (; i + 4 <= end; i += 4) v128.store(out + (<usize>i << 2), v);
    for (; i < end; i++) store<u32>(out + (<usize>i << 2), value);
  }
}

export function copy(args: usize, scratch: usize): void {
  const n = i32At(args, C.n), rank = max(1, i32At(args, C.RANK));
  const src = <usize>u32At(args, C.bind.src) + (<usize>u32At(args, C.src_offset) << 2);
  const dst = <usize>u32At(args, C.bind.out) + (<usize>u32At(args, C.out_offset) << 2);
  const inner = <i32>u32Of(args, C.shape, rank - 1);
  const ss = <i32>u32Of(args, C.src_strides, rank - 1), ds = <i32>u32Of(args, C.out_strides, rank - 1);
  const tasks = (n + CHUNK - 1) / CHUNK;
  for (let t = claim(args); t < tasks; t = claim(args)) {
    const end = min(n, (t + 1) * CHUNK);
    for (let i = t * CHUNK; i < end;) {
      const len = min(inner - i % inner, end - i);
      let rem = <u32>i;
      let so: u32 = 0, dO: u32 = 0;
      for (let d = rank - 1; d >= 0; d--) {
        const size = u32Of(args, C.shape, d);
        const c = rem % size;
        rem /= size;
        so += c * u32Of(args, C.src_strides, d);
        dO += c * u32Of(args, C.out_strides, d);
      }
      let ps = src + (<usize>so << 2), pd = dst + (<usize>dO << 2);
      let j = 0;
      if (ss == 1 && ds == 1) {
        for (; j + 4 <= len; j += 4) v128.store(pd + (<usize>j << 2), v128.load(ps + (<usize>j << 2)));
        ps += <usize>j << 2;
        pd += <usize>j << 2;
      }
      for (; j < len; j++) {
        store<u32>(pd, load<u32>(ps));
        ps += <usize>ss << 2;
        pd += <usize>ds << 2;
      }
      i += len;
    }
  }
}
