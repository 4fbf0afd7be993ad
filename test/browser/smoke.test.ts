// Headless Chromium runs a matmul and a conv2d through webgrad's browser entry on WebGPU, in a
// page served by Vite; the numbers are checked here against the float64 references.

import { describe, expect, it } from 'vitest';
import { collectErrors, useBrowser } from './harness';
import { expectClose, Rng } from '../helpers';
import { matmul as refMatmul } from '../reference/matmul';
import { conv2d as refConv2d, geometry } from '../reference/conv2d';

const session = useBrowser();

describe('browser smoke test', () => {
  it('matmul and conv2d on WebGPU in headless Chromium match the float64 reference', async () => {
    const page = await session.browser.newPage();
    const errors = collectErrors(page);
    await page.goto(`${session.url}/test/browser/smoke.html`);
    await page.waitForFunction(() => document.title === 'ready', null, { timeout: 60_000 });
    const rng = new Rng();
    const inputs = {
      a: Array.from(rng.array(17 * 33)), aShape: [17, 33],
      b: Array.from(rng.array(33 * 9)), bShape: [33, 9],
      x: Array.from(rng.array(2 * 3 * 9 * 9)), xShape: [2, 3, 9, 9],
      w: Array.from(rng.array(4 * 3 * 3 * 3)), wShape: [4, 3, 3, 3],
    };
    const out = await page.evaluate((inp) => (window as unknown as { runSmoke(i: typeof inp): Promise<{
      adapter: { isFallbackAdapter: boolean };
      matmul: { shape: number[]; data: number[] };
      conv: { shape: number[]; data: number[] };
    }> }).runSmoke(inp), inputs);
    const mm = refMatmul(inputs.a, inputs.aShape, inputs.b, inputs.bShape);
    expect(out.matmul.shape).toEqual(mm.shape);
    expectClose(out.matmul.data, mm.data, { seed: rng.seed, what: 'matmul in the browser' });
    const g = geometry(inputs.xShape, inputs.wShape, { padding: 1 });
    expect(out.conv.shape).toEqual([g.N, g.O, g.OH, g.OW]);
    expectClose(out.conv.data, refConv2d(inputs.x, inputs.w, null, g), { seed: rng.seed, what: 'conv2d in the browser' });
    expect(errors, errors.join("\n")).toEqual([]);
    await page.close();
  });
});
