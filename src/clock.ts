// Milliseconds from a monotonic clock where there is one (performance.now()), for measuring.

export function now(): number {
  return globalThis.performance?.now() ?? Date.now();
}
