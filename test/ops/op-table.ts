// Table-driven op tests: one entry per case — the inputs' shapes, the webgrad call and the float64
// reference — and the table runs, for every case and every device variant given:
//   - the value check: fresh random inputs, outputs poisoned with NaN before each dispatch
//     (test/setup.ts), compared with the reference within the case's tolerance;
//   - the gradient check: webgrad's backward against central finite differences of the reference
//     (gradCheck in ../helpers.ts), for the float inputs (or those named in `grad.wrt`).
// An op's test file is then a list of cases; see "Adding an op" in the README.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectClose, gpuTensor, gradCheck, Rng, sizeOf, wg } from '../helpers';

export interface OpInput {
  shape: number[];
  /** Uniform float32 values in [lo, hi) (default [-1, 1)). */
  range?: [number, number];
  /** An int32 input instead, with values in [0, ints) (ids, labels, indices). Not differentiated. */
  ints?: number;
  /** Values from a generator of the case's own (e.g. to stay away from a kink). */
  values?: (rng: Rng, n: number) => Float64Array;
}

export interface OpCase {
  name: string;
  inputs: OpInput[];
  /** The webgrad call. */
  run: (xs: wg.Tensor[]) => wg.Tensor;
  /** The float64 reference of the flat output, from the inputs' values. */
  ref: (xs: Float64Array[]) => ArrayLike<number>;
  /** The output shape webgrad must give. */
  shape: number[];
  rtol?: number;
  atol?: number;
  /** Finite-difference check of the backward rule (default: every float input); false: none. */
  grad?: false | { wrt?: number[]; eps?: number; rtol?: number; atol?: number };
}

/** A way to run the op's kernels (subgroups or workgroup memory, a tile profile…). */
export interface Variant {
  name: string;
  enter(): void;
  exit(): void;
}

function inputValues(rng: Rng, x: OpInput): Float64Array {
  if (x.values) return x.values(rng, sizeOf(x.shape));
  if (x.ints !== undefined) return Float64Array.from({ length: sizeOf(x.shape) }, () => rng.int(x.ints!));
  const [lo, hi] = x.range ?? [-1, 1];
  return rng.array(sizeOf(x.shape), lo, hi);
}

function toTensor(x: OpInput, data: Float64Array, requiresGrad = false): wg.Tensor {
  return x.ints !== undefined ? wg.tensor(Int32Array.from(data), x.shape, { dtype: 'int32' }) : gpuTensor(data, x.shape, requiresGrad);
}

/** The value check of one case. */
export async function checkValues(c: OpCase): Promise<void> {
  const rng = new Rng();
  const data = c.inputs.map((x) => inputValues(rng, x));
  const out = wg.tidy(() => c.run(c.inputs.map((x, i) => toTensor(x, data[i]!))));
  try {
    expect(out.shape, `${c.name}: shape`).toEqual(c.shape);
    expectClose(await out.toArray(), c.ref(data), { rtol: c.rtol, atol: c.atol, seed: rng.seed, what: c.name });
  } finally {
    out.dispose();
  }
}

/** The finite-difference check of one case's backward rule. */
export async function checkGradients(c: OpCase): Promise<void> {
  if (c.grad === false) return;
  const rng = new Rng();
  const data = c.inputs.map((x) => inputValues(rng, x));
  const floats = c.inputs.flatMap((x, i) => (x.ints === undefined ? [i] : []));
  const wrt = c.grad?.wrt ?? floats;
  // gradCheck makes float tensors of every input; int inputs are made here and closed over.
  const ints = new Map(c.inputs.flatMap((x, i) => (x.ints !== undefined ? [[i, toTensor(x, data[i]!)] as const] : [])));
  try {
    await gradCheck({
      inputs: floats.map((i) => ({ data: data[i]!, shape: c.inputs[i]!.shape })),
      gpuFn: (xs) => c.run(c.inputs.map((_, i) => ints.get(i) ?? xs[floats.indexOf(i)]!)),
      refFn: (vals) => Float64Array.from(c.ref(c.inputs.map((_, i) => (ints.has(i) ? data[i]! : vals[floats.indexOf(i)]!)))),
      rng,
      wrt: wrt.map((i) => floats.indexOf(i)),
      eps: c.grad?.eps,
      rtol: c.grad?.rtol,
      atol: c.grad?.atol,
    });
  } finally {
    for (const t of ints.values()) t.dispose();
  }
}

/**
 * `describe(title)` with one test per case (values, and gradients unless turned off), under each
 * variant (an op whose kernels come in variants is checked in all of them).
 */
export function opTable(title: string, cases: readonly OpCase[], variants: readonly Variant[] = []): void {
  const body = () => {
    for (const c of cases) {
      it(c.name, () => checkValues(c));
      if (c.grad !== false) it(`${c.name}: gradient`, () => checkGradients(c));
    }
  };
  describe(title, () => {
    if (!variants.length) return body();
    for (const v of variants) {
      describe(v.name, () => {
        beforeAll(() => v.enter());
        afterAll(() => v.exit());
        body();
      });
    }
  });
}
