// The bench scripts' command lines: `--name value` pairs, read where they are used.

/** The value after `name` in `args`, or undefined when the flag is absent. */
export function option(args: readonly string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}
