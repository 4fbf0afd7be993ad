// What links do to training together: `node scripts/run.mjs bench/distributed.ts [--replicas 1,2,4]
// [--rtt 0,20,80] [--mbit 1000,50,10] [--modes sync,every8,every8-f16] [--batch 128] [--steps 8]
// [--hidden 256]`. For each replica count and sync mode it starts one session in this process: a
// hub behind MessagePorts and replicas that each reach it, and each other (WebRTC data channels on
// loopback, node-datachannel), through the network model (src/distributed/network-model.ts) at
// every round-trip time and bandwidth given. At each network it runs `steps` steps (one round of
// `every: 8`) of the MNIST MLP (784-hidden-10, SGD) on synthetic batches and prints samples/s, the
// bytes each replica sent per step (the ring's and every control message) and the wall time.
// A first round at 0 ms and no bandwidth limit compiles the kernels and opens the links.
//
// The replicas share this machine's one GPU (on a machine without one, SwiftShader on the CPU):
// their computing is serialised, so samples/s do not grow with replicas here; what the table shows
// is what the links add to each step, and how much less the low-communication modes send.

import { parseArgs } from 'node:util';
import * as wg from '../src/node';

interface Mode {
  name: string;
  opts: Partial<wg.distributed.DataParallelOptions>;
}

const MODES: Record<string, Mode> = {
  sync: { name: 'synchronous', opts: {} },
  every8: { name: 'every: 8', opts: { sync: { every: 8, outer: { lr: 0.8, momentum: 0.5, nesterov: true } } } },
  'every8-f16': { name: 'every: 8 + f16', opts: { sync: { every: 8, outer: { lr: 0.8, momentum: 0.5, nesterov: true } }, wire: 'f16' } },
};

export async function main(argv: string[]): Promise<void> {
  const { values: a } = parseArgs({
    args: argv,
    options: {
      replicas: { type: 'string', default: '1,2,4' },
      rtt: { type: 'string', default: '0,20,80' },
      mbit: { type: 'string', default: '1000,50,10' },
      modes: { type: 'string', default: 'sync,every8,every8-f16' },
      batch: { type: 'string', default: '128' },
      steps: { type: 'string', default: '8' },
      hidden: { type: 'string', default: '256' },
    },
  });
  const list = (s: string) => s.split(',').map(Number);
  const batch = Number(a.batch);
  const steps = Number(a.steps);
  const hidden = Number(a.hidden);
  const modes = a.modes!.split(',').map((m) => {
    if (!MODES[m]) throw new Error(`--modes: unknown mode ${m}; expected ${Object.keys(MODES).join(', ')}`);
    return MODES[m]!;
  });
  await wg.init({ autotune: false });
  const started = performance.now();
  console.log(`MNIST MLP (784-${hidden}-10, SGD lr 0.05 momentum 0.9), global batch ${batch}, ${steps} steps per network; WebRTC links on loopback under the network model`);
  console.log('| replicas | sync | RTT | bandwidth | samples/s | ms per step | KiB sent per replica per step | wall s |');
  console.log('| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const n of list(a.replicas!)) {
    for (const mode of modes) {
      const net: wg.distributed.NetworkModel = { rttMs: 0 };
      const s = await session(n, hidden, batch, net, mode);
      try {
        await s.run(8); // kernels compiled, links open, the session's state sent
        for (const rtt of list(a.rtt!)) {
          for (const mbit of list(a.mbit!)) {
            net.rttMs = rtt;
            net.bitsPerSecond = mbit * 1e6;
            const t0 = performance.now();
            const results = await s.run(steps);
            const wall = (performance.now() - t0) / 1000;
            const sent = results.reduce((k, r) => k + r.bytesSent, 0) / results.length;
            const bandwidth = mbit >= 1000 ? `${mbit / 1000} Gbit/s` : `${mbit} Mbit/s`;
            console.log(
              `| ${n} | ${mode.name} | ${rtt} ms | ${bandwidth} | ${((steps * batch) / wall).toFixed(0)} | ${((wall * 1000) / steps).toFixed(0)} | ${(sent / 1024).toFixed(1)} | ${wall.toFixed(1)} |`,
            );
          }
        }
      } finally {
        s.close();
      }
    }
  }
  console.log(`(${((performance.now() - started) / 1000).toFixed(0)} s in all)`);
  wg.shutdown();
}

/** A session of n replicas whose links to the hub and to each other follow `net`. */
async function session(n: number, hidden: number, batch: number, net: wg.distributed.NetworkModel, mode: Mode) {
  const D = wg.distributed;
  const hub = new D.Hub();
  const x = wg.rand([batch, 1, 28, 28], { seed: 2 });
  const y = wg.tensor(Int32Array.from({ length: batch }, (_, i) => i % 10), [batch], { dtype: 'int32' });
  const replicas = Array.from({ length: n }, (_, i) => {
    wg.manualSeed(1);
    const model = new wg.nn.Sequential(new wg.nn.Flatten(), new wg.nn.Linear(784, hidden), new wg.nn.ReLU(), new wg.nn.Linear(hidden, 10));
    const trainer = new wg.Trainer({ model, optimizer: new wg.optim.SGD(model.parameters(), { lr: 0.05, momentum: 0.9 }), loss: 'cross-entropy' });
    const { port1, port2 } = new MessageChannel();
    D.servePort(hub, port1);
    const transport = D.modelTransport(new D.MessagePortTransport(port2), net);
    const links = D.modelConnector(new D.WebRTCConnector(), net);
    return { trainer, dp: new D.DataParallel({ trainer, transport, links, minReplicas: n, name: `r${i}`, ...mode.opts }) };
  });
  for (const r of replicas) await r.dp.ready();
  // Wait for the links (a pair that does not connect is relayed, which the table would show as slower).
  for (let t = 0; t < 400 && !replicas.every((r) => r.dp.peers.length === n && r.dp.peers.every((p) => p.link !== 'connecting')); t++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    async run(k: number): Promise<wg.distributed.DataParallelStepResult[]> {
      const out: wg.distributed.DataParallelStepResult[] = [];
      for (let i = 0; i < k; i++) {
        out.push(
          ...(await Promise.all(
            replicas.map((r) =>
              r.dp.step(({ rank, worldSize }) => {
                const { start, count } = D.shardRange(batch, rank, worldSize);
                return { x: wg.narrow(x, 0, start, count), y: wg.narrow(y, 0, start, count) };
              }),
            ),
          )),
        );
      }
      return out;
    },
    close() {
      for (const r of replicas) {
        r.dp.close();
        r.trainer.optimizer.dispose();
        r.trainer.model.dispose();
      }
      hub.close();
      x.dispose();
      y.dispose();
    },
  };
}
