// Every error webgrad throws is a WebGradError, with a message a person can act on:
// it names the op, the shapes or the limit involved.

export class WebGradError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** Operand shapes that do not fit the op (the message names both). */
export class ShapeError extends WebGradError {}

/** An operand of the wrong dtype (float32 where int32 is needed, or the reverse). */
export class DTypeError extends WebGradError {}

/** A tensor used after `dispose()` (or after the `tidy` scope that owned it ended). */
export class DisposedError extends WebGradError {}

/** Something larger than the device (or the configured budget) allows. */
export class LimitError extends WebGradError {}

/** The device ran out of memory, or an allocation would exceed `budget.memoryBudgetBytes`. */
export class OutOfMemoryError extends LimitError {}

/** The GPU rejected a command: a bug in webgrad, reported with the kernel involved. */
export class GPUValidationError extends WebGradError {}

/**
 * A training step's loss or gradients hold inf or NaN (thrown by Trainer.step with
 * errorIfNonfinite; by default the update is skipped and reported instead).
 */
export class NonFiniteError extends WebGradError {}

/** The GPU device went away (driver reset, `device.destroy()`, tab backgrounded too long). */
export class DeviceLostError extends WebGradError {}

/** There is no WebGPU in this environment; the message says how to enable it. */
export class WebGPUUnavailableError extends WebGradError {}

/** webgrad is used before `await wg.init()`. */
export class NotInitializedError extends WebGradError {}

/** What kind of value `v` is, for a message: "an array of numbers", "a Float32Array", "undefined", … */
export function kindOf(v: unknown): string {
  const a = (name: string) => `${/^(?!uint)[aeiou]/i.test(name) ? 'an' : 'a'} ${name}`; // a Uint8Array, an Int32Array
  if (v === null || v === undefined) return String(v);
  if (Array.isArray(v)) return v.length > 0 && v.every((x) => typeof x === 'number') ? 'an array of numbers' : 'an array';
  if (typeof v !== 'object') return a(typeof v);
  const name = (v as { constructor?: { name?: string } }).constructor?.name;
  return name && name !== 'Object' ? a(name) : 'an object';
}
