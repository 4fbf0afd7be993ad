// The memory planner at work: the MNIST CNN at batch 512, under a 64 MiB budget and without one.
// Prints each plan, the measured peak live bytes and samples/s.
// Usage: node scripts/run.mjs scripts/plan-report.ts [--batch 512] [--budget-mib 64] [--steps 3]
import { parseArgs } from 'node:util';
import * as wg from '../src/node';

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { batch: { type: 'string', default: '512' }, 'budget-mib': { type: 'string', default: '64' }, steps: { type: 'string', default: '3' } },
  });
  const batch = Number(values.batch);
  const steps = Number(values.steps);
  await wg.init();
  const { train } = await wg.data.mnist();
  const loader = new wg.data.DataLoader(train, { batchSize: batch, shuffle: true, seed: 1 });
  const it = loader[Symbol.iterator]();
  const b = it.next().value!;
  for (const budget of [Number(values['budget-mib']) * 2 ** 20, undefined]) {
    wg.manualSeed(1);
    const model = wg.models.mnistCNN();
    const optimizer = new wg.optim.SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
    const trainer = new wg.Trainer({ model, optimizer, loss: 'cross-entropy', memoryBudgetBytes: budget });
    const plan = trainer.plan(b.x.shape, b.y.shape);
    console.log(`\nbudget ${budget ? `${budget / 2 ** 20} MiB` : 'default'}: ${plan.reason}`);
    await trainer.step(b.x, b.y); // warm-up (pipelines)
    let peak = 0;
    const t0 = performance.now();
    for (let s = 0; s < steps; s++) {
      const r = await trainer.step(b.x, b.y);
      peak = Math.max(peak, trainer.lastPeakBytes);
      process.stdout.write(`  step ${s + 1}/${steps}: loss ${r.loss.toFixed(4)}, ${r.microBatches} micro-batch${r.microBatches === 1 ? "" : "es"}\n`);
    }
    const sps = (batch * steps) / ((performance.now() - t0) / 1000);
    console.log(`  measured peak ${(peak / 2 ** 20).toFixed(1)} MiB (planned ${(plan.estimatedPeakBytes / 2 ** 20).toFixed(1)} MiB), ${sps.toFixed(1)} samples/s`);
    optimizer.dispose();
    model.dispose();
  }
  b.dispose();
  wg.shutdown();
}
