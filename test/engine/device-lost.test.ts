// Device loss gets a file of its own: it ends this file's device.
import { describe, expect, it } from 'vitest';
import { wg } from '../helpers';

describe('device loss', () => {
  it('a lost device turns the next call into a DeviceLostError, and init() starts afresh', async () => {
    const info = await wg.init();
    const t = wg.ones([4]);
    // Reach the device the way a user who brought their own would: destroy it under webgrad.
    const { runtime } = await import('../../src/runtime/device');
    runtime().device!.destroy();
    await new Promise((r) => setTimeout(r, 50));
    expect(() => wg.add(t, 1)).toThrowError(wg.DeviceLostError);
    expect(() => wg.add(t, 1)).toThrowError(/device was lost: it was destroyed .*Call wg\.init\(\) again/);
    const again = await wg.init();
    expect(again).not.toBe(info);
    expect(Array.from(await wg.ones([2]).add(1).toArray())).toEqual([2, 2]);
    wg.shutdown();
  });

  it('a read-back under way when the device goes is a DeviceLostError too, not the driver\'s bare rejection', async () => {
    await wg.init();
    const { runtime } = await import('../../src/runtime/device');
    const pending = wg.ones([4]).add(1);
    runtime().device!.destroy();
    await expect(pending.toArray()).rejects.toThrowError(/^the GPU device was lost: it was destroyed/);
    wg.shutdown();
  });
});
