// Data-parallel throughput on this machine: `node scripts/run.mjs bench/distributed.ts
// [--replicas 1,2,3] [--steps 20] [--batch 256]`. For each count it starts a coordinator, runs that
// many replica processes (this file with --replica) training the MNIST MLP on synthetic batches,
// and reports global samples/s, the time per step spent communicating and waiting, and the bytes
// each replica sent and received per step. The first steps (kernel compilation) are left out.

import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import * as wg from '../src/node';
import { mnistMLP } from '../src/models';

const WARM_UP = 3;

export async function main(argv: string[]): Promise<void> {
  const { values: a } = parseArgs({
    args: argv,
    options: {
      replicas: { type: 'string', default: '1,2,3' },
      steps: { type: 'string', default: '20' },
      batch: { type: 'string', default: '256' },
      replica: { type: 'string' },
      min: { type: 'string', default: '1' },
    },
  });
  const steps = Number(a.steps);
  const batch = Number(a.batch);
  if (a.replica) return replica(a.replica, steps, batch, Number(a.min));
  console.log(`MNIST MLP (784-256-10), global batch ${batch}, ${steps} steps (the first ${WARM_UP} left out), SGD; replicas are Node processes on this machine`);
  console.log('replicas  samples/s  step ms  compute ms  comm+wait ms  KiB sent+received per replica per step');
  for (const n of a.replicas!.split(',').map(Number)) {
    const c = await wg.distributed.startCoordinator();
    const runs = await Promise.all(Array.from({ length: n }, () => child(c.url, steps, batch, n)));
    await c.close();
    const rows = runs.flat().filter((r) => r.step >= WARM_UP);
    const mean = (f: (r: wg.distributed.DataParallelStepResult) => number) => rows.reduce((s, r) => s + f(r), 0) / rows.length;
    const stepMs = mean((r) => r.ms);
    console.log(
      `${String(n).padStart(8)}  ${((batch * 1000) / stepMs).toFixed(0).padStart(9)}  ${stepMs.toFixed(1).padStart(7)}  ` +
        `${mean((r) => r.computeMs).toFixed(1).padStart(10)}  ${mean((r) => r.communicationMs).toFixed(1).padStart(12)}  ` +
        `${(mean((r) => r.bytesSent + r.bytesReceived) / 1024).toFixed(0).padStart(8)}`,
    );
  }
}

function child(url: string, steps: number, batch: number, n: number): Promise<wg.distributed.DataParallelStepResult[]> {
  const p = spawn(process.execPath, ['scripts/run.mjs', 'bench/distributed.ts', '--replica', url, '--steps', String(steps), '--batch', String(batch), '--min', String(n)], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, WEBGRAD_AUTOTUNE: '0' },
  });
  let out = '';
  p.stdout!.on('data', (d) => (out += d));
  return new Promise((resolve, reject) =>
    p.on('exit', (code) => (code === 0 ? resolve(out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l))) : reject(new Error(`a replica exited with ${code}`)))),
  );
}

async function replica(url: string, steps: number, batch: number, min: number): Promise<void> {
  await wg.init();
  wg.manualSeed(1);
  const model = mnistMLP();
  const trainer = new wg.Trainer({ model, optimizer: new wg.optim.SGD(model.parameters(), { lr: 0.05, momentum: 0.9 }), loss: 'cross-entropy' });
  const x = wg.rand([batch, 1, 28, 28], { seed: 2 });
  const y = wg.tensor(Int32Array.from({ length: batch }, (_, i) => i % 10), [batch], { dtype: 'int32' });
  // Compile and tune the kernels of a shard's step before joining, not inside the timed steps.
  const shard = Math.ceil(batch / min);
  await trainer.precompile([shard, 1, 28, 28]);
  await wg.autotune();
  const dp = new wg.distributed.DataParallel({ trainer, transport: new wg.distributed.WebSocketTransport(url), minReplicas: min });
  try {
    while (dp.steps < steps) {
      const r = await dp.step(({ rank, worldSize }) => {
        const { start, count } = wg.distributed.shardRange(batch, rank, worldSize);
        return { x: wg.narrow(x, 0, start, count), y: wg.narrow(y, 0, start, count) };
      });
      console.log(JSON.stringify(r));
    }
  } finally {
    dp.close();
    wg.shutdown();
  }
}
