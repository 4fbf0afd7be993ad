// tidy(): frees every tensor a function created, except what it returns. Scopes nest; what a
// scope returns moves to the scope around it. An async function keeps its scope open until its
// promise settles (tensors created meanwhile by unrelated code land in it too: avoid running two
// async tidy scopes concurrently).

import type { Tensor } from './tensor';

const scopes: Set<Tensor>[] = [];

/** @internal called by the Tensor constructor. */
export function track(t: Tensor): void {
  scopes[scopes.length - 1]?.add(t);
}

/** @internal called by dispose() and keep(). */
export function untrack(t: Tensor): void {
  for (let i = scopes.length - 1; i >= 0; i--) if (scopes[i]!.delete(t)) return;
}

/** Take `t` out of every tidy scope: it lives until disposed. Returns `t`. */
export function keep<T extends Tensor>(t: T): T {
  for (const s of scopes) s.delete(t);
  return t;
}

export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    end(scope, undefined);
    throw e;
  }
  if (result instanceof Promise) {
    return result.then(
      (v) => {
        end(scope, v);
        return v;
      },
      (e) => {
        end(scope, undefined);
        throw e;
      },
    ) as T;
  }
  end(scope, result);
  return result;
}

function end(scope: Set<Tensor>, result: unknown): void {
  const i = scopes.lastIndexOf(scope);
  if (i >= 0) scopes.splice(i, 1);
  const kept = new Set<Tensor>();
  collect(result, kept, 0);
  const parent = scopes[scopes.length - 1];
  for (const t of scope) {
    if (kept.has(t)) parent?.add(t);
    else t.dispose();
  }
}

/** The tensors inside a returned value: a tensor, or arrays/objects/Maps of them. */
function collect(v: unknown, out: Set<Tensor>, depth: number): void {
  if (!v || typeof v !== 'object' || depth > 8) return;
  if (isTensor(v)) {
    out.add(v);
    if (v.grad) out.add(v.grad);
    return;
  }
  if (Array.isArray(v)) for (const x of v) collect(x, out, depth + 1);
  else if (v instanceof Map) for (const x of v.values()) collect(x, out, depth + 1);
  else if (Object.getPrototypeOf(v) === Object.prototype) for (const x of Object.values(v)) collect(x, out, depth + 1);
}

function isTensor(v: object): v is Tensor {
  return 'shape' in v && 'dtype' in v && typeof (v as Tensor).dispose === 'function' && 'strides' in v;
}
