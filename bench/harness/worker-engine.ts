// An engine that runs in a Web Worker of its own (engine-worker.ts), seen from the page as any
// other engine. The CPU engines run so: TF.js and jax-js keep one global backend per JavaScript
// context, and so does webgrad (one device), so each needs a context apart from the page's WebGPU
// engines; and a Worker may block while its threads work. The worker builds each work item's
// data itself (workData() is seeded: the same numbers as the page's), and times each run itself,
// so the figures hold no message round trip.

import type { Engine, Prepared } from './engine';
import type { Reply, Request } from './engine-worker';
import type { WasmEngineName, Work } from './workloads';

type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

export async function workerEngine(name: WasmEngineName): Promise<Engine> {
  const worker = new Worker(new URL('./engine-worker.ts', import.meta.url), { type: 'module', name: `bench ${name}` });
  const waiting = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  let next = 0;
  worker.onmessage = (e: MessageEvent<Reply>) => {
    const w = waiting.get(e.data.id);
    waiting.delete(e.data.id);
    if (e.data.error !== undefined) w?.reject(new Error(e.data.error));
    else w?.resolve(e.data);
  };
  worker.onerror = (e) => {
    for (const w of waiting.values()) w.reject(new Error(`the ${name} worker failed: ${e.message}`));
    waiting.clear();
  };
  const ask = (r: WithoutId<Request>): Promise<Reply> =>
    new Promise((resolve, reject) => {
      const id = next++;
      waiting.set(id, { resolve, reject });
      worker.postMessage({ ...r, id } as Request);
    });
  const { about } = await ask({ type: 'load', engine: name });
  return {
    name,
    about: `${about ? `${about}, ` : ''}in a Web Worker`,
    async prepare(work: Work): Promise<Prepared> {
      const { handle } = await ask({ type: 'prepare', work });
      let last: number | undefined;
      return {
        async run() {
          const r = await ask({ type: 'run', handle: handle! });
          last = r.ms;
          return r.value!;
        },
        measuredMs: () => last,
        dispose: () => void ask({ type: 'dispose', handle: handle! }).catch(() => undefined),
      };
    },
  };
}
