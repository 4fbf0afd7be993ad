// What a lost GPU device means for the user. A device is lost when the driver resets, the browser
// reclaims the GPU (a tab in the background too long, too many devices), or device.destroy() is
// called. Everything on it is gone: its buffers, and so every tensor's data.

import { DeviceLostError } from './errors';

/** How long a failed read waits for device.lost to settle before taking the failure as something else. */
const LOST_SETTLE_MS = 1000;

/** The DeviceLostError for `info`: what happened, and how to continue. */
export function deviceLostError(info: GPUDeviceLostInfo): DeviceLostError {
  const why =
    info.reason === 'destroyed'
      ? 'it was destroyed (device.destroy())'
      : 'the driver reset or the browser reclaimed the GPU (e.g. a tab in the background for long)';
  return new DeviceLostError(
    `the GPU device was lost: ${why}${info.message ? ` — "${info.message}"` : ''}. Every tensor on it is gone. ` +
      'Call wg.init() again and rebuild the model, or call trainer.recover() to continue from its last automatic checkpoint.',
  );
}

/**
 * After a GPU call failed (a read-back whose mapAsync rejected): the DeviceLostError if the device
 * is lost or being lost, else null. Dawn rejects the read before device.lost settles, so wait a little.
 */
export async function lostDeviceError(device: GPUDevice): Promise<DeviceLostError | null> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), LOST_SETTLE_MS)));
  try {
    const info = await Promise.race([device.lost, timeout]);
    return info ? deviceLostError(info) : null;
  } finally {
    clearTimeout(timer);
  }
}
