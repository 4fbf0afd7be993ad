// Every error webgrad throws is a WebGradError, with a message a person can act on:
// it names the op, the shapes or the limit involved.
//
// Each class names itself (named(), in a static block): bundlers rename classes (the built
// package had DeviceLostError as "te"), so a name read from the class at run time is not the one
// users log and compare.

/**
 * Give an error class its name on the constructor (what Node's inspect prints) and on the
 * prototype (err.name, the stack's first line), as the built-in errors have it.
 */
export function named(cls: abstract new (...args: never[]) => Error, name: string): void {
  Object.defineProperty(cls, 'name', { value: name, configurable: true });
  Object.defineProperty(cls.prototype, 'name', { value: name, writable: true, configurable: true });
}

export class WebGradError extends Error {
  static {
    named(this, 'WebGradError');
  }

  constructor(message: string) {
    super(message);
    // A subclass that names itself nowhere (one of yours) is called after its class.
    if (!Object.hasOwn(new.target.prototype, 'name')) this.name = new.target.name;
  }
}

/** Operand shapes that do not fit the op (the message names both). */
export class ShapeError extends WebGradError {
  static {
    named(this, 'ShapeError');
  }
}

/** An operand of the wrong dtype (float32 where int32 is needed, or the reverse). */
export class DTypeError extends WebGradError {
  static {
    named(this, 'DTypeError');
  }
}

/** A tensor used after `dispose()` (or after the `tidy` scope that owned it ended). */
export class DisposedError extends WebGradError {
  static {
    named(this, 'DisposedError');
  }
}

/** Something larger than the device (or the configured budget) allows. */
export class LimitError extends WebGradError {
  static {
    named(this, 'LimitError');
  }
}

/** The device ran out of memory, or an allocation would exceed `budget.memoryBudgetBytes`. */
export class OutOfMemoryError extends LimitError {
  static {
    named(this, 'OutOfMemoryError');
  }
}

/** The GPU rejected a command: a bug in webgrad, reported with the kernel involved. */
export class GPUValidationError extends WebGradError {
  static {
    named(this, 'GPUValidationError');
  }
}

/**
 * A training step's loss or gradients hold inf or NaN (thrown by Trainer.step with
 * errorIfNonfinite; by default the update is skipped and reported instead).
 */
export class NonFiniteError extends WebGradError {
  static {
    named(this, 'NonFiniteError');
  }
}

/** The GPU device went away (driver reset, `device.destroy()`, tab backgrounded too long). */
export class DeviceLostError extends WebGradError {
  static {
    named(this, 'DeviceLostError');
  }
}

/** There is no WebGPU in this environment; the message says how to enable it. */
export class WebGPUUnavailableError extends WebGradError {
  static {
    named(this, 'WebGPUUnavailableError');
  }
}

/** webgrad is used before `await wg.init()`. */
export class NotInitializedError extends WebGradError {
  static {
    named(this, 'NotInitializedError');
  }
}

/** What kind of value `v` is, for a message: "an array of numbers", "a Float32Array", "undefined", … */
export function kindOf(v: unknown): string {
  const a = (name: string) => `${/^(?!uint)[aeiou]/i.test(name) ? 'an' : 'a'} ${name}`; // a Uint8Array, an Int32Array
  if (v === null || v === undefined) return String(v);
  if (Array.isArray(v)) return v.length > 0 && v.every((x) => typeof x === 'number') ? 'an array of numbers' : 'an array';
  if (typeof v !== 'object') return a(typeof v);
  const name = (v as { constructor?: { name?: string } }).constructor?.name;
  return name && name !== 'Object' ? a(name) : 'an object';
}
