// A small budget (a simulated small GPU) gets a file of its own: budgets are fixed at init.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { wg } from '../helpers';

beforeAll(() => wg.init({ budget: { memoryBudgetBytes: 1 << 20 } }));
afterAll(() => wg.shutdown());

describe('budget caps', () => {
  it('reports the capped limits', async () => {
    const info = await wg.init();
    expect(info.limits.memoryBudgetBytes).toBe(1 << 20);
  });

  it('an allocation past the memory budget is an OutOfMemoryError naming the sizes', () => {
    const a = wg.zeros([128 * 1024]); // 512 KiB
    expect(() => wg.zeros([160 * 1024])).toThrowError(wg.OutOfMemoryError);
    expect(() => wg.zeros([160 * 1024])).toThrowError(/needs 640\.0 KiB but 512\.0 KiB of the memory budget \(1\.0 MiB\)/);
    a.dispose();
  });

  it('pooled buffers are freed to make room within the budget', () => {
    const a = wg.zeros([100 * 1024]); // 400 KiB
    a.dispose();
    const b = wg.zeros([160 * 1024]); // 640 KiB: fits only if a's pooled buffer is released
    expect(wg.memory().liveBytes + wg.memory().pooledBytes).toBeLessThanOrEqual(1 << 20);
    b.dispose();
  });
});
