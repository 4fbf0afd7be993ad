// Float64 CPU references for joining and cutting along an axis (row-major data).

import { sizeOf } from '../helpers';

/** Outer × axis × inner view of a shape cut at `axis`. */
function split3(shape: readonly number[], axis: number): [number, number, number] {
  return [sizeOf(shape.slice(0, axis)), shape[axis]!, sizeOf(shape.slice(axis + 1))];
}

export function cat(xs: readonly ArrayLike<number>[], shapes: readonly (readonly number[])[], axis: number): Float64Array {
  const [outer, , inner] = split3(shapes[0]!, axis);
  const total = shapes.reduce((n, s) => n + s[axis]!, 0);
  const out = new Float64Array(outer * total * inner);
  let at = 0;
  xs.forEach((x, t) => {
    const len = shapes[t]![axis]!;
    for (let o = 0; o < outer; o++) {
      for (let a = 0; a < len; a++) for (let i = 0; i < inner; i++) out[(o * total + at + a) * inner + i] = x[(o * len + a) * inner + i]!;
    }
    at += len;
  });
  return out;
}

/** Elements [start, start + length) along `axis`. */
export function narrow(x: ArrayLike<number>, shape: readonly number[], axis: number, start: number, length: number): Float64Array {
  const [outer, n, inner] = split3(shape, axis);
  const out = new Float64Array(outer * length * inner);
  for (let o = 0; o < outer; o++) {
    for (let a = 0; a < length; a++) for (let i = 0; i < inner; i++) out[(o * length + a) * inner + i] = x[(o * n + start + a) * inner + i]!;
  }
  return out;
}
