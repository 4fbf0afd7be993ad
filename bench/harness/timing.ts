// Wall-clock timing of one run, and the median that the benchmark reports.

export interface Timed<T> {
  ms: number;
  value: T;
}

export async function timed<T>(f: () => Promise<T>): Promise<Timed<T>> {
  const t0 = performance.now();
  const value = await f();
  return { ms: performance.now() - t0, value };
}

/** The median (the mean of the middle two for an even count). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
