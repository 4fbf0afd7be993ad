// Runs in the page: one data-parallel replica that joins a coordinator over WebSocket, trains the
// distributed tests' MLP on its shards, and returns its step results and parameters.
import * as wg from '../../src/index';
import { encodeParams, makeTrainer, shardOf } from '../distributed/fixture';

async function trainTogether(o: { url: string; steps: number; batch: number; seed: number; minReplicas: number }) {
  // Default kernels, as the Node reference uses (no timing of candidates).
  await wg.init({ autotune: false });
  const trainer = makeTrainer(wg, o.seed);
  const dp = new wg.distributed.DataParallel({ trainer, transport: new wg.distributed.WebSocketTransport(o.url), name: 'page', minReplicas: o.minReplicas });
  const results = [];
  try {
    while (dp.steps < o.steps) results.push(await dp.step(shardOf(wg, o.batch)));
  } finally {
    dp.close();
  }
  const params = await Promise.all(trainer.model.parameters().map(async (p) => (await p.toArray()) as Float32Array));
  return { results, params: encodeParams(params) };
}

(window as unknown as { trainTogether: typeof trainTogether }).trainTogether = trainTogether;
document.title = 'ready';
