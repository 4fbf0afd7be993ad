// One replica in its own process, for the distributed tests and measurements:
//   node scripts/run.mjs test/distributed/replica.ts --url ws://… --steps 5 --batch 96 [--seed S]
//        [--min-replicas N] [--out params.json] [--links webrtc|relay] [--wait-links] [--die-at-step K | --hang-at-step K --hang-ms MS]
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
      links: { type: 'string', default: 'webrtc' },
      'wait-links': { type: 'boolean', default: false },
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
  const relay = a.links === 'relay';
  const { transport, links } = misbehave(new wg.distributed.WebSocketTransport(a.url!), new wg.distributed.WebRTCConnector(), a);
  // The protocol's decisions go to stderr, where the tests show them when a session goes wrong.
  const log = (line: string) => console.error(`[${(performance.now() / 1000).toFixed(2)} s] ${line}`);
  dp = new wg.distributed.DataParallel({ trainer, transport, name: a.name, minReplicas: Number(a['min-replicas']), log, links: relay ? 'relay' : links });
  const steps = Number(a.steps);
  const batch = Number(a.batch);
  if (a['wait-links']) {
    // Until the session has its replicas and this one's links to them are made (or given up).
    await dp.ready();
    const settled = () => dp!.peers.length >= Number(a['min-replicas']) && dp!.peers.every((p) => p.link !== 'connecting');
    for (let t = 0; t < 400 && !settled(); t++) await new Promise((r) => setTimeout(r, 50));
  }
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

/**
 * The transport and peer links, made to die or hang after the first gradient message of a given
 * step (over either: the ring runs over the peer links once they are open).
 */
function misbehave(t: Transport, links: wg.distributed.PeerConnector, a: { 'die-at-step'?: string; 'hang-at-step'?: string; 'hang-ms'?: string }) {
  const die = a['die-at-step'] === undefined ? -1 : Number(a['die-at-step']);
  let hang = a['hang-at-step'] === undefined ? -1 : Number(a['hang-at-step']);
  if (die < 0 && hang < 0) return { transport: t, links };
  let dead = false;
  /** Send `frame` with `send`, then die or hang if it is the first gradient message of that step. */
  const sent = (frame: Uint8Array, send: (f: Uint8Array) => void) => {
    if (dead) return;
    const h = decodeFrame(frame).header; // (before sending: a transport may take the frame's buffer)
    send(frame);
    if (h.type !== 'grad') return;
    if (h.step === die) {
      dead = true;
      setTimeout(() => process.kill(process.pid, 'SIGKILL'), 200);
    } else if (h.step === hang) {
      hang = -1;
      setTimeout(() => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Number(a['hang-ms'])), 0);
    }
  };
  const send = t.send.bind(t);
  t.send = (frame) => sent(frame, send);
  return {
    transport: t,
    links: {
      description: links.description,
      connect(peer, offerer, signal) {
        const c = links.connect(peer, offerer, signal);
        return {
          signal: (x) => c.signal(x),
          close: () => c.close(),
          opened: c.opened.then((link) => {
            const linkSend = link.send.bind(link);
            link.send = (frame) => sent(frame, linkSend);
            return link;
          }),
        };
      },
    } satisfies wg.distributed.PeerConnector,
  };
}

/** DataParallel's protocol state, read from its private fields (for failure reports only). */
function protocolState(dp: wg.distributed.DataParallel): Record<string, unknown> {
  const r = (dp as unknown as { replica: Replica }).replica;
  return {
    id: r.id, steps: r.steps, synced: r.synced, handled: r.handled, latestBegin: r.view.latestBegin, view: r.view.members,
    readies: r.view.describeReadies(), inbox: r.mailbox.keys(), waiting: r.link.waiting, failure: r.link.failure?.message ?? null,
  };
}
