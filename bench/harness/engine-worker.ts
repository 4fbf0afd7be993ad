// The Web Worker side of worker-engine.ts: loads one CPU engine and runs its work items on request.

import type { Engine, Prepared } from './engine';
import { workData, type WasmEngineName, type Work } from './workloads';

export type Request =
  | { id: number; type: 'load'; engine: WasmEngineName }
  | { id: number; type: 'prepare'; work: Work }
  | { id: number; type: 'run'; handle: number }
  | { id: number; type: 'dispose'; handle: number };

export interface Reply {
  id: number;
  error?: string;
  handle?: number;
  /** load: how the engine runs. */
  about?: string;
  /** run: the result's check value and the run's time in this worker. */
  value?: number;
  ms?: number;
}

const LOADERS: Record<WasmEngineName, () => Promise<Engine>> = {
  'webgrad-wasm': async () => (await import('./webgrad')).createEngine('wasm'),
  'jax-js-wasm': async () => (await import('./jax')).createEngine('wasm'),
  'tfjs-wasm': async () => (await import('./tfjs')).createEngine('wasm', '/node_modules/@tensorflow/tfjs-backend-wasm/dist/'),
};

let engine: Engine | null = null;
const prepared = new Map<number, Prepared>();
let nextHandle = 0;

async function handle(r: Request): Promise<Omit<Reply, 'id'>> {
  switch (r.type) {
    case 'load':
      engine = await LOADERS[r.engine]();
      return { about: engine.about };
    case 'prepare': {
      const p = await engine!.prepare(r.work, workData(r.work));
      prepared.set(nextHandle, p);
      return { handle: nextHandle++ };
    }
    case 'run': {
      const t0 = performance.now();
      const value = await prepared.get(r.handle)!.run();
      return { value, ms: performance.now() - t0 };
    }
    case 'dispose':
      prepared.get(r.handle)?.dispose();
      prepared.delete(r.handle);
      return {};
  }
}

self.onmessage = async (e: MessageEvent<Request>) => {
  try {
    self.postMessage({ id: e.data.id, ...(await handle(e.data)) });
  } catch (err) {
    self.postMessage({ id: e.data.id, error: err instanceof Error ? err.message : String(err) });
  }
};
