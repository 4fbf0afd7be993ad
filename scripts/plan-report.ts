// The memory planner at work (README "Memory"), in two parts:
//
// 1. GPT-2 small (124M) fine-tuned with LoRA (rank 8 on the attention projections) on sequences of
//    256 tokens, batch --batch, for budgets of 2, 4 and 8 GiB: the plan (micro-batch size,
//    checkpointing) and its reason. A dry run: the model, its adapters and the optimizer are built
//    inside one (webgrad's allocations are counted, not made), so nothing is allocated — 124M
//    parameters need no memory here — and Trainer.plan dry-runs the passes as it always does.
//    Twice: frozen weights in f32, and in f16 as Module.half({ frozenOnly: true }) stores them on
//    an adapter with shader-f16 (simulated for the dry run where this one lacks it: the bytes are
//    the same, and nothing is dispatched).
// 2. --measure (instead of part 1; --all for both): a small GPT trained for real at three budgets (none, one that needs micro-batches,
//    one that needs checkpointing): the planned peak beside the measured one (Trainer.lastPeakBytes).
//
// Usage: node scripts/run.mjs scripts/plan-report.ts [--batch 16] [--measure | --all] [--backend webgpu|wasm]
import { parseArgs } from 'node:util';
import * as wg from '../src/node';
import { dryRun } from '../src/memory';
import { runtime } from '../src/runtime/device';

const GiB = 2 ** 30;
const MiB = 2 ** 20;
const GPT2_SMALL = { vocabSize: 50257, contextLength: 1024, layers: 12, heads: 12, dim: 768, activation: 'gelu_tanh' as const };
const CONTEXT = 256;

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { batch: { type: 'string', default: '16' }, measure: { type: 'boolean', default: false }, all: { type: 'boolean', default: false }, backend: { type: 'string', default: 'webgpu' } },
  });
  const batch = Number(values.batch);
  const info = await wg.init({ backend: values.backend as 'webgpu' | 'wasm' });
  const l = info.limits;
  console.log(
    `device: ${info.backend === 'wasm' ? 'CPU backend' : `WebGPU, ${info.adapterInfo.description || info.adapterInfo.vendor}`}; ` +
      `maxBufferSize ${fmt(l.maxBufferSize)}, maxStorageBufferBindingSize ${fmt(l.maxStorageBufferBindingSize)}; features: ${info.features.join(', ') || 'none'}`,
  );
  if (!values.measure || values.all) gpt2Plans(batch);
  if (values.measure || values.all) await measured();
  wg.shutdown();
}

/** Part 1: GPT-2 small with LoRA, planned for 2, 4 and 8 GiB (nothing allocated). */
function gpt2Plans(batch: number): void {
  console.log(`\nGPT-2 small (124M), LoRA rank 8 / alpha 16 on the attention projections, AdamW, batch ${batch} × ${CONTEXT} tokens (dry run):`);
  for (const half of [false, true]) {
    console.log(`\n  frozen weights in ${half ? 'f16 (half({ frozenOnly: true }) with shader-f16)' : 'f32'}:`);
    for (const budget of [2 * GiB, 4 * GiB, 8 * GiB]) {
      const { trainer, model, trainable } = buildDry(half, budget);
      const live = wg.memory().liveBytes;
      let line: string;
      try {
        const p = trainer.plan([batch, CONTEXT]);
        const every = p.checkpointEvery === 0 ? 'no checkpointing' : `checkpointing ${p.checkpointEvery === 1 ? 'every block' : `every ${p.checkpointEvery}th block`} (${p.checkpointedBlocks} of ${p.blocks})`;
        line =
          `micro-batch ${p.microBatchSize} × ${p.microBatches}, ${every}: planned peak ${fmt(p.estimatedPeakBytes)} ` +
          `(fixed ${fmt(p.persistentBytes)}, ${fmt(p.bytesPerSample)} per sequence)\n      ${p.reason}`;
      } catch (e) {
        line = `does not fit: ${(e as Error).message}`;
      }
      if (wg.memory().liveBytes !== live) throw new Error('the dry-run plan allocated device memory');
      console.log(`    budget ${fmt(budget)}: ${line}`);
      if (budget === 2 * GiB) console.log(`      (${trainable.toLocaleString('en')} trainable of ${model.parameterCount.toLocaleString('en')} parameters)`);
      model.dispose();
    }
  }
}

/** GPT-2 small with LoRA, (its frozen weights in f16), AdamW and a Trainer, built inside a dry run: nothing is allocated. */
function buildDry(half: boolean, budget: number): { trainer: wg.Trainer; model: wg.models.GPT; trainable: number } {
  const rt = runtime();
  let made: { trainer: wg.Trainer; model: wg.models.GPT; trainable: number } | null = null;
  const hasFeature = rt.hasFeature;
  // half() stores frozen weights in f16 only where the adapter has shader-f16; in a dry run the
  // bytes are what matter, and nothing is dispatched or compiled.
  if (half) rt.hasFeature = (f: string) => f === 'shader-f16' || hasFeature.call(rt, f);
  try {
    dryRun(() => {
      wg.manualSeed(1);
      const model = wg.models.gpt({ ...GPT2_SMALL });
      const adapted = wg.nn.lora(model, { rank: 8, alpha: 16 });
      if (half) model.half({ frozenOnly: true });
      const optimizer = new wg.optim.AdamW(adapted.parameters(), { lr: 1e-3, weightDecay: 0 });
      const trainer = new wg.Trainer({ model, optimizer, loss: 'cross-entropy', checkpointing: 'auto', memoryBudgetBytes: budget });
      made = { trainer, model, trainable: adapted.trainableCount };
    });
  } finally {
    rt.hasFeature = hasFeature;
  }
  return made!;
}

/** Part 2: a small GPT trained at three budgets, planned peak beside measured. */
async function measured(): Promise<void> {
  const cfg = { vocabSize: 65, contextLength: 64, layers: 4, heads: 4, dim: 64 };
  const [batch, t] = [16, 64];
  console.log(`\nA GPT of ${cfg.layers} blocks, dim ${cfg.dim}, vocabulary ${cfg.vocabSize}, batch ${batch} × ${t} tokens, AdamW, trained 3 steps per budget:`);
  const x = wg.tensor(Int32Array.from({ length: batch * t }, (_, i) => (i * 7) % cfg.vocabSize), [batch, t], { dtype: 'int32' });
  const y = wg.tensor(Int32Array.from({ length: batch * t }, (_, i) => (i * 7 + 1) % cfg.vocabSize), [batch, t], { dtype: 'int32' });
  const setup = (budget?: number) => {
    wg.manualSeed(1);
    const model = wg.models.gpt(cfg);
    const optimizer = new wg.optim.AdamW(model.parameters(), { lr: 1e-3 });
    return { model, optimizer, trainer: new wg.Trainer({ model, optimizer, loss: 'cross-entropy', checkpointing: 'auto', memoryBudgetBytes: budget }) };
  };
  // The budgets: what the whole batch needs without checkpointing, half of its activations, and
  // less than one sequence's activations on top of the fixed part (only checkpointing fits).
  const probe = setup();
  const free = probe.trainer.plan([batch, t]);
  probe.optimizer.dispose();
  probe.model.dispose();
  const budgets = [
    Math.ceil((free.estimatedPeakBytes * 1.05) / MiB) * MiB,
    Math.ceil((free.persistentBytes + (free.estimatedPeakBytes - free.persistentBytes) * 0.4) / MiB) * MiB,
    Math.ceil((free.persistentBytes + free.bytesPerSample * 0.8) / MiB) * MiB,
  ];
  for (const budget of budgets) {
    const { model, optimizer, trainer } = setup(budget);
    const p = trainer.plan([batch, t]);
    await trainer.step(x, y); // compiles the pipelines
    let peak = 0;
    for (let s = 0; s < 3; s++) {
      await trainer.step(x, y);
      peak = Math.max(peak, trainer.lastPeakBytes);
    }
    const every = p.checkpointEvery === 0 ? 'no checkpointing' : `checkpointing every ${p.checkpointEvery === 1 ? '' : `${p.checkpointEvery}th `}block`;
    console.log(
      `  budget ${fmt(budget)}: micro-batch ${p.microBatchSize} × ${p.microBatches}, ${every}; planned peak ${fmt(p.estimatedPeakBytes)}, ` +
        `measured ${fmt(peak)} (${(((peak - p.estimatedPeakBytes) / p.estimatedPeakBytes) * 100).toFixed(1)}%)\n    ${p.reason}`,
    );
    optimizer.dispose();
    model.dispose();
  }
  x.dispose();
  y.dispose();
}

function fmt(bytes: number): string {
  return bytes >= GiB ? `${(bytes / GiB).toFixed(2)} GiB` : `${(bytes / MiB).toFixed(1)} MiB`;
}
