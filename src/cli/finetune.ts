// `npm run finetune -- --model path/to/model.safetensors --data FILE.txt [--lora-rank 8] [--steps N] …`:
// fine-tune a pretrained GPT-2 (a Hugging Face model.safetensors) on the user's own text with LoRA.
//
// Before a device starts: the options, --out, the checkpoint (its header alone: a file that is not
// GPT-2 is refused with what it lacks; its config.json is read from --config or beside it) and the
// text (GPT-2's BPE tokenizer, split 90/10 by position as wg.data.textFromString does). Then:
// the model is loaded, its attention projections (or --targets) get LoRA adapters and everything
// else is frozen, frozen weights are stored in f16 where the adapter has shader-f16, and the
// memory plan (micro-batches and checkpointing for --budget) is printed with its reason. The
// held-out loss is measured before and after training, a sample is printed, and the adapters
// alone (a few MB; with their optimizer state) are written to --out; --merged-out also writes
// the merged model as a Hugging Face GPT-2 file.
//
// The recipe: AdamW on the adapters only (no weight decay), a linear warm-up over a tenth of the
// steps then a constant learning rate, gradients clipped to norm 1.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as wg from '../node';
import { textWindows, type TextDataset } from '../data/text-dataset';
import { integerIn, numberIn, parseOptions, UsageError } from './args';
import { checkOut, fileError, saveModel } from './cli-files';
import { formatTime, ProgressBar } from './progress';
import { endlessBatches, stepOn } from './text-steps';

export const USAGE = `usage: npm run finetune -- --model path/to/model.safetensors --data FILE.txt
                           [--config config.json] [--lora-rank 8] [--lora-alpha 16] [--targets c_attn,c_proj]
                           [--steps 200] [--batch 8] [--context 256] [--lr 1e-3] [--budget GiB]
                           [--sample-tokens 60] [--seed 0] [--backend auto|webgpu|wasm]
                           [--out lora.safetensors] [--merged-out model.safetensors]`;

/** Held-out tokens scored before and after training (the first ones of the held-out text). */
const EVAL_TOKENS = 8192;
const SAMPLE_TEMPERATURE = 0.8;
const SAMPLE_TOP_K = 40;
const CLIP_NORM = 1;
/** Hugging Face's module names of GPT-2 → webgrad's (what --targets takes either way). */
const TARGET_NAMES: Record<string, string[]> = { c_attn: ['attn.inProj'], c_proj: ['attn.outProj', 'proj'], c_fc: ['fc'], 'attn.c_proj': ['attn.outProj'], 'mlp.c_proj': ['proj'] };

export interface FinetuneOptions {
  model: string;
  data: string;
  config?: string;
  rank: number;
  alpha: number;
  /** Layer names as Hugging Face's GPT-2 calls them (c_attn, c_proj, c_fc) or webgrad's; undefined: the attention projections. */
  targets?: string[];
  steps: number;
  batch: number;
  /** Tokens per window (at most the model's n_positions; default min(256, n_positions)). */
  context?: number;
  lr: number;
  /** Memory budget in bytes (default: the Trainer's). */
  budget?: number;
  sampleTokens: number;
  seed: number;
  backend?: 'auto' | 'webgpu' | 'wasm';
  out: string;
  mergedOut?: string;
}

const OPTIONS = {
  model: { type: 'string' },
  data: { type: 'string' },
  config: { type: 'string' },
  'lora-rank': { type: 'string', default: '8' },
  'lora-alpha': { type: 'string' },
  targets: { type: 'string' },
  steps: { type: 'string', default: '200' },
  batch: { type: 'string', default: '8' },
  context: { type: 'string' },
  lr: { type: 'string', default: '1e-3' },
  budget: { type: 'string' },
  'sample-tokens': { type: 'string', default: '60' },
  seed: { type: 'string', default: '0' },
  backend: { type: 'string' },
  out: { type: 'string', default: 'lora.safetensors' },
  'merged-out': { type: 'string' },
  help: { type: 'boolean', default: false },
} as const;

/** The options of a command line, checked (null: --help). */
export function parseFinetuneOptions(argv: readonly string[]): FinetuneOptions | null {
  const v = parseOptions(argv, OPTIONS);
  if (v.help) return null;
  if (v.model === undefined) throw new UsageError('--model is required: the path of a GPT-2 model.safetensors (Hugging Face)');
  if (v.data === undefined) throw new UsageError('--data is required: a UTF-8 text file to fine-tune on');
  const rank = integerIn('--lora-rank', v['lora-rank'], 1, 1024);
  const backend = v.backend;
  if (backend !== undefined && backend !== 'auto' && backend !== 'webgpu' && backend !== 'wasm') throw new UsageError(`--backend must be auto, webgpu or wasm, got ${backend}`);
  const targets = v.targets?.split(',').map((t) => t.trim()).filter(Boolean);
  if (targets && targets.length === 0) throw new UsageError('--targets must name at least one layer (e.g. c_attn,c_proj)');
  return {
    model: v.model,
    data: v.data,
    config: v.config,
    rank,
    alpha: v['lora-alpha'] === undefined ? 2 * rank : numberIn('--lora-alpha', v['lora-alpha'], 1e-6, 1e6),
    targets,
    steps: integerIn('--steps', v.steps, 0, 1e7),
    batch: integerIn('--batch', v.batch, 1, 4096),
    context: v.context === undefined ? undefined : integerIn('--context', v.context, 2, 1 << 20),
    lr: numberIn('--lr', v.lr, 1e-9, 1),
    budget: v.budget === undefined ? undefined : Math.round(numberIn('--budget', v.budget, 0.01, 1024, ' GiB') * 2 ** 30),
    sampleTokens: integerIn('--sample-tokens', v['sample-tokens'], 0, 10_000),
    seed: integerIn('--seed', v.seed, 0, 2 ** 31 - 1),
    backend,
    out: v.out,
    mergedOut: v['merged-out'],
  };
}

export async function main(argv: string[]): Promise<void> {
  try {
    await finetune(argv);
  } catch (e) {
    process.exitCode = 1;
    if (e instanceof UsageError) console.error(`error: ${e.message}\n${USAGE}`);
    else if (e instanceof wg.WebGradError) console.error(`error: ${e.message}`);
    else console.error(e); // a bug: the stack trace helps
  } finally {
    wg.shutdown();
  }
}

async function finetune(argv: string[]): Promise<void> {
  const o = parseFinetuneOptions(argv);
  if (!o) {
    console.log(USAGE);
    return;
  }
  checkOut(o.out);
  if (o.mergedOut !== undefined) checkOut(o.mergedOut);
  // Everything a person can get wrong about the files, before the device starts.
  const bytes = readFile('--model', o.model);
  const hfConfig = readConfig(o);
  let config: wg.models.GPTConfig;
  try {
    config = wg.models.gpt2.inspect(bytes, { config: hfConfig });
  } catch (e) {
    throw new UsageError(`--model ${o.model}: ${(e as Error).message}`);
  }
  const tokenizer = await wg.data.gpt2Tokenizer();
  if (config.vocabSize < tokenizer.vocabSize) {
    throw new UsageError(`--model ${o.model}: its vocabulary of ${config.vocabSize} is smaller than GPT-2's tokenizer's ${tokenizer.vocabSize}`);
  }
  const context = o.context ?? Math.min(256, config.contextLength);
  if (context > config.contextLength) throw new UsageError(`--context ${context} is longer than the model's n_positions ${config.contextLength}`);
  const { train, test } = splitText(o.data, context, tokenizer);
  const evalSet = firstTokens(test, EVAL_TOKENS);

  const info = await wg.init(o.backend ? { backend: o.backend } : {});
  console.log(describeDevice(info));
  wg.manualSeed(o.seed);
  const model = wg.models.gpt2.fromSafetensors(bytes, { config: hfConfig });
  const adapted = wg.nn.lora(model, { rank: o.rank, alpha: o.alpha, targets: o.targets && loraTargets(o.targets) });
  const f16 = info.features.includes('shader-f16');
  if (f16) model.half({ frozenOnly: true });
  const optimizer = new wg.optim.AdamW(adapted.parameters(), { lr: o.lr, weightDecay: 0 });
  const warmup = Math.max(1, Math.round(o.steps / 10));
  const schedule = new wg.optim.LinearWarmup(optimizer, { warmupSteps: warmup });
  const trainer = new wg.Trainer({
    model,
    optimizer,
    loss: 'cross-entropy',
    clipGradNorm: CLIP_NORM,
    checkpointing: 'auto',
    ...(o.budget !== undefined ? { memoryBudgetBytes: o.budget } : {}),
  });

  const c = model.config;
  console.log(
    `model: GPT-2 of ${c.layers} blocks, ${c.heads} heads, n_embd ${c.dim}, n_positions ${c.contextLength}, vocabulary ${c.vocabSize} ` +
      `(${adapted.totalCount.toLocaleString('en')} parameters); LoRA rank ${o.rank}, alpha ${o.alpha} on ${adapted.layers.length} layers ` +
      `(${adapted.trainableCount.toLocaleString('en')} trainable, ${((100 * adapted.trainableCount) / adapted.totalCount).toFixed(2)}%); ` +
      `frozen weights ${f16 ? 'in f16' : 'in f32 (no shader-f16 here)'}`,
  );
  console.log(
    `data: ${o.data}, ${train.tokens.length.toLocaleString('en')} training / ${test.tokens.length.toLocaleString('en')} held-out tokens ` +
      `(GPT-2 BPE), context ${context}; AdamW lr ${o.lr} (warm-up ${warmup} steps), batch ${o.batch}, ${o.steps} steps`,
  );
  console.log(`plan: ${trainer.plan([o.batch, context]).reason}`);

  const evalBatch = Math.max(1, Math.min(o.batch, 8));
  const before = await trainer.evaluate(evalSet, { batchSize: evalBatch });
  console.log(`held-out loss before: ${before.loss.toFixed(3)} nats/token (on ${before.targets.toLocaleString('en')} held-out tokens)`);

  const started = Date.now();
  const loader = new wg.data.DataLoader(train, { batchSize: o.batch, shuffle: true, seed: o.seed });
  const batches = endlessBatches(loader);
  const bar = new ProgressBar(o.steps, 'fine-tuning');
  let tokens = 0;
  for (let step = 0; step < o.steps; ) {
    const batch = batches.next().value;
    const result = await stepOn(trainer, batch, schedule);
    step++;
    tokens += batch.size * context;
    bar.update(step, { loss: result.loss.toFixed(3), 'tokens/s': (tokens / ((Date.now() - started) / 1000)).toFixed(0) });
  }
  const seconds = (Date.now() - started) / 1000;
  bar.done(`trained ${o.steps} steps in ${formatTime(seconds)} (${(tokens / Math.max(1e-9, seconds)).toFixed(0)} tokens/s)`);
  const after = await trainer.evaluate(evalSet, { batchSize: evalBatch });
  const gain = before.loss - after.loss;
  console.log(`held-out loss after: ${after.loss.toFixed(3)} nats/token (${Math.abs(gain).toFixed(3)} ${gain >= 0 ? 'better' : 'worse'} than before)`);

  if (o.sampleTokens > 0) {
    const prompt = Array.from(test.tokens.subarray(0, Math.min(16, Math.floor(context / 2))));
    const ids = await wg.models.generate(model, prompt, { maxNewTokens: o.sampleTokens, temperature: SAMPLE_TEMPERATURE, topK: SAMPLE_TOP_K, seed: o.seed });
    console.log(`sample (temperature ${SAMPLE_TEMPERATURE}, top-k ${SAMPLE_TOP_K}) after ${JSON.stringify(tokenizer.decode(prompt))}:`);
    console.log(tokenizer.decode(ids.subarray(prompt.length)).split('\n').map((l) => `  | ${l}`).join('\n'));
  }

  const adapters = await wg.io.saveCheckpoint({
    model,
    optimizer,
    trainableOnly: true,
    tokenizer,
    progress: { model: 'gpt2-lora', base: o.model, rank: o.rank, alpha: o.alpha, targets: adapted.layers, steps: o.steps, heldOutLoss: after.loss },
  });
  reportSave('LoRA adapters', o.out, adapters);
  if (o.mergedOut !== undefined) {
    adapted.merge();
    reportSave('merged model (Hugging Face GPT-2 layout)', o.mergedOut, await wg.models.gpt2.toSafetensors(model));
  }
  optimizer.dispose();
  model.dispose();
}

function reportSave(what: string, out: string, bytes: Uint8Array): void {
  const saved = saveModel(out, bytes);
  if (saved.failures.length === 0) console.log(`${what}: ${saved.path} (${(bytes.length / 2 ** 20).toFixed(2)} MiB)`);
  else {
    process.exitCode = 1;
    console.error(`error: could not write the ${what} to ${out}:\n${saved.failures.map((f) => `  ${f}`).join('\n')}\n${saved.path ? `it is in ${saved.path}` : 'it could not be written anywhere'}`);
  }
}

function readFile(option: string, path: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (e) {
    throw new UsageError(`${option} ${path}: ${fileError(e)}`);
  }
}

/** --config, else a config.json beside the model (a Hugging Face model directory), else none. */
function readConfig(o: FinetuneOptions): wg.models.gpt2.GPT2Config | undefined {
  const path = o.config ?? join(dirname(o.model), 'config.json');
  if (o.config === undefined && !existsSync(path)) return undefined;
  const text = new TextDecoder().decode(readFile('--config', path));
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`--config ${path}: not JSON (${(e as Error).message})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new UsageError(`--config ${path}: expected a JSON object (a config.json)`);
  return parsed as wg.models.gpt2.GPT2Config;
}

/** The text of --data in GPT-2 tokens, split and windowed (before the device starts). */
function splitText(path: string, context: number, tokenizer: wg.data.Tokenizer): wg.data.TextSplits {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UsageError(`--data ${path}: ${fileError(e)}`);
  }
  try {
    return wg.data.textFromString(text, { contextLength: context, tokenizer });
  } catch (e) {
    throw new UsageError(`--data ${path}: ${(e as Error).message}`);
  }
}

/** --targets in Hugging Face's names (c_attn, c_proj, c_fc) or webgrad's, as LoRA's layer names. */
function loraTargets(names: readonly string[]): string[] {
  return names.flatMap((n) => TARGET_NAMES[n] ?? [n]);
}

/** The held-out windows over the first `n` tokens of `test` (all of them when it is shorter). */
function firstTokens(test: TextDataset, n: number): TextDataset {
  if (test.tokens.length <= n + 1) return test;
  return textWindows(test.tokens.subarray(0, n + 1), { contextLength: test.contextLength, vocabSize: test.vocabSize, stride: test.contextLength, charsPerToken: test.charsPerToken });
}

function describeDevice(info: wg.DeviceInfo): string {
  if (info.wasm) return `backend: CPU (WebAssembly SIMD, ${info.wasm.threads} thread${info.wasm.threads === 1 ? '' : 's'}): ${info.backendReason}`;
  const ad = info.adapterInfo;
  return `backend: WebGPU on ${[ad.vendor, ad.architecture, ad.description].filter(Boolean).join(' ')}${ad.isFallbackAdapter ? ' (software fallback)' : ''}; features: ${info.features.join(', ') || 'none'}`;
}
