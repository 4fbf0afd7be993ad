// Attention on a simulated small GPU (budgets are fixed at init, hence a file of its own): storage
// bindings of 64 KiB and 2 MiB of memory. B·H is cut into blocks of batch elements, or of heads
// within one, and the results are the uncapped ones (values and gradients against the float64
// reference, with a broadcast mask and dropout, whose hash must see each block's true b and h).
// Memory grows as B·H·T·Dh, not T²: at T = 1024 the scores alone (4 MiB) would not fit the
// budget, and the fused op's peak grows linearly with T.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runtime } from '../../src/runtime/device';
import { expectClose, gpuTensor, Rng, sizeOf, wg } from '../helpers';
import * as ref from '../reference/attention';

const BINDING = 64 * 1024;
const BUDGET = 2 * 1024 * 1024;

beforeAll(() => wg.init({ budget: { maxBindingBytes: BINDING, memoryBudgetBytes: BUDGET } }));
afterAll(() => wg.shutdown());

async function againstReference([B, H, T, Dh]: number[], blocksExpected: number): Promise<void> {
  const rng = new Rng();
  const shape = [B!, H!, T!, Dh!];
  const n = sizeOf(shape);
  expect(n * 4, 'one operand is larger than a binding').toBeGreaterThan(BINDING);
  const [q, k, v, g] = [0, 1, 2, 3].map(() => rng.array(n));
  const maskData = rng.array(B! * T!, -1, 1);
  const o = { B: B!, H: H!, Tq: T!, Tk: T!, Dh: Dh!, causal: true, dropout: 0.2, seed: 77, mask: { data: maskData, shape: [B!, 1, 1, T!] } };
  const [tq, tk, tv] = [q, k, v].map((x) => gpuTensor(x!, shape, true)) as [wg.Tensor, wg.Tensor, wg.Tensor];
  const mask = gpuTensor(maskData, [B!, 1, 1, T!]);
  let dispatches = 0;
  runtime().executor.observer = { onDispatch: (kern) => void (kern.name.startsWith('attention.forward') && dispatches++) };
  let out: wg.Tensor;
  try {
    out = wg.scaledDotProductAttention(tq, tk, tv, { causal: true, dropout: 0.2, seed: 77, mask });
  } finally {
    runtime().executor.observer = null;
  }
  expect(dispatches, 'the forward pass ran in blocks').toBe(blocksExpected);
  expectClose(await out.toArray(), ref.attention(q!, k!, v!, o), { seed: rng.seed, atol: 2e-5, what: 'output' });
  out.backward(gpuTensor(g!, shape));
  const grads = ref.attentionGrads(q!, k!, v!, g!, o);
  for (const [t, e, what] of [[tq, grads.dq, 'dq'], [tk, grads.dk, 'dk'], [tv, grads.dv, 'dv']] as const) {
    expectClose(await t.grad!.toArray(), e, { seed: rng.seed, atol: 1e-4, rtol: 1e-3, what });
  }
  for (const t of [tq, tk, tv, mask, out]) t.dispose();
}

describe('attention larger than one binding', () => {
  it('cuts B into blocks of batch elements', () => againstReference([6, 2, 65, 32], 2)); // 16.6 KiB per batch element: 3 a block
  it('cuts the heads of one batch element into blocks', () => againstReference([1, 6, 129, 32], 2)); // 96.8 KiB per batch element, 16.1 KiB per head: 3 a block

  it('one head larger than a binding is a LimitError naming it', () => {
    const t = () => wg.zeros([1, 1, 600, 32]); // 75 KiB
    expect(() => wg.scaledDotProductAttention(t(), t(), t())).toThrowError(wg.LimitError);
    expect(() => wg.scaledDotProductAttention(t(), t(), t())).toThrowError(/scaledDotProductAttention: one head .* is larger than one storage binding/);
  });
});

describe('memory grows as B·H·T·Dh, not T²', () => {
  /** Peak bytes above what was live of forward + backward at sequence length T. */
  async function peak(T: number): Promise<number> {
    const [q, k, v] = [1, 2, 3].map((seed) => wg.randn([1, 2, T, 8], { seed, requiresGrad: true })) as [wg.Tensor, wg.Tensor, wg.Tensor];
    await wg.sync();
    const before = wg.memory().liveBytes;
    wg.resetPeakMemory();
    const loss = wg.tidy(() => {
      const l = wg.sum(wg.scaledDotProductAttention(q, k, v, { causal: true }));
      l.backward();
      return l;
    });
    expect(Number.isFinite(await loss.item())).toBe(true);
    const p = wg.memory().peakBytes - before;
    for (const t of [q, k, v, loss]) t.dispose();
    return p;
  }

  it('at T = 1024 the scores alone would not fit, the fused op runs within the budget, and its peak grows linearly with T', async () => {
    const T = 1024;
    expect(2 * T * T * 4, 'the [1, 2, T, T] scores').toBeGreaterThan(BUDGET);
    const [q, k] = [1, 2].map((seed) => wg.randn([1, 2, T, 8], { seed }));
    expect(() => wg.matmul(q!, wg.transpose(k!, [0, 1, 3, 2]))).toThrowError(wg.OutOfMemoryError);
    q!.dispose();
    k!.dispose();
    const small = await peak(256);
    const large = await peak(T);
    // q, k, v, the output and its gradient, three gradients: ~9·T·Dh·H floats, plus row statistics.
    expect(large).toBeLessThan(16 * T * 8 * 2 * 4);
    expect(large / small, `peak ${large} B at T ${T}, ${small} B at T 256`).toBeLessThan(4.5); // T² would give 16
  });
});
