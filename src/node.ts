// The Node.js entry: the same API as the browser entry, with WebGPU from Dawn (the `webgpu`
// package). On a machine without a GPU driver, Dawn finds no adapter; then webgrad points Vulkan
// at the SwiftShader software driver that Chromium ships, if it is installed.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { setDefaultBackend } from './runtime/device';
import { setGPUProvider, unavailableMessage } from './runtime/gpu-provider';
import { WebGPUUnavailableError } from './runtime/errors';
import { setTuningStore } from './kernels/tuning/tuning-store';
import { setCheckpointStoreFactory } from './io/checkpoint-store';
import { fileCheckpointStores } from './io/file-checkpoint-store';

export * from './index';
// The browser's wg.distributed plus the coordinator server (and ws as the WebSocket before Node 22).
export * as distributed from './distributed/node';

const SWIFTSHADER_ICDS = [
  '/usr/lib/chromium/vk_swiftshader_icd.json',
  '/usr/lib/chromium-browser/vk_swiftshader_icd.json',
  '/usr/lib64/chromium-browser/vk_swiftshader_icd.json',
];

let dawn: Promise<GPU> | null = null;

// One Dawn instance for the life of the process: shutdown() destroys the device (which lets
// Node exit) but keeps the instance, since tearing instances down and making new ones in one
// process has crashed Dawn.
setGPUProvider({ get: () => (dawn ??= createDawnGPU()) });

// Autotuning results: $WEBGRAD_TUNING_FILE, else ~/.cache/webgrad/tuning.json. WEBGRAD_AUTOTUNE=0
// turns tuning off unless init() says otherwise.
const tuningFile = process.env.WEBGRAD_TUNING_FILE ?? join(homedir(), '.cache', 'webgrad', 'tuning.json');
setTuningStore(
  {
    load() {
      try {
        return existsSync(tuningFile) ? JSON.parse(readFileSync(tuningFile, 'utf8')) : {};
      } catch {
        return {};
      }
    },
    save(all) {
      try {
        mkdirSync(dirname(tuningFile), { recursive: true });
        writeFileSync(tuningFile, JSON.stringify(all, null, 1));
      } catch {
        // A read-only home: tuning still works for this process.
      }
    },
  },
  process.env.WEBGRAD_AUTOTUNE !== '0',
);

// $WEBGRAD_BACKEND ('auto', 'webgpu' or 'wasm'): the backend init() takes when its options name none.
if (process.env.WEBGRAD_BACKEND) setDefaultBackend(process.env.WEBGRAD_BACKEND, `$WEBGRAD_BACKEND=${process.env.WEBGRAD_BACKEND}`);

// A Trainer's automatic checkpoints go to files (a name is a path).
setCheckpointStoreFactory(fileCheckpointStores);

async function createDawnGPU(): Promise<GPU> {
  const env = process.env;
  env.XDG_RUNTIME_DIR ??= '/tmp';
  let mod: typeof import('webgpu');
  try {
    mod = await import('webgpu');
  } catch (e) {
    throw new WebGPUUnavailableError(
      unavailableMessage(`the Dawn package could not be loaded (${(e as Error).message}); install it with \`npm install webgpu\``),
    );
  }
  Object.assign(globalThis, mod.globals);
  let gpu = mod.create([]) as GPU;
  if (!(await gpu.requestAdapter()) && !env.VK_ICD_FILENAMES && !env.VK_DRIVER_FILES) {
    const icd = SWIFTSHADER_ICDS.find((p) => existsSync(p));
    if (icd) {
      env.VK_ICD_FILENAMES = icd;
      gpu = mod.create([]) as GPU;
    }
  }
  return gpu;
}
