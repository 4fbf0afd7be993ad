// Headless Chromium: automatic checkpoints go to IndexedDB, and a Trainer whose device is
// destroyed recovers on a new one with its parameters bit for bit (test/browser/recovery.ts).

import { describe, expect, it } from 'vitest';
import { collectErrors, useBrowser } from './harness';

const session = useBrowser();

describe('device loss in the browser', () => {
  it('checkpoints in IndexedDB; after device.destroy() the step says so and recover() continues exactly', async () => {
    const page = await session.browser.newPage();
    const errors = collectErrors(page);
    await page.goto(`${session.url}/test/browser/recovery.html`);
    await page.waitForFunction(() => document.title === 'ready', null, { timeout: 60_000 });
    const r = await page.evaluate(() => (window as unknown as { runRecovery(): Promise<{
      where: string;
      storedStep: number | null;
      error: { name: string; message: string };
      at: { step: number };
      steps: number;
      autotuneAfterRecovery: boolean | undefined;
      restoredIsStep2: boolean;
      continuedIsStep3: boolean;
    }> }).runRecovery());
    expect(r.where).toBe('IndexedDB webgrad/checkpoints/browser-recovery-test');
    expect(r.storedStep).toBe(2);
    expect(r.error.name).toBe('DeviceLostError');
    expect(r.error.message).toMatch(/^Trainer\.step \(step 4\): the GPU device was lost: it was destroyed/);
    expect(r.error.message).toContain('The last automatic checkpoint is of step 2 (IndexedDB webgrad/checkpoints/browser-recovery-test)');
    expect(r.at).toEqual({ step: 2 });
    expect(r.steps).toBe(3);
    expect(r.autotuneAfterRecovery).toBe(false); // the new device got the lost one's init() options
    expect(r.restoredIsStep2).toBe(true);
    expect(r.continuedIsStep3).toBe(true);
    // Chromium logs the destroyed device's loss as a warning, not an error.
    expect(errors, errors.join('\n')).toEqual([]);
    await page.close();
  });
});
