// Command-line values, read and checked before anything starts: parseArgs with negative numbers
// taken as values (parseArgs calls `--timeout -3` ambiguous), and numbers checked against their
// bounds with a message that names the option, the value and what it must be.

import { parseArgs, type ParseArgsConfig } from 'node:util';

/** A mistake in the command line: the CLI prints the message and the usage, not a stack trace. */
export class UsageError extends Error {
  override name = 'UsageError';
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** The values parseArgs gives for `O`: strings for string options, booleans for boolean ones (undefined when absent without a default). */
export type OptionValues<O extends Options> = {
  [K in keyof O]: (O[K]['type'] extends 'boolean' ? boolean : string) | (O[K] extends { default: unknown } ? never : undefined);
};

/** `parseArgs` of `argv` against `options`, its own errors as UsageErrors. */
export function parseOptions<O extends Options>(argv: readonly string[], options: O): OptionValues<O> {
  try {
    return parseArgs({ args: joinNegativeValues(argv, options), options, allowPositionals: false }).values as unknown as OptionValues<O>;
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/**
 * `--timeout -3` as `--timeout=-3`: parseArgs takes a value that starts with a dash for an option
 * and calls the pair ambiguous; a negative number is a value (which the checks then refuse by name).
 */
function joinNegativeValues(argv: readonly string[], options: Options): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const name = arg.startsWith('--') && !arg.includes('=') ? arg.slice(2) : null;
    const next = argv[i + 1];
    if (name && options[name]?.type === 'string' && next !== undefined && /^-(\d|\.\d|Infinity)/.test(next)) {
      out.push(`${arg}=${next}`);
      i++;
    } else {
      out.push(arg);
    }
  }
  return out;
}

/** `v` as a number in [min, max] (Number('') is 0, which nobody means: refused). */
export function numberIn(option: string, v: string, min: number, max: number, unit = ''): number {
  const n = v.trim() === '' ? NaN : Number(v);
  if (!Number.isFinite(n) || n < min || n > max) {
    throw new UsageError(`${option} must be a number from ${min.toLocaleString('en')} to ${max.toLocaleString('en')}${unit}, got ${v}`);
  }
  return n;
}

/** `v` as an integer in [min, max]. */
export function integerIn(option: string, v: string, min: number, max: number, unit = ''): number {
  const n = numberIn(option, v, min, max, unit);
  if (!Number.isInteger(n)) throw new UsageError(`${option} must be a whole number from ${min.toLocaleString('en')} to ${max.toLocaleString('en')}${unit}, got ${v}`);
  return n;
}
