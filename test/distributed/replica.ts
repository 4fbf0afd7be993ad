// One replica in its own process, for the distributed tests and measurements:
//   node scripts/run.mjs test/distributed/replica.ts --url ws://… --steps 5 --batch 96 [--seed S]
//        [--min-replicas N] [--out params.json] [--die-at-step K | --hang-at-step K --hang-ms MS]
// It prints one JSON line per step and writes its final parameters to --out. --die-at-step kills
// the process with SIGKILL right after it sent its first gradient message of step K (the others
// then hold part of its data); --hang-at-step blocks its event loop there instead (no heartbeats),
// until the coordinator times it out.

import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import * as wg from '../../src/node';
import { decodeFrame } from '../../src/distributed/frame';
import type { Replica } from '../../src/distributed/replica';
import type { Transport } from '../../src/distributed/transport';
import { batchSlice, encodeParams, makeTrainer, shardOf } from './fixture';

export async function main(argv: string[]): Promise<void> {
  const { values: a } = parseArgs({
    args: argv,
    options: {
      url: { type: 'string' },
      steps: { type: 'string', default: '5' },
      batch: { type: 'string', default: '96' },
      seed: { type: 'string', default: '1' },
      name: { type: 'string', default: 'replica' },
      'min-replicas': { type: 'string', default: '1' },
      out: { type: 'string' },
      'die-at-step': { type: 'string' },
      'hang-at-step': { type: 'string' },
      'hang-ms': { type: 'string', default: '10000' },
    },
  });
  // On SIGUSR2 (the tests send it to a replica that overstays), print what this replica waits
  // with: its place in the protocol and the messages it holds.
  let dp: wg.distributed.DataParallel | null = null;
  process.on('SIGUSR2', () => console.error(`state: ${dp ? JSON.stringify(protocolState(dp)) : 'not in a session yet'}`));
  await wg.init();
  const trainer = makeTrainer(wg, Number(a.seed));
  // Compile the kernels before joining: the first step builds every pipeline synchronously, which
  // would keep heartbeats from going out for seconds (the tests run with a short timeout).
  const warm = batchSlice(wg, 0, Number(a.batch), 0, 32);
  await trainer.computeGradients(warm.x, warm.y);
  trainer.optimizer.zeroGrad();
  warm.x.dispose();
  warm.y.dispose();
  const transport = misbehave(new wg.distributed.WebSocketTransport(a.url!), a);
  // The protocol's decisions go to stderr, where the tests show them when a session goes wrong.
  const log = (line: string) => console.error(`[${(performance.now() / 1000).toFixed(2)} s] ${line}`);
  dp = new wg.distributed.DataParallel({ trainer, transport, name: a.name, minReplicas: Number(a['min-replicas']), log });
  const steps = Number(a.steps);
  const batch = Number(a.batch);
  try {
    while (dp.steps < steps) {
      const r = await dp.step(shardOf(wg, batch));
      console.log(JSON.stringify({ ...r, seed: Number(a.seed) }));
    }
    if (a.out) {
      const params = await Promise.all(trainer.model.parameters().map(async (p) => (await p.toArray()) as Float32Array));
      writeFileSync(a.out, JSON.stringify(encodeParams(params)));
    }
  } catch (e) {
    console.error(`${(e as Error).name}: ${(e as Error).message}`);
    process.exitCode = 3;
  } finally {
    dp.close();
    wg.shutdown();
  }
}

/** The transport, made to die or hang after the first gradient message of a given step. */
function misbehave(t: Transport, a: { 'die-at-step'?: string; 'hang-at-step'?: string; 'hang-ms'?: string }): Transport {
  const die = a['die-at-step'] === undefined ? -1 : Number(a['die-at-step']);
  let hang = a['hang-at-step'] === undefined ? -1 : Number(a['hang-at-step']);
  if (die < 0 && hang < 0) return t;
  const send = t.send.bind(t);
  let dead = false;
  t.send = (frame) => {
    if (dead) return;
    send(frame);
    const h = decodeFrame(frame).header;
    if (h.type !== 'grad') return;
    if (h.step === die) {
      dead = true;
      setTimeout(() => process.kill(process.pid, 'SIGKILL'), 200);
    } else if (h.step === hang) {
      hang = -1;
      setTimeout(() => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Number(a['hang-ms'])), 0);
    }
  };
  return t;
}

/** DataParallel's protocol state, read from its private fields (for failure reports only). */
function protocolState(dp: wg.distributed.DataParallel): Record<string, unknown> {
  const r = (dp as unknown as { replica: Replica }).replica;
  return {
    id: r.id, steps: r.steps, synced: r.synced, handled: r.handled, latestBegin: r.view.latestBegin, view: r.view.members,
    readies: r.view.describeReadies(), inbox: r.mailbox.keys(), waiting: r.link.waiting, failure: r.link.failure?.message ?? null,
  };
}
