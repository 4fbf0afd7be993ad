// The Text mode's worker: owns the device, a character-level GPT, the text it trains on and the
// training history. It trains as `npm run train -- --model gpt` does (text-model.ts), streams each
// step's loss, scores the first held-out tokens every HELD_OUT_EVERY steps beside the bigram
// baseline, and generates samples a few tokens at a time (text-sampler.ts) between training
// steps: one every SAMPLE_EVERY_MS while training, and one whenever the person asks, from their
// prompt. The latest model (with its tokenizer, and a pasted text) is kept in IndexedDB on pause
// and every STORE_EVERY steps.
//
// As in the digits' worker, the first step comes as soon as it can: the step's GPU pipelines are
// compiled ahead with progress (Trainer.precompile), kernels are tuned only after it.
//
// A pretrained GPT-2 (a Hugging Face model.safetensors dropped on the page) is fine-tuned instead
// as `npm run finetune` does: LoRA adapters on its attention projections, everything else frozen
// (in f16 where the adapter has shader-f16), AdamW on the adapters alone, GPT-2's tokenizer, and
// the memory plan choosing micro-batches and activation checkpointing. Such a model is not kept in
// IndexedDB (the base is hundreds of MB); its adapters download as the command line's --out does.

import * as wg from '../src/index';
import type { PlanInfo, RunState } from './protocol';
import { forgetStoredTextModel, loadStoredTextModel, storeTextModel } from './storage';
import { loadText, type TextData } from './text-data';
import { buildTextModel, CLIP_NORM, describeTextFile, lrAt, loadTextModel, saveTextModel, type TextModel } from './text-model';
import { TEXT_SIZES, type FromTextWorker, type GptShape, type LoraInfo, type TextConfig, type TextHistory, type ToTextWorker } from './text-protocol';
import { SampleStream } from './text-sampler';
import { exclusive, planInfo, RateMeter, startBackend, tuneKernels, yieldToMessages } from './worker-shared';

/** Held-out loss every this many steps (and on pause). */
const HELD_OUT_EVERY = 25;
/** While training, a new sample starts this long after the last one ended. */
const SAMPLE_EVERY_MS = 4000;
/** The model is kept in IndexedDB every this many steps (and on pause). */
const STORE_EVERY = 200;
/** tokens/s is measured over this many recent steps. */
const SPEED_WINDOW = 20;
const MODEL_SEED = 1;
const DATA_SEED = 1;
const SAMPLE_SEED = 1000;
/** GPT-2 fine-tuning: LoRA's rank and alpha (PEFT's usual), the rate, batch and context it starts with. */
const LORA_RANK = 8;
const LORA_ALPHA = 16;
const LORA_LR = 1e-3;
const GPT2_BATCH = 8;
const GPT2_CONTEXT = 128;

interface Session {
  config: TextConfig;
  shape: GptShape;
  m: TextModel;
  data: TextData;
  /** Optimizer updates so far. */
  step: number;
  history: TextHistory;
  /** A pretrained GPT-2 with LoRA adapters (null: one of the page's own GPTs). */
  lora: (LoraInfo & { adapted: wg.nn.LoRAModel }) | null;
}

let session: Session | null = null;
let state: RunState = 'starting';
let precision: NonNullable<wg.TrainerOptions['precision']> = 'f32';
let training: Promise<void> | null = null;
let stopRequested = false;
let stopTuning = new AbortController();

/** The sample being generated, its pieces taking turns with training steps. */
let sample: SampleStream | null = null;
let samples = 0;
let lastSampleEnded = -Infinity;
/** Whether a loop is generating the current sample while not training. */
let drainingSample = false;
/** What periodic samples start from (empty: the text's default prompt) and their temperature. */
let sampling = { prompt: '', temperature: 0.8 };

function send(msg: FromTextWorker, transfer: Transferable[] = []): void {
  self.postMessage(msg, { transfer });
}

function setState(next: RunState, detail = '', progress?: number): void {
  state = next;
  send({ type: 'status', state: next, detail, progress });
}

function idleState(): RunState {
  return session && session.step > 0 ? 'paused' : 'ready';
}

// ---- starting up ----

async function start(config: TextConfig, backend: wg.BackendChoice, pasted: string): Promise<void> {
  setState('starting', backend === 'wasm' ? 'Starting the CPU backend…' : 'Starting WebGPU…');
  const info = await startBackend(backend, send);
  if (!info) return;
  // As the command line: f16 operands where the adapter has them.
  precision = info.features.includes('shader-f16') ? 'f16-mixed' : 'f32';
  if (!(await restoreStored())) await newSession(config, pasted);
}

async function restoreStored(): Promise<boolean> {
  let stored;
  try {
    stored = await loadStoredTextModel();
  } catch (e) {
    send({ type: 'error', message: `Could not read the text model kept in this browser: ${(e as Error).message}` });
    return false;
  }
  if (!stored) return false;
  try {
    setState('starting', 'Restoring the text model kept in this browser…');
    await replaceSession(await fromFile(stored.checkpoint, stored.pasted ?? ''), stored.history);
  } catch (e) {
    send({ type: 'error', message: `The text model kept in this browser could not be restored (${(e as Error).message}); starting afresh.` });
    return false;
  }
  announce({ kind: 'restored', savedAt: stored.savedAt });
  return true;
}

// ---- models ----

/** A fresh model for the text and size `config` chooses; on failure (a pasted text too short, say) the current one stays. */
async function newSession(config: TextConfig, pasted: string): Promise<void> {
  const shape = TEXT_SIZES[config.size];
  setState('busy', config.source === 'pasted' ? 'Reading your text…' : `Loading ${config.source === 'names' ? 'the names' : 'Moby Dick'}…`);
  let data: TextData;
  try {
    data = await loadText(config.source, pasted, shape.context);
  } catch (e) {
    send({ type: 'error', message: `Could not use that text: ${(e as Error).message}` });
    return;
  }
  wg.manualSeed(MODEL_SEED);
  const m = buildTextModel(shape, data.tokenizer.vocabSize, config.lr);
  await replaceSession({ config, shape, m, data, step: 0, history: { loss: [], heldOut: [], speed: [] }, lora: null });
  announce({ kind: 'new' });
}

/** A session from a checkpoint; throws (leaving nothing allocated) if it does not load or its text is not at hand. */
async function fromFile(bytes: Uint8Array, pasted: string): Promise<Session> {
  const c = await describeTextFile(bytes);
  const source = c.source ?? 'pasted';
  let data: TextData;
  try {
    data = await loadText(source, pasted, c.shape.context, c.tokenizer);
  } catch (e) {
    throw new wg.WebGradError(
      source === 'pasted'
        ? `it was trained on a text of its own; paste that text into "Your text" and load the file again (${(e as Error).message})`
        : (e as Error).message,
    );
  }
  const fallback = session?.config ?? { lr: 3e-3, batchSize: 16, microBatchSize: 'auto' as const };
  const config: TextConfig = {
    lr: fallback.lr,
    batchSize: fallback.batchSize,
    microBatchSize: fallback.microBatchSize,
    ...c.settings,
    source,
    size: c.size ?? session?.config.size ?? 'small',
  };
  const m = buildTextModel(c.shape, c.tokenizer.vocabSize, config.lr);
  try {
    loadTextModel(bytes, m);
  } catch (e) {
    m.model.dispose();
    m.optimizer.dispose();
    throw e;
  }
  return { config, shape: c.shape, m, data, step: c.steps, history: c.history ?? { loss: [], heldOut: [], speed: [] }, lora: null };
}

/** Puts `next` in place once GPU work under way (a piece of a sample) is done with the old model. */
async function replaceSession(next: Session, history?: TextHistory): Promise<void> {
  sample = null; // a sample of the old model stops where it is
  await exclusive(async () => {
    if (session) {
      session.m.optimizer.dispose();
      session.m.model.dispose();
    }
    if (history) next.history = history;
    session = next;
  });
}

function newTrainer(s: Session, tuneBeforeSteps = true): wg.Trainer {
  return new wg.Trainer({
    model: s.m.model,
    optimizer: s.m.optimizer,
    loss: 'cross-entropy',
    microBatchSize: s.config.microBatchSize,
    clipGradNorm: CLIP_NORM,
    // GPT-2's frozen weights are f16 already where they can be (half({ frozenOnly: true })), as the command line's finetune.
    precision: s.lora ? 'f32' : precision,
    tuneBeforeSteps,
  });
}

function batchShape(s: Session): [number, number] {
  return [Math.min(s.config.batchSize, s.data.train.size), s.shape.context];
}

function announce(origin: Extract<FromTextWorker, { type: 'model' }>['origin']): void {
  const s = session!;
  const shape = batchShape(s);
  let plan: PlanInfo | null = null;
  try {
    plan = planInfo(shape[0], newTrainer(s).plan(shape));
  } catch (e) {
    if (!(e instanceof wg.LimitError)) throw e; // not even one sequence fits: Train will say so
  }
  send({
    type: 'model',
    config: s.config,
    shape: s.shape,
    parameters: s.m.model.parameterCount,
    step: s.step,
    history: s.history,
    text: s.data.info,
    plan,
    memory: wg.memory(),
    lora: s.lora && { fileName: s.lora.fileName, rank: s.lora.rank, alpha: s.lora.alpha, layers: s.lora.layers, trainable: s.lora.trainable, frozenF16: s.lora.frozenF16 },
    origin,
  });
}

// ---- GPT-2 ----

/** Fine-tune the GPT-2 of a Hugging Face model.safetensors with LoRA on `config`'s text; on failure the current model stays. */
async function fineTuneGpt2(bytes: Uint8Array, fileName: string, config: TextConfig, pasted: string): Promise<void> {
  let c: wg.models.GPTConfig;
  try {
    c = wg.models.gpt2.inspect(bytes); // the header alone: nothing is read or allocated yet
  } catch (e) {
    send({ type: 'error', message: `${fileName} is not a GPT-2 model.safetensors (Hugging Face's): ${(e as Error).message}` });
    return;
  }
  setState('busy', 'Loading GPT-2’s tokenizer…');
  const tokenizer = await wg.data.gpt2Tokenizer();
  if (c.vocabSize < tokenizer.vocabSize) {
    send({ type: 'error', message: `${fileName} has a vocabulary of ${c.vocabSize}, smaller than GPT-2's tokenizer's ${tokenizer.vocabSize}` });
    return;
  }
  const shape: GptShape = { layers: c.layers, heads: c.heads, dim: c.dim, context: Math.min(GPT2_CONTEXT, c.contextLength) };
  setState('busy', 'Encoding the text with GPT-2’s tokenizer…');
  let data: TextData;
  try {
    data = await loadText(config.source, pasted, shape.context, tokenizer);
  } catch (e) {
    send({ type: 'error', message: `Could not use that text: ${(e as Error).message}` });
    return;
  }
  setState('busy', `Loading ${fileName}: GPT-2 of ${c.layers} blocks, width ${c.dim}…`);
  let m: TextModel;
  let lora: NonNullable<Session['lora']>;
  try {
    const model = wg.models.gpt2.fromSafetensors(bytes);
    const adapted = wg.nn.lora(model, { rank: LORA_RANK, alpha: LORA_ALPHA });
    const frozenF16 = precision === 'f16-mixed';
    if (frozenF16) model.half({ frozenOnly: true });
    m = { model, optimizer: new wg.optim.AdamW(adapted.parameters(), { lr: LORA_LR, weightDecay: 0 }) };
    lora = { fileName, rank: LORA_RANK, alpha: LORA_ALPHA, layers: adapted.layers.length, trainable: adapted.trainableCount, frozenF16, adapted };
  } catch (e) {
    send({ type: 'error', message: `${fileName} could not be loaded: ${(e as Error).message}` });
    return;
  }
  const settings: TextConfig = { ...config, lr: LORA_LR, batchSize: GPT2_BATCH, microBatchSize: 'auto' };
  await replaceSession({ config: settings, shape, m, data, step: 0, history: { loss: [], heldOut: [], speed: [] }, lora });
  await forgetStoredTextModel().catch(() => undefined); // a reload starts afresh rather than with an older model
  announce({ kind: 'gpt2', fileName });
}

// ---- training ----

function train(config: TextConfig): void {
  if (training || !session) return;
  const s = session;
  s.config = { ...config, source: s.config.source, size: s.config.size };
  stopRequested = false;
  setState('training');
  training = trainLoop(s).finally(() => {
    training = null;
    if (!stopRequested) setState(idleState());
    if (sample) void drainSample();
  });
}

async function trainLoop(s: Session): Promise<void> {
  const shape = batchShape(s);
  const [batchSize, context] = shape;
  const trainer = newTrainer(s, false);
  const loader = new wg.data.DataLoader(s.data.train, { batchSize, shuffle: true, seed: DATA_SEED });
  const speed = new RateMeter(SPEED_WINDOW);
  let stepsHere = 0;
  try {
    let plan = await trainer.precompile(shape, {
      onProgress: (p) => setState('training', `Compiling GPU kernels for this model: ${p.compiled}/${p.total}…`, p.compiled / p.total),
    });
    send({ type: 'plan', plan: planInfo(batchSize, plan) });
    if (!stopRequested) setState('training', s.step === 0 ? 'Taking the first step…' : '');
    loader.epoch = Math.floor(s.step / loader.length);
    let batches = loader.cpuBatches(s.step % loader.length);
    while (!stopRequested) {
      await yieldToMessages();
      if (stopRequested) break;
      const next = batches.next();
      if (next.done) {
        batches = loader.cpuBatches(); // the next pass over the text
        continue;
      }
      const b = next.value;
      const lr = lrAt(s.step + 1, s.config.lr);
      s.m.optimizer.lr = lr;
      const started = performance.now();
      const result = await exclusive(async () => {
        const x = wg.tensor(b.x, b.shape, { dtype: 'int32' });
        const y = wg.tensor(b.y, b.shape, { dtype: 'int32' });
        try {
          return await trainer.step(x, y);
        } finally {
          x.dispose();
          y.dispose();
        }
      });
      speed.add(b.size * context, performance.now() - started);
      s.step++;
      s.history.loss.push([s.step, result.loss]);
      s.history.speed.push([s.step, speed.perSecond()]);
      send({ type: 'step', step: s.step, loss: result.loss, tokensPerSecond: speed.perSecond(), lr, memory: wg.memory() });
      if (stepsHere++ === 0 && state === 'training') setState('training');
      if (result.microBatchSize !== plan.microBatchSize) {
        plan = trainer.plan(shape); // out-of-memory recovery changed the plan
        send({ type: 'plan', plan: planInfo(batchSize, plan) });
      }
      if (!Number.isFinite(result.loss)) {
        send({ type: 'error', message: `The loss became ${result.loss}: the learning rate is too high for this model. Lower it and press Reset.` });
        break;
      }
      if (s.step % HELD_OUT_EVERY === 0) await heldOut(s, trainer);
      if (s.step % STORE_EVERY === 0) await store(s);
      await samplePiece(s);
      if (!stopRequested) await tune();
    }
  } catch (e) {
    send({ type: 'error', message: `Training stopped: ${(e as Error).message}` });
  }
}

async function heldOut(s: Session, trainer: wg.Trainer): Promise<void> {
  // GPT-2's logits are 50,257 wide: held-out batches as small as training's.
  const e = await exclusive(() => trainer.evaluate(s.data.heldOut, { batchSize: s.lora ? s.config.batchSize : 64 }));
  const point = { step: s.step, loss: e.loss, bitsPerChar: e.bitsPerCharacter ?? e.loss / Math.LN2 };
  s.history.heldOut.push(point);
  send({ type: 'held-out', point });
}

async function tune(): Promise<void> {
  const tuned = await tuneKernels(stopTuning.signal, (detail, share) => {
    if (!stopRequested) setState('training', detail, share);
  });
  if (tuned && !stopRequested) setState('training');
}

/** Stops the training loop after its current step (or kernel tuning under way) and waits for it. */
async function stopTraining(): Promise<void> {
  stopRequested = true;
  stopTuning.abort();
  await training;
  stopTuning = new AbortController();
}

// ---- samples ----

/**
 * Starts a sample from `prompt` (empty: the text's default). A typed prompt with a character the
 * model does not know is an error; a periodic sample leaves such characters out.
 */
function startSample(s: Session, prompt: string, temperature: number, requested: boolean): void {
  const text = prompt === '' ? s.data.info.defaultPrompt : prompt;
  if (requested) {
    const unknown = [...new Set(text)].filter((c) => s.data.tokenizer.encode(c, { unknown: 'skip' }).length === 0);
    if (unknown.length) {
      throw new wg.WebGradError(
        `it has ${unknown.map((c) => JSON.stringify(c)).join(', ')}, which the model has never seen: it knows only the ${s.data.info.vocabSize} characters of its text`,
      );
    }
  }
  let ids = s.data.tokenizer.encode(text, { unknown: 'skip' });
  if (ids.length === 0) ids = s.data.tokenizer.encode(s.data.info.defaultPrompt);
  sample = new SampleStream(++samples, ids, temperature, SAMPLE_SEED + samples * 1000);
  send({ type: 'sample-start', id: sample.id, step: s.step, prompt: s.data.tokenizer.decode(ids), temperature, requested });
}

/** One piece of the current sample (while training: starting a periodic one when it is time). */
async function samplePiece(s: Session): Promise<void> {
  if (!sample) {
    if (performance.now() - lastSampleEnded < SAMPLE_EVERY_MS) return;
    startSample(s, sampling.prompt, sampling.temperature, false);
  }
  const current = sample!;
  const text = await exclusive(() => current.next(s.m.model, s.data.tokenizer));
  if (sample !== current) return; // replaced (a new request, another model) meanwhile
  send({ type: 'sample-text', id: current.id, text });
  if (current.done) {
    sample = null;
    lastSampleEnded = performance.now();
    send({ type: 'sample-end', id: current.id });
  }
}

/** Generates the current sample to its end while not training (training takes pieces in turn with its steps). */
async function drainSample(): Promise<void> {
  if (drainingSample) return;
  drainingSample = true;
  try {
    while (sample && !training && session) {
      await samplePiece(session);
      await yieldToMessages(); // Train, Reset or another prompt may be waiting
    }
  } catch (e) {
    sample = null;
    send({ type: 'error', message: `The sample stopped: ${(e as Error).message}` });
  } finally {
    drainingSample = false;
  }
}

function requestSample(prompt: string, temperature: number): void {
  if (!session) return;
  try {
    startSample(session, prompt, temperature, true);
  } catch (e) {
    send({ type: 'error', message: `That prompt cannot be used: ${(e as Error).message}` });
    return;
  }
  if (!training) void drainSample();
}

// ---- files and storage ----

function save(s: Session): Promise<Uint8Array> {
  const l = s.lora;
  if (l) {
    // The adapters alone (with their optimizer state), as `npm run finetune`'s --out.
    const progress = { model: 'gpt2-lora', base: l.fileName, rank: l.rank, alpha: l.alpha, targets: l.adapted.layers, steps: s.step, history: s.history };
    return exclusive(() => wg.io.saveCheckpoint({ model: s.m.model, optimizer: s.m.optimizer, trainableOnly: true, tokenizer: s.data.tokenizer, progress }));
  }
  return exclusive(() => saveTextModel(s.m, s.data.tokenizer, s.shape, s.config, s.step, s.history));
}

async function store(s: Session): Promise<void> {
  if (s.lora) return; // hundreds of MB: not kept in the browser (the page says so)
  try {
    const checkpoint = await save(s);
    const savedAt = Date.now();
    await storeTextModel({ savedAt, checkpoint, history: s.history, pasted: s.data.pasted });
    send({ type: 'stored', savedAt });
  } catch (e) {
    send({ type: 'error', message: `Could not keep the text model in this browser’s storage: ${(e as Error).message}` });
  }
}

async function download(): Promise<void> {
  const s = session;
  if (!s) return;
  const bytes = await save(s);
  const fileName = s.lora
    ? `webgrad-gpt2-lora-${s.config.source}-step${s.step}.safetensors`
    : `webgrad-gpt-${s.config.source}-${s.config.size}-step${s.step}.safetensors`;
  send({ type: 'checkpoint', bytes, fileName }, [bytes.buffer]);
}

async function load(bytes: Uint8Array, fileName: string, pasted: string): Promise<void> {
  let next: Session;
  try {
    next = await fromFile(bytes, pasted);
  } catch (e) {
    send({ type: 'error', message: `${fileName} could not be loaded: ${(e as Error).message}` });
    return;
  }
  await replaceSession(next);
  announce({ kind: 'file', fileName });
  await store(next);
}

// ---- messages ----

async function handle(msg: ToTextWorker): Promise<void> {
  switch (msg.type) {
    case 'start':
      await start(msg.config, msg.backend, msg.pasted);
      if (state !== 'starting' || session) setState(idleState());
      return;
    case 'train':
      return train(msg.config);
    case 'pause': {
      if (!training) return;
      setState('pausing');
      await stopTraining();
      const s = session!;
      // The held-out loss where it stopped, unless just measured.
      if (s.step > 0 && s.history.heldOut.at(-1)?.step !== s.step) await heldOut(s, newTrainer(s));
      await store(s);
      setState(idleState());
      if (sample) void drainSample();
      return;
    }
    case 'reset':
      setState('busy', 'Starting over…');
      await stopTraining();
      await newSession(msg.config, msg.pasted);
      await forgetStoredTextModel().catch(() => undefined);
      return setState(idleState());
    case 'sample':
      return requestSample(msg.prompt, msg.temperature);
    case 'sampling':
      sampling = { prompt: msg.prompt, temperature: msg.temperature };
      return;
    case 'download':
      return download();
    case 'gpt2':
      setState('busy', `Reading ${msg.fileName}…`);
      await stopTraining();
      await fineTuneGpt2(msg.bytes, msg.fileName, msg.config, msg.pasted);
      return setState(idleState());
    case 'load':
      setState('busy', `Loading ${msg.fileName}…`);
      await stopTraining();
      await load(msg.bytes, msg.fileName, msg.pasted);
      return setState(idleState());
  }
}

let inbox: Promise<void> = Promise.resolve();
self.onmessage = (ev: MessageEvent<ToTextWorker>) => {
  const msg = ev.data;
  inbox = inbox.then(() =>
    handle(msg).catch((e: unknown) => {
      send({ type: 'error', message: (e as Error).message ?? String(e) });
      if (state !== 'starting') setState(idleState());
    }),
  );
};
