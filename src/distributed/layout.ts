// The model's gradient layout and how it is cut for the all-reduce. Every replica and the
// coordinator derive the same cuts from the same layout (the parameters' names and shapes, in
// the model's order) and the session's wire format:
//   - all gradients (or parameter deltas) are laid end to end in one flat float32 vector;
//   - the vector is cut into buckets of at most `bucketBytes` (of float32 values);
//   - for a ring of W replicas, each bucket is cut into W chunks (the ring's unit);
//   - each chunk is sent in parts of at most `partBytes` in the wire format (what a transport
//     carries in one message: twice as many values in float16 as in float32).
// A gradient message declares which parameters (name, shape, dtype, element range) its values
// belong to and the dtype they travel in; `checkGradientPart` compares that declaration with the
// layout and the session's wire format.

import type { Module } from '../nn/module';
import { formatShape } from '../tensor';
import { ProtocolError } from './errors';
import { bytesPerValue, WIRE_DTYPE, type WireFormat } from './wire';

export interface ParamLayout {
  name: string;
  shape: number[];
  dtype: 'float32';
}

/** The model's parameters, in order: what every replica of a session must share. */
export type ModelLayout = ParamLayout[];

/** Part of one parameter's gradient inside a message: elements [start, start + count) of it. */
export interface Segment extends ParamLayout {
  start: number;
  count: number;
}

export function modelLayout(model: Module): ModelLayout {
  return model.namedParameters().map(([name, t]) => ({ name, shape: [...t.shape], dtype: 'float32' }));
}

/** `value` as a layout, or a ProtocolError naming what is malformed. */
export function checkLayout(value: unknown, maxElements: number): ModelLayout {
  if (!Array.isArray(value) || value.length === 0) throw new ProtocolError('the model layout is not a non-empty list of parameters');
  let total = 0;
  return value.map((p: unknown, i) => {
    const q = p as Partial<ParamLayout> | null;
    if (!q || typeof q.name !== 'string' || !Array.isArray(q.shape) || !q.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new ProtocolError(`parameter ${i} of the model layout is not { name, shape, dtype }`);
    }
    if (q.dtype !== 'float32') throw new ProtocolError(`parameter ${i} ("${q.name}") of the model layout is ${String(q.dtype)}; gradients are float32`);
    total += sizeOf(q.shape);
    if (total > maxElements) throw new ProtocolError(`the model layout has more than ${maxElements.toLocaleString('en')} elements`);
    return { name: q.name, shape: [...q.shape], dtype: 'float32' };
  });
}

/** The first difference between two layouts, in words, or null when they are the same. */
export function layoutDifference(theirs: ModelLayout, ours: ModelLayout): string | null {
  for (let i = 0; i < Math.max(theirs.length, ours.length); i++) {
    const a = theirs[i];
    const b = ours[i];
    if (!a || !b) return `${theirs.length} parameters, the session's model has ${ours.length}`;
    if (a.name !== b.name || !sameShape(a.shape, b.shape)) {
      return `parameter ${i} is "${a.name}" ${formatShape(a.shape)}, the session's is "${b.name}" ${formatShape(b.shape)}`;
    }
  }
  return null;
}

export class BucketPlan {
  /** Where each parameter starts in the flat vector. */
  readonly offsets: number[];
  readonly total: number;
  /** [start, count) of each bucket in the flat vector. */
  readonly buckets: { start: number; count: number }[] = [];
  /** Values in one message, in the wire format. */
  readonly partElements: number;

  constructor(
    readonly layout: ModelLayout,
    bucketBytes: number,
    /** The most one message carries (values or state bytes). */
    readonly partBytes: number,
    readonly wire: WireFormat = 'f32',
  ) {
    this.offsets = [];
    let total = 0;
    for (const p of layout) {
      this.offsets.push(total);
      total += sizeOf(p.shape);
    }
    this.total = total;
    const perBucket = Math.max(1, Math.floor(bucketBytes / 4));
    for (let start = 0; start < total; start += perBucket) this.buckets.push({ start, count: Math.min(perBucket, total - start) });
    this.partElements = Math.max(1, Math.floor(partBytes / bytesPerValue(wire)));
  }

  /** Elements [lo, hi) of bucket b that form chunk c of W (the ring's unit). */
  chunk(b: number, c: number, W: number): [number, number] {
    const n = this.buckets[b]!.count;
    return [Math.floor((c * n) / W), Math.floor(((c + 1) * n) / W)];
  }

  /** The messages that carry chunk c of bucket b: [offset in the bucket, count] each. */
  parts(b: number, c: number, W: number): [number, number][] {
    const [lo, hi] = this.chunk(b, c, W);
    const out: [number, number][] = [];
    for (let o = lo; o < hi; o += this.partElements) out.push([o, Math.min(this.partElements, hi - o)]);
    return out;
  }

  /** The parameters whose elements [offset, offset + count) of bucket b hold. */
  segments(b: number, offset: number, count: number): Segment[] {
    const lo = this.buckets[b]!.start + offset;
    const hi = lo + count;
    const out: Segment[] = [];
    this.layout.forEach((p, i) => {
      const start = this.offsets[i]!;
      const end = start + sizeOf(p.shape);
      if (end <= lo || start >= hi) return;
      const from = Math.max(lo, start);
      out.push({ ...p, start: from - start, count: Math.min(hi, end) - from });
    });
    return out;
  }

  /**
   * Throws a ProtocolError unless a gradient message's declared place (bucket, offset, count),
   * tensors, dtype on the wire and payload size are exactly what this layout says they must be.
   */
  checkGradientPart(h: { bucket: unknown; offset: unknown; count: unknown; tensors: unknown; dtype: unknown }, payloadBytes: number): void {
    const { bucket, offset, count, tensors, dtype } = h;
    if (!isIndex(bucket) || bucket >= this.buckets.length) {
      throw new ProtocolError(`a gradient message names bucket ${String(bucket)}; the model has buckets 0 to ${this.buckets.length - 1}`);
    }
    const n = this.buckets[bucket]!.count;
    if (!isIndex(offset) || !isIndex(count) || count < 1 || offset + count > n) {
      throw new ProtocolError(`a gradient message for bucket ${bucket} declares elements [${String(offset)}, +${String(count)}), outside its ${n} elements`);
    }
    if (count > this.partElements) {
      throw new ProtocolError(`a gradient message carries ${count} values; messages carry at most ${this.partElements}`);
    }
    const wireDType = WIRE_DTYPE[this.wire];
    if (dtype !== wireDType) {
      throw new ProtocolError(`a gradient message carries ${JSON.stringify(dtype)} values; this session's wire format is ${this.wire} (${wireDType})`);
    }
    const bytes = count * bytesPerValue(this.wire);
    if (payloadBytes !== bytes) {
      throw new ProtocolError(`a gradient message declares ${count} ${wireDType} values (${bytes} bytes) but carries ${payloadBytes} bytes`);
    }
    const expected = this.segments(bucket, offset, count);
    const declared = Array.isArray(tensors) ? (tensors as Partial<Segment>[]) : null;
    if (!declared || declared.length !== expected.length) {
      throw new ProtocolError(
        `a gradient message for bucket ${bucket} [${offset}, +${count}) declares ${declared ? declared.length : 'no'} tensors; ` +
          `that range holds ${expected.length} (${expected.map((s) => `"${s.name}"`).join(', ')})`,
      );
    }
    expected.forEach((e, i) => {
      const d = declared[i]!;
      if (typeof d !== 'object' || d === null || d.name !== e.name || !Array.isArray(d.shape) || !sameShape(d.shape, e.shape) || d.dtype !== e.dtype) {
        const what = typeof d === 'object' && d !== null ? `"${String(d.name)}" ${Array.isArray(d.shape) ? formatShape(d.shape) : '(no shape)'} ${String(d.dtype)}` : JSON.stringify(d);
        throw new ProtocolError(`a gradient message declares tensor ${what}; the model's parameter there is "${e.name}" ${formatShape(e.shape)} ${e.dtype}`);
      }
      if (d.start !== e.start || d.count !== e.count) {
        throw new ProtocolError(
          `a gradient message declares elements [${String(d.start)}, +${String(d.count)}) of "${e.name}"; its place in bucket ${bucket} holds [${e.start}, +${e.count})`,
        );
      }
    });
  }
}

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function sameShape(a: readonly unknown[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function isIndex(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}
