// The training worker: owns the device (WebGPU works in Workers; without a usable GPU, the CPU
// backend's threads are Workers of their own), the model, the optimizer and the
// training history, so the page stays responsive while it trains. It streams progress to the page
// (protocol.ts), evaluates on held-out digits as it goes, reads drawings, and keeps the latest
// model in IndexedDB after every epoch and on pause.
//
// The first step is made as short as it can be: its GPU pipelines are compiled ahead, in the
// background and with progress (Trainer.precompile), and kernels are tuned to the GPU only after
// it (wg.autotune between steps, with progress; Pause stops it), so the first loss comes quickly.

import * as wg from '../src/index';
import {
  DEFAULT_ARCHITECTURE,
  buildModel,
  buildOptimizer,
  describeFile,
  loadModel,
  saveModel,
  type Architecture,
} from './checkpoint';
import {
  EVAL_EVERY_STEPS,
  QUICK_EVAL_DIGITS,
  type FromWorker,
  type History,
  type PlanInfo,
  type Progress,
  type RunState,
  type ToWorker,
  type TrainConfig,
} from './protocol';
import { forgetStoredModel, loadStoredModel, storeModel } from './storage';
import { exclusive, planInfo, RateMeter, startBackend, tuneKernels, yieldToMessages } from './worker-shared';
import { nextStepProfile, profiledStep } from './profile-step';
import { Together } from './together-worker';

const EVAL_BATCH = 500;
/** samples/s is measured over this many recent steps. */
const SPEED_WINDOW = 20;
/** Seeds of the initial weights and of the data order, so that a run can be repeated. */
const MODEL_SEED = 1;
const DATA_SEED = 1;

interface Session {
  architecture: Architecture;
  config: TrainConfig;
  model: wg.nn.Sequential;
  optimizer: wg.optim.Optimizer;
  progress: Progress;
  history: History;
}

interface Digits {
  train: wg.data.Dataset;
  test: wg.data.Dataset;
  /** The first QUICK_EVAL_DIGITS of test (they mix all ten digits). */
  quick: wg.data.Dataset;
}

let digits: Digits;
let session: Session | null = null;
let state: RunState = 'starting';
/** The running training loop, and whether it was asked to stop after the current step. */
let training: Promise<void> | null = null;
let stopRequested = false;
/** Aborts kernel tuning under way when training is asked to stop. */
let stopTuning = new AbortController();
/** The last drawing (numbered by the page), re-read as the model learns. */
let drawing: { id: number; pixels: Float32Array } | null = null;
/** Training with others, when the user joined a session (the "Train together" panel). */
const together = new Together(send, DATA_SEED);

function send(msg: FromWorker, transfer: Transferable[] = []): void {
  self.postMessage(msg, { transfer });
}

function setState(next: RunState, detail = '', progress?: number): void {
  state = next;
  send({ type: 'status', state: next, detail, progress });
}

function idleState(): RunState {
  return session && session.progress.step > 0 ? 'paused' : 'ready';
}

// ---- starting up ----

async function start(config: TrainConfig, backend: wg.BackendChoice): Promise<void> {
  setState('starting', backend === 'wasm' ? 'Starting the CPU backend…' : 'Starting WebGPU…');
  if (!(await startBackend(backend, send))) return;
  setState('starting', 'Loading 10,000 handwritten digits…');
  const { train, test } = await wg.data.mnist();
  digits = { train, test, quick: wg.data.subset(test, Array.from({ length: QUICK_EVAL_DIGITS }, (_, i) => i)) };
  if (!(await restoreStored(config))) newSession(config);
  setState(idleState());
}

/** Continues the model kept in IndexedDB, if there is one that loads. */
async function restoreStored(config: TrainConfig): Promise<boolean> {
  let stored;
  try {
    stored = await loadStoredModel();
  } catch (e) {
    send({ type: 'error', message: `Could not read the model kept in this browser: ${(e as Error).message}` });
    return false;
  }
  if (!stored) return false;
  try {
    replaceSession(fromFile(stored.checkpoint, config), stored.history);
  } catch (e) {
    send({ type: 'error', message: `The model kept in this browser could not be restored (${(e as Error).message}); starting afresh.` });
    return false;
  }
  announce({ kind: 'restored', savedAt: stored.savedAt });
  return true;
}

// ---- models ----

function newSession(config: TrainConfig): void {
  wg.manualSeed(MODEL_SEED);
  const architecture = DEFAULT_ARCHITECTURE[config.model];
  const model = buildModel(architecture);
  const optimizer = buildOptimizer(config.optimizer, model, config.lr);
  replaceSession({ architecture, config, model, optimizer, progress: { step: 0, epoch: 0, samplesInEpoch: 0 }, history: { loss: [], evals: [] } });
  announce({ kind: 'new' });
}

/** A session from a checkpoint file; throws (leaving nothing allocated) if it does not load. */
function fromFile(bytes: Uint8Array, fallback: TrainConfig): Session {
  const contents = describeFile(bytes);
  const config: TrainConfig = { ...fallback, ...contents.settings };
  const model = buildModel(contents.architecture);
  const optimizer = buildOptimizer(config.optimizer, model, config.lr);
  try {
    loadModel(bytes, contents, model, optimizer, config.optimizer);
  } catch (e) {
    model.dispose();
    optimizer.dispose();
    throw e;
  }
  config.lr = optimizer.lr;
  // The page's own files bring their curves; others (the command line's) start them at their step.
  const history = contents.history ?? { loss: [], evals: [] };
  return { architecture: contents.architecture, config, model, optimizer, progress: contents.progress, history };
}

function replaceSession(next: Session, history?: History): void {
  if (session) {
    session.optimizer.dispose();
    session.model.dispose();
  }
  if (history) next.history = history;
  session = next;
}

function announce(origin: Extract<FromWorker, { type: 'model' }>['origin']): void {
  const s = session!;
  const batchSize = Math.min(s.config.batchSize, digits.train.size);
  let plan: PlanInfo | null = null;
  try {
    const trainer = new wg.Trainer({ model: s.model, optimizer: s.optimizer, loss: 'cross-entropy', microBatchSize: s.config.microBatchSize });
    plan = planInfo(batchSize, trainer.plan([batchSize, 1, 28, 28]));
  } catch (e) {
    if (!(e instanceof wg.LimitError)) throw e; // not even one sample fits: Train will say so
  }
  send({
    type: 'model',
    config: s.config,
    parameters: s.model.parameters().reduce((n, p) => n + p.size, 0),
    progress: s.progress,
    ...batchOf(s.progress, batchSize),
    history: s.history,
    plan,
    memory: wg.memory(),
    origin,
  });
  void repredict();
}

/** Where `progress` is in its epoch, in batches of `batchSize` (the loader drops the last partial batch). */
function batchOf(progress: Progress, batchSize: number): { batch: number; batchesPerEpoch: number } {
  return { batch: Math.round(progress.samplesInEpoch / batchSize), batchesPerEpoch: Math.floor(digits.train.size / batchSize) };
}

// ---- training ----

/** Starts the training loop with `config`'s lr, batch size, micro-batch size and augmentation. */
function train(config: TrainConfig): void {
  if (training || !session) return;
  const s = session;
  s.config = { ...config, model: s.config.model, optimizer: s.config.optimizer };
  s.optimizer.lr = config.lr;
  stopRequested = false;
  setState('training');
  training = trainLoop(s).finally(() => {
    together.leave();
    training = null;
    // Stopped by itself (an error, a diverged loss) rather than by a request: say so.
    if (!stopRequested) setState(idleState());
  });
}

async function trainLoop(s: Session): Promise<void> {
  const { microBatchSize, augment } = s.config;
  const batchSize = Math.min(s.config.batchSize, digits.train.size);
  // Tuning is left to tuneKernels(), between steps, where the page can show it.
  const trainer = new wg.Trainer({ model: s.model, optimizer: s.optimizer, loss: 'cross-entropy', microBatchSize, tuneBeforeSteps: false });
  const batchShape = [batchSize, 1, 28, 28];
  // dropLast: every step sees a full batch, so one plan covers the whole epoch.
  const loader = new wg.data.DataLoader(digits.train, { batchSize, shuffle: true, augment, seed: DATA_SEED, dropLast: true });
  const speed = new RateMeter(SPEED_WINDOW);
  let stepsHere = 0;
  let epoch: Iterator<wg.data.CpuBatch> | null = null;
  try {
    let plan = await trainer.precompile(batchShape, {
      onProgress: (p) => setState('training', `Compiling GPU kernels for this model: ${p.compiled}/${p.total}…`, p.compiled / p.total),
    });
    sendPlan(batchSize, plan);
    if (!stopRequested) setState('training', s.progress.step === 0 ? 'Taking the first step…' : '');
    while (!stopRequested) {
      await yieldToMessages();
      if (stopRequested) break;
      epoch ??= resumeEpoch(loader, s.progress);
      const next = epoch.next();
      if (next.done) {
        epoch = null;
        await finishEpoch(s);
        continue;
      }
      const b = next.value;
      const started = performance.now();
      const result = await exclusive(async () => {
        const x = wg.tensor(b.x, b.shape);
        const y = wg.tensor(b.y, [b.size], { dtype: 'int32' });
        try {
          return await profiledStep(s.progress.step + 1, () => together.step(s, trainer, x, y));
        } finally {
          x.dispose();
          y.dispose();
        }
      });
      speed.add(b.size, performance.now() - started);
      s.progress.step++;
      s.progress.samplesInEpoch += b.size;
      // Just joined a session that is elsewhere in the data: continue from its place.
      if (together.realign(s.progress, loader)) epoch = null;
      s.history.loss.push([s.progress.step, result.loss]);
      s.history.samplesPerSecond = speed.perSecond();
      send({
        type: 'step',
        progress: { ...s.progress },
        ...batchOf(s.progress, batchSize),
        loss: result.loss,
        samplesPerSecond: speed.perSecond(),
        microBatches: result.microBatches,
        memory: wg.memory(),
      });
      if (stepsHere++ === 0 && state === 'training') setState('training');
      if (result.microBatchSize !== plan.microBatchSize) {
        // Out-of-memory recovery changed the plan.
        plan = trainer.plan(batchShape);
        sendPlan(batchSize, plan);
      }
      if (!Number.isFinite(result.loss)) {
        send({ type: 'error', message: `The loss became ${result.loss}: the learning rate is too high for this model. Lower it and press Reset.` });
        break;
      }
      if (s.progress.step % EVAL_EVERY_STEPS === 0) await evaluate(s, digits.quick);
      // Kernels that met a new shape class (in the first step, an evaluation, a drawing) are
      // timed now, between steps: the first step runs on the defaults rather than wait for this.
      if (!stopRequested) await tune();
    }
  } catch (e) {
    send({ type: 'error', message: `Training stopped: ${(e as Error).message}` });
  }
}

/** The rest of the current epoch: its batches, less those already trained on. */
function resumeEpoch(loader: wg.data.DataLoader, progress: Progress): Iterator<wg.data.CpuBatch> {
  loader.epoch = progress.epoch;
  const batches = loader.cpuBatches();
  let skipped = 0;
  while (skipped + loader.batchSize <= progress.samplesInEpoch) {
    if (batches.next().done) break;
    skipped += loader.batchSize;
  }
  progress.samplesInEpoch = skipped;
  return batches;
}

async function finishEpoch(s: Session): Promise<void> {
  s.progress.epoch++;
  s.progress.samplesInEpoch = 0;
  await evaluate(s, digits.test);
  await store(s);
}

async function evaluate(s: Session, data: wg.data.Dataset): Promise<void> {
  const trainer = new wg.Trainer({ model: s.model, optimizer: s.optimizer, loss: 'cross-entropy' });
  const { loss, accuracy } = await exclusive(() => trainer.evaluate(data, { batchSize: EVAL_BATCH }));
  const point = { step: s.progress.step, accuracy, loss, digits: data.size };
  s.history.evals.push(point);
  send({ type: 'eval', point });
  await repredict();
}

/** Times the kernels' configurations for shape classes met since the last call, showing progress. */
async function tune(): Promise<void> {
  const tuned = await tuneKernels(stopTuning.signal, (detail, share) => {
    if (!stopRequested) setState('training', detail, share);
  });
  if (tuned && !stopRequested) setState('training');
}

function sendPlan(batchSize: number, p: wg.Plan): void {
  send({ type: 'plan', plan: planInfo(batchSize, p) });
}

/** Stops the training loop after its current step (or kernel tuning under way) and waits for it. */
async function stopTraining(): Promise<void> {
  stopRequested = true;
  stopTuning.abort();
  await training;
  stopTuning = new AbortController();
}

// ---- files and storage ----

async function store(s: Session): Promise<void> {
  try {
    const checkpoint = await exclusive(() => saveModel(s.model, s.optimizer, s.config, s.progress, s.history));
    const savedAt = Date.now();
    await storeModel({ savedAt, checkpoint, history: s.history });
    send({ type: 'stored', savedAt });
  } catch (e) {
    send({ type: 'error', message: `Could not keep the model in this browser’s storage: ${(e as Error).message}` });
  }
}

async function download(): Promise<void> {
  const s = session!;
  const bytes = await exclusive(() => saveModel(s.model, s.optimizer, s.config, s.progress, s.history));
  const fileName = `webgrad-mnist-${s.config.model}-step${s.progress.step}.safetensors`;
  send({ type: 'checkpoint', bytes, fileName }, [bytes.buffer]);
}

async function load(bytes: Uint8Array, fileName: string): Promise<void> {
  const s = session!;
  try {
    replaceSession(await exclusive(async () => fromFile(bytes, s.config)));
  } catch (e) {
    send({ type: 'error', message: `${fileName} could not be loaded: ${(e as Error).message}` });
    return;
  }
  announce({ kind: 'file', fileName });
  await store(session!);
}

// ---- reading drawings ----

async function predict(id: number, pixels: Float32Array): Promise<void> {
  drawing = { id, pixels };
  await repredict();
}

/**
 * Reads the last drawing with the current model (after each evaluation too, so the bars follow
 * training). The answer names the drawing: the page drops answers about one it no longer shows.
 */
async function repredict(): Promise<void> {
  if (!drawing || !session) return;
  const { id, pixels } = drawing;
  const model = session.model;
  const probabilities = await exclusive(async () => {
    const wasTraining = model.training;
    model.eval();
    try {
      const p = wg.noGrad(() => wg.tidy(() => wg.softmax(model.forward(wg.tensor(pixels, [1, 1, 28, 28])), 1)));
      try {
        return Array.from(await p.toArray());
      } finally {
        p.dispose();
      }
    } finally {
      model.train(wasTraining);
    }
  });
  send({ type: 'prediction', id, probabilities });
}

// ---- messages ----

async function handle(msg: ToWorker): Promise<void> {
  switch (msg.type) {
    case 'start':
      return start(msg.config, msg.backend);
    case 'train':
      return train(msg.config);
    case 'pause':
      if (!training) return;
      setState('pausing');
      await stopTraining();
      await store(session!);
      return setState(idleState());
    case 'reset':
      setState('busy', 'Starting over…');
      await stopTraining();
      newSession(msg.config);
      await forgetStoredModel().catch(() => undefined);
      return setState(idleState());
    case 'predict':
      return predict(msg.id, msg.pixels);
    case 'clear-drawing':
      drawing = null;
      return;
    case 'download':
      return download();
    case 'together':
      return together.setUrl(msg.url);
    case 'profile': {
      const profiled = nextStepProfile().then((profile) => send({ type: 'profile', profile }));
      if (training || !session) return;
      // Idle: one step, profiled, then pause as the Pause button does.
      train(msg.config);
      await Promise.race([profiled, training]); // training may stop (an error) before its first step
      setState('pausing');
      await stopTraining();
      await store(session);
      return setState(idleState());
    }
    case 'load':
      setState('busy', `Loading ${msg.fileName}…`);
      await stopTraining();
      await load(msg.bytes, msg.fileName);
      return setState(idleState());
  }
}

// Messages are handled in order; a training loop runs alongside, between its awaits.
let inbox: Promise<void> = Promise.resolve();
self.onmessage = (ev: MessageEvent<ToWorker>) => {
  const msg = ev.data;
  inbox = inbox.then(() =>
    handle(msg).catch((e: unknown) => {
      send({ type: 'error', message: (e as Error).message ?? String(e) });
      if (state !== 'starting') setState(idleState());
    }),
  );
};
