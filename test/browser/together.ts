// Runs in the page: one data-parallel replica that joins a coordinator over WebSocket, runs the
// ring over WebRTC data channels with the other replicas (pages or Node processes), trains the
// distributed tests' MLP on its shards, and returns its step results and parameters.
import * as wg from '../../src/index';
import { encodeParams, makeTrainer, shardOf } from '../distributed/fixture';

interface Options {
  url: string;
  steps: number;
  batch: number;
  seed: number;
  minReplicas: number;
  /** Wait until the session has minReplicas members and this page's links to them are made. */
  waitLinks?: boolean;
}

async function trainTogether(o: Options) {
  // Default kernels, as the Node reference uses (no timing of candidates).
  await wg.init({ autotune: false });
  const trainer = makeTrainer(wg, o.seed);
  const log: string[] = [];
  const dp = new wg.distributed.DataParallel({
    trainer,
    transport: new wg.distributed.WebSocketTransport(o.url),
    name: 'page',
    minReplicas: o.minReplicas,
    log: (l) => log.push(l),
  });
  const results = [];
  try {
    if (o.waitLinks) {
      await dp.ready();
      const settled = () => dp.peers.length >= o.minReplicas && dp.peers.every((p) => p.link !== 'connecting');
      for (let t = 0; t < 400 && !settled(); t++) await new Promise((r) => setTimeout(r, 50));
    }
    while (dp.steps < o.steps) results.push(await dp.step(shardOf(wg, o.batch)));
  } finally {
    dp.close();
  }
  const params = await Promise.all(trainer.model.parameters().map(async (p) => (await p.toArray()) as Float32Array));
  return { results, params: encodeParams(params), log };
}

(window as unknown as { trainTogether: typeof trainTogether }).trainTogether = trainTogether;
document.title = 'ready';
