// Low-communication training pays: four replicas (in this process, over MessagePorts) train an MLP
// on the MNIST digits for 64 global batches of 256 (two epochs), synchronously and with DiLoCo
// rounds of 8 local steps (outer Nesterov momentum), with f32 and with f16 deltas. At the same
// number of samples DiLoCo must reach the held-out accuracy of synchronous training (within 0.5
// points) while sending 8× fewer bytes, and 16× fewer with f16 deltas.
// Bytes are counted at each replica's transport (the ring goes through the hub here, so that one
// place sees everything; over WebRTC the same frames go over the peer links): every frame sent,
// less the state sent once to the replicas that join (the same in every mode), and, of the ring's
// frames, the values alone. The values are exactly 8× (16×) fewer. A sync costs the same messages
// in every mode, so the totals are 8× apart too, but for the digits of the numbers in the JSON
// headers (a round's shard is 512 samples, a step's 64): 7.9998×. f16 halves the values but not
// the headers and control messages of a sync, which leaves its total 0.2% short of 16×.
// Measured with data seeds 7, 11, 13 (held-out accuracy, synchronous → DiLoCo): 88.65 → 89.50,
// 87.65 → 87.50, 87.50 → 89.10; the test runs seed 7 (every run is deterministic).

import { describe, expect, it } from 'vitest';
import { decodeFrame } from '../../src/distributed/frame';
import { portTo } from './session';
import { gpu, wg } from '../helpers';

const STEPS = 64;
const BATCH = 256;
const REPLICAS = 4;
const OUTER = { lr: 0.8, momentum: 0.5, nesterov: true };

interface Run {
  accuracy: number;
  /** Every frame the replicas sent, less the state sent to joiners. */
  bytes: number;
  /** The values in the ring's frames. */
  values: number;
  syncs: number;
}

async function train(batches: wg.data.CpuBatch[], test: wg.data.Dataset, opts: Partial<wg.distributed.DataParallelOptions>): Promise<Run> {
  const hub = new wg.distributed.Hub();
  const count = { bytes: 0, values: 0 };
  const replicas = Array.from({ length: REPLICAS }, () => {
    wg.manualSeed(1);
    const model = new wg.nn.Sequential(new wg.nn.Flatten(), new wg.nn.Linear(784, 64), new wg.nn.ReLU(), new wg.nn.Linear(64, 10));
    const trainer = new wg.Trainer({ model, optimizer: new wg.optim.SGD(model.parameters(), { lr: 0.05, momentum: 0.9 }), loss: 'cross-entropy' });
    const transport = portTo(hub);
    const send = transport.send.bind(transport);
    transport.send = (frame) => {
      const f = decodeFrame(frame);
      if (f.header.type !== 'sync') count.bytes += frame.byteLength;
      if (f.header.type === 'grad') count.values += f.payload.byteLength;
      send(frame);
    };
    return { trainer, dp: new wg.distributed.DataParallel({ trainer, transport, minReplicas: REPLICAS, links: 'relay', ...opts }) };
  });
  let syncs = 0;
  try {
    while (replicas[0]!.dp.steps < STEPS) {
      const results = await Promise.all(
        replicas.map((r) =>
          r.dp.step(({ step, rank, worldSize }) => {
            const b = batches[step]!;
            const { start, count: n } = wg.distributed.shardRange(b.size, rank, worldSize);
            return { x: wg.tensor(b.x.subarray(start * 784, (start + n) * 784), [n, 1, 28, 28]), y: wg.tensor(b.y.subarray(start, start + n), [n], { dtype: 'int32' }) };
          }),
        ),
      );
      if (results[0]!.synced) syncs++;
    }
    const { accuracy } = await replicas[0]!.trainer.evaluate(test);
    return { accuracy, ...count, syncs };
  } finally {
    for (const r of replicas) {
      r.dp.close();
      r.trainer.optimizer.dispose();
      r.trainer.model.dispose();
    }
    hub.close();
  }
}

describe('DiLoCo on MNIST', { timeout: 600_000 }, () => {
  it('4 replicas, rounds of 8 local steps: the accuracy of synchronous training at the same samples, with 8× fewer bytes (16× with f16 deltas)', async () => {
    await gpu({ autotune: false });
    const { train: data, test } = await wg.data.mnist();
    const loader = new wg.data.DataLoader(data, { batchSize: BATCH, shuffle: true, seed: 7 });
    const batches: wg.data.CpuBatch[] = [];
    while (batches.length < STEPS) batches.push(...(loader.cpuBatches() as Iterable<wg.data.CpuBatch>));
    batches.length = STEPS;

    const sync = await train(batches, test, {});
    const rounds = await train(batches, test, { sync: { every: 8, outer: OUTER } });
    const half = await train(batches, test, { sync: { every: 8, outer: OUTER }, wire: 'f16' });
    const story = JSON.stringify({ sync, rounds, half });
    expect([sync.syncs, rounds.syncs, half.syncs]).toEqual([64, 8, 8]);
    expect(sync.accuracy, story).toBeGreaterThan(0.85);
    expect(rounds.accuracy, story).toBeGreaterThanOrEqual(sync.accuracy - 0.005);
    expect(half.accuracy, story).toBeGreaterThanOrEqual(sync.accuracy - 0.005);
    expect(sync.values / rounds.values, story).toBeGreaterThanOrEqual(8);
    expect(sync.bytes / rounds.bytes, story).toBeGreaterThanOrEqual(7.99);
    expect(sync.values / half.values, story).toBeGreaterThanOrEqual(16);
    expect(sync.bytes / half.bytes, story).toBeGreaterThanOrEqual(15.9);
  });
});
