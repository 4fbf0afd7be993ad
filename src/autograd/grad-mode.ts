// Whether ops record their backward rule. noGrad() turns recording off for evaluation and for
// the backward pass itself (webgrad computes first-order gradients only).

let disabled = 0;

export function isGradEnabled(): boolean {
  return disabled === 0;
}

/** Run `fn` without recording gradients (async functions keep recording off until they settle). */
export function noGrad<T>(fn: () => T): T {
  disabled++;
  let result: T;
  try {
    result = fn();
  } catch (e) {
    disabled--;
    throw e;
  }
  if (result instanceof Promise) {
    return result.finally(() => disabled--) as T;
  }
  disabled--;
  return result;
}

/**
 * Run `fn` (synchronous) with recording on, whatever the scopes around it say: a checkpointed
 * segment re-runs its forward from inside backward(), which runs under noGrad().
 */
export function withGrad<T>(fn: () => T): T {
  const outer = disabled;
  disabled = 0;
  try {
    return fn();
  } finally {
    disabled = outer;
  }
}
