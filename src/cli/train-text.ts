// `npm run train -- --model gpt [--data moby-dick|names|FILE.txt] …`: a character-level GPT on a
// text, on the backend wg.init() picks (WebGPU on a hardware adapter through Dawn, else the CPU
// backend; --backend chooses), named on the first line. Before the device starts: the options,
// --out, the --resume file (its model, architecture and vocabulary must fit) and the text are
// checked; the bigram baseline is counted on the same split. Then training with a progress bar;
// every --sample-every steps the held-out loss (on the first EVAL_TOKENS tokens of the held-out
// text, next to the bigram's on the same tokens), a sample from the model and a checkpoint with
// the tokenizer; at the end the held-out loss on the whole held-out text beside the bigram's, and
// the time taken.
//
// The recipe (nanoGPT's for small character models): AdamW with betas (0.9, 0.99), weight decay
// 0.1 on weight matrices only (wg.optim.decayGroups), a linear warm-up and a cosine decay to a
// tenth of --lr, gradients clipped to norm 1; f16-mixed precision where the adapter has shader-f16.

import { readFileSync } from 'node:fs';
import * as wg from '../node';
import { textWindows, type TextDataset } from '../data/text-dataset';
import type { GptOptions } from './train';
import { fileError, readCheckpointFile, saveModel, UsageError, type Saved } from './cli-files';
import { describeBackend } from './describe-backend';
import { formatTime, ProgressBar } from './progress';
import { endlessBatches, stepOn } from './text-steps';

/** Held-out tokens scored at each evaluation during training (the final one scores them all). */
export const EVAL_TOKENS = 8192;
/** Tokens in each printed sample, and its temperature. */
const SAMPLE_TOKENS = 120;
const SAMPLE_TEMPERATURE = 0.8;
const WEIGHT_DECAY = 0.1;
const CLIP_NORM = 1;

/** The architecture a checkpoint records, which --resume must match. */
interface Architecture {
  layers: number;
  heads: number;
  dim: number;
  context: number;
}

/** Where a --resume file stands. */
interface TextResume {
  bytes: Uint8Array;
  steps: number;
}

export async function trainText(o: GptOptions): Promise<void> {
  const resume = o.resume !== undefined ? readTextResume(o.resume, o) : null;
  const { train, test, tokenizer, name } = await loadText(o);
  if (resume) await checkVocabulary(o.resume!, resume.bytes, tokenizer);
  const evalSet = firstTokens(test, EVAL_TOKENS);
  const bigramAll = wg.data.bigramBaseline(train, test);
  const bigramEval = wg.data.bigramBaseline(train, evalSet);

  const info = await wg.init(o.backend ? { backend: o.backend } : {});
  console.log(describeBackend(info));

  wg.manualSeed(o.seed);
  const model = wg.models.gpt({ vocabSize: tokenizer.vocabSize, contextLength: o.context, layers: o.layers, heads: o.heads, dim: o.dim });
  const optimizer = new wg.optim.AdamW(wg.optim.decayGroups(model, WEIGHT_DECAY), { lr: o.lr, betas: [0.9, 0.99] });
  const warmup = Math.max(1, Math.min(100, Math.round(o.steps / 10)));
  const schedule = new wg.optim.LinearWarmup(optimizer, {
    warmupSteps: warmup,
    then: new wg.optim.CosineAnnealingLR(optimizer, { tMax: Math.max(1, o.steps - warmup), etaMin: o.lr / 10 }),
  });
  const f16 = info.features.includes('shader-f16');
  const trainer = new wg.Trainer({ model, optimizer, loss: 'cross-entropy', microBatchSize: o.microBatch, clipGradNorm: CLIP_NORM, precision: f16 ? 'f16-mixed' : 'f32' });
  let start = 0;
  if (resume) {
    try {
      wg.io.loadCheckpoint(resume.bytes, { model, optimizer });
    } catch (e) {
      throw new wg.WebGradError(`--resume ${o.resume} does not fit this GPT: ${(e as Error).message}`);
    }
    start = Math.min(resume.steps, o.steps);
    trainer.steps = start;
    schedule.loadStateDict({ lastEpoch: start });
    console.log(`resumed from ${o.resume} at step ${start}`);
  }

  console.log(
    `model: gpt, ${model.parameterCount.toLocaleString('en')} parameters (${o.layers} layers, ${o.heads} heads, dim ${o.dim}, context ${o.context}); ` +
      `AdamW lr ${o.lr} (warm-up ${warmup} steps, cosine to ${Number((o.lr / 10).toPrecision(6))}), weight decay ${WEIGHT_DECAY} on matrices, gradients clipped to ${CLIP_NORM}; ` +
      `batch ${o.batch}; ${f16 ? 'f16-mixed precision' : info.wasm ? 'f32 (the CPU backend computes in f32)' : 'f32 (no shader-f16 here)'}`,
  );
  console.log(`plan: ${trainer.plan([o.batch, o.context]).reason}`);
  console.log(
    `data: ${name}, ${train.tokens.length.toLocaleString('en')} training / ${test.tokens.length.toLocaleString('en')} held-out characters, ` +
      `vocabulary ${tokenizer.vocabSize}`,
  );
  console.log(`bigram baseline (held-out): ${bigramAll.natsPerToken.toFixed(3)} nats/char (${bigramAll.bitsPerChar.toFixed(3)} bits/char)`);

  // Samples start from the beginning of the held-out text.
  const prompt = Array.from(test.tokens.subarray(0, Math.min(16, Math.floor(o.context / 2))));
  let last: Saved | null = null;
  const save = async (steps: number, heldOut: number) => {
    const bytes = await wg.io.saveCheckpoint({
      model,
      optimizer,
      tokenizer,
      progress: { model: 'gpt', data: o.data, layers: o.layers, heads: o.heads, dim: o.dim, context: o.context, steps, heldOutLoss: heldOut },
    });
    last = saveModel(o.out, bytes);
    if (last.failures.length === 0) return;
    const why = last.failures.map((f) => `  ${f}`).join('\n');
    if (last.path) console.error(`error: could not write the checkpoint of step ${steps}:\n${why}\nit is in ${last.path}`);
    else console.error(`error: could not write the checkpoint of step ${steps} anywhere:\n${why}\nthe model stays in memory; the next save tries again`);
  };
  const sample = async () => {
    const ids = await wg.models.generate(model, prompt, { maxNewTokens: SAMPLE_TOKENS, temperature: SAMPLE_TEMPERATURE, seed: o.seed });
    const text = tokenizer.decode(ids.subarray(prompt.length));
    console.log(`sample (temperature ${SAMPLE_TEMPERATURE}) after ${JSON.stringify(tokenizer.decode(prompt))}:\n${indent(text)}`);
  };

  const started = Date.now();
  const loader = new wg.data.DataLoader(train, { batchSize: o.batch, shuffle: true, seed: o.seed });
  loader.epoch = Math.floor(start / loader.length);
  const batches = endlessBatches(loader, start % loader.length);
  let step = start;
  let lossSum = 0;
  let lossCount = 0;
  let bar: ProgressBar | null = null;
  let barFrom = start;
  let tokens = 0;
  while (step < o.steps) {
    const batch = batches.next().value;
    const end = Math.min(o.steps, (Math.floor(step / o.sampleEvery) + 1) * o.sampleEvery);
    if (!bar) {
      bar = new ProgressBar(end - step, `steps ${step + 1}–${end}/${o.steps}`);
      barFrom = step;
    }
    const result = await stepOn(trainer, batch, schedule);
    step++;
    tokens += batch.size * o.context;
    lossSum += result.loss;
    lossCount++;
    bar.update(step - barFrom, {
      loss: result.loss.toFixed(3),
      'tokens/s': (tokens / ((Date.now() - started) / 1000)).toFixed(0),
      lr: optimizer.lr.toPrecision(2),
    });
    if (step === end) {
      const e = await trainer.evaluate(evalSet, { batchSize: 64 });
      bar.done(
        `step ${step}/${o.steps}: train loss ${(lossSum / lossCount).toFixed(3)}, held-out loss ${e.loss.toFixed(3)} nats/char ` +
          `(bigram ${bigramEval.natsPerToken.toFixed(3)}, on the first ${evalSet.tokens.length - 1} held-out characters) ` +
          `(${formatTime((Date.now() - started) / 1000)})`,
      );
      bar = null;
      lossSum = lossCount = 0;
      await sample();
      await save(step, e.loss);
    }
  }
  const final = await trainer.evaluate(test, { batchSize: 64 });
  const seconds = (Date.now() - started) / 1000;
  const gain = bigramAll.natsPerToken - final.loss;
  console.log(
    `held-out loss (all ${final.targets.toLocaleString('en')} held-out characters): ${final.loss.toFixed(3)} nats/char ` +
      `(${final.bitsPerCharacter!.toFixed(3)} bits/char), bigram baseline ${bigramAll.natsPerToken.toFixed(3)}: ` +
      `${Math.abs(gain).toFixed(3)} nats/char ${gain >= 0 ? 'better' : 'worse'}; token accuracy ${(final.accuracy * 100).toFixed(1)}%`,
  );
  console.log(`time: ${formatTime(seconds)} for ${step - start} steps (${(tokens / Math.max(1e-9, seconds)).toFixed(0)} tokens/s, evaluations and samples included)`);
  if (step === start) await save(step, final.loss); // nothing trained (resumed at the end): still a checkpoint
  report(last, o.out);
  wg.shutdown();
}

function report(saved: Saved | null, out: string): void {
  if (!saved) console.log(`checkpoint: ${out} (not written)`);
  else if (saved.failures.length === 0) console.log(`checkpoint: ${saved.path}`);
  else {
    process.exitCode = 1;
    console.error(saved.path ? `checkpoint: ${saved.path} (not ${out}: see above)` : 'checkpoint: none could be written (see above)');
  }
}

/** The text of --data, split and tokenized (before the device starts); a file that cannot be read or is too short is a UsageError. */
async function loadText(o: GptOptions): Promise<wg.data.TextSplits & { name: string }> {
  if (o.data === 'moby-dick' || o.data === 'names') return { ...(await wg.data.text(o.data, { contextLength: o.context })), name: o.data };
  let text: string;
  try {
    text = readFileSync(o.data, 'utf8');
  } catch (e) {
    throw new UsageError(`--data ${o.data}: ${fileError(e)} (--data takes moby-dick, names or a text file)`);
  }
  try {
    return { ...wg.data.textFromString(text, { contextLength: o.context }), name: o.data };
  } catch (e) {
    throw new UsageError(`--data ${o.data}: ${(e as Error).message}`);
  }
}

/**
 * Read and check a --resume file before the device starts: a GPT checkpoint of this architecture and
 * data, whose step count is a count.
 */
function readTextResume(file: string, o: GptOptions): TextResume {
  const { bytes, progress } = readCheckpointFile('--resume', file);
  if (progress.model !== 'gpt') {
    throw new UsageError(`--resume: ${file} holds ${progress.model === undefined ? 'no GPT' : `a ${String(progress.model)} model; pass --model ${String(progress.model)}`}`);
  }
  const saved: Partial<Architecture> = progress;
  const keys = ['layers', 'heads', 'dim', 'context'] as const;
  if (keys.some((k) => saved[k] !== o[k])) {
    throw new UsageError(`--resume: ${file} holds a GPT of ${keys.map((k) => `--${k} ${String(saved[k])}`).join(' ')}; pass those`);
  }
  if (progress.data !== o.data) throw new UsageError(`--resume: ${file} was trained on --data ${String(progress.data)}; pass that`);
  const steps = progress.steps;
  if (!Number.isSafeInteger(steps) || (steps as number) < 0) {
    throw new UsageError(`--resume ${file}: its progress says steps ${JSON.stringify(steps)}; expected a count (a non-negative integer)`);
  }
  return { bytes, steps: steps as number };
}

/** The checkpoint's tokenizer must be the text's (a file edited since would give other ids). */
async function checkVocabulary(file: string, bytes: Uint8Array, tokenizer: wg.data.Tokenizer): Promise<void> {
  const saved = await wg.io.readCheckpointTokenizer(bytes);
  if (!saved || JSON.stringify(saved.toJSON()) !== JSON.stringify(tokenizer.toJSON())) {
    throw new UsageError(`--resume: ${file} ${saved ? 'has another vocabulary than' : 'has no tokenizer for'} this text; it was trained on other characters`);
  }
}

/** The held-out windows over the first `n` tokens of `test` (all of them when it is shorter). */
function firstTokens(test: TextDataset, n: number): TextDataset {
  if (test.tokens.length <= n + 1) return test;
  return textWindows(test.tokens.subarray(0, n + 1), { contextLength: test.contextLength, vocabSize: test.vocabSize, stride: test.contextLength, charsPerToken: test.charsPerToken });
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `  | ${l}`)
    .join('\n');
}
