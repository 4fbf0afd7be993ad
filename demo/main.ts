// The demo page's entry, and its Digits mode: controls, readouts, charts and the drawing pad.
// Training runs in a Worker (worker.ts); this page sends it the user's requests and shows what it
// reports (protocol.ts). The Text mode is text-page.ts; mode.ts switches between the two.

import { TrainingCharts } from './charts';
import { showAdapters, showDevice } from './device-panel';
import { ProfilePanel } from './profile-panel';
import { TogetherPanel } from './together-panel';
import { DrawingPad, showInput } from './draw';
import { ProbabilityBars } from './prediction';
import type { DeviceInfo, MemoryStats } from '../src/index';
import { $, backendChoice, downloadFile, formatDate, memoryText, planText, selectValue, showUnavailable } from './page-shared';
import { setUpModes } from './mode';
import { startTextDemo } from './text-page';
import {
  QUICK_EVAL_DIGITS,
  type EvalPoint,
  type FromWorker,
  type OptimizerKind,
  type PlanInfo,
  type Progress,
  type RunState,
  type ToWorker,
  type TrainConfig,
} from './protocol';

/** The learning rate the optimizer selector suggests. */
const DEFAULT_LR: Record<OptimizerKind, number> = { sgd: 0.05, adam: 0.001 };
/** The loss readout averages this many recent steps (one step's loss is noisy). */
const LOSS_WINDOW = 10;

const controls = {
  model: $<HTMLSelectElement>('model'),
  optimizer: $<HTMLSelectElement>('optimizer'),
  lr: $<HTMLInputElement>('lr'),
  batchSize: $<HTMLSelectElement>('batch-size'),
  microBatch: $<HTMLSelectElement>('micro-batch'),
  augment: $<HTMLInputElement>('augment'),
};
const buttons = {
  train: $<HTMLButtonElement>('train'),
  pause: $<HTMLButtonElement>('pause'),
  reset: $<HTMLButtonElement>('reset'),
  download: $<HTMLButtonElement>('download'),
  load: $<HTMLInputElement>('load'),
  clear: $<HTMLButtonElement>('clear'),
};

let profilePanel: ProfilePanel | null = null;

/** What the page knows of the worker's state. */
let runState: RunState = 'starting';
let trainedSteps = 0;
let recentLosses: number[] = [];
let firstLosses: number[] = [];

function readConfig(): TrainConfig {
  const micro = controls.microBatch.value;
  return {
    model: controls.model.value === 'cnn' ? 'cnn' : 'mlp',
    optimizer: controls.optimizer.value === 'adam' ? 'adam' : 'sgd',
    lr: Number(controls.lr.value),
    batchSize: Number(controls.batchSize.value),
    microBatchSize: micro === 'auto' ? 'auto' : Number(micro),
    augment: controls.augment.checked,
  };
}

function writeConfig(c: TrainConfig): void {
  controls.model.value = c.model;
  controls.optimizer.value = c.optimizer;
  controls.lr.value = String(c.lr);
  selectValue(controls.batchSize, String(c.batchSize));
  selectValue(controls.microBatch, String(c.microBatchSize));
  controls.augment.checked = c.augment;
}

/** Which controls can be used now, and a hint about the others. */
function updateControls(): void {
  const idle = runState === 'ready' || runState === 'paused';
  const training = runState === 'training';
  buttons.train.disabled = !idle || !controls.lr.checkValidity() || !(Number(controls.lr.value) > 0);
  buttons.pause.disabled = !training;
  buttons.reset.disabled = !(idle || training);
  buttons.download.disabled = !(idle || training);
  buttons.load.disabled = !idle;
  // The network and its optimizer are fixed once it has learned something; Reset starts over.
  const fresh = trainedSteps === 0;
  controls.model.disabled = !idle || !fresh;
  controls.optimizer.disabled = !idle || !fresh;
  for (const c of [controls.lr, controls.batchSize, controls.microBatch, controls.augment]) c.disabled = !idle;
  profilePanel?.setEnabled(idle || training);
  $('controls-hint').textContent = training
    ? 'Pause to change the settings.'
    : idle && !fresh
      ? 'Reset to choose another model or optimizer.'
      : '';
}

function setStatus(state: RunState, detail: string, progress?: number): void {
  runState = state;
  const status = $('status');
  status.dataset.state = state;
  const bar = $<HTMLProgressElement>('status-progress');
  bar.hidden = progress === undefined;
  if (progress !== undefined) bar.value = progress;
  const words: Record<RunState, string> = {
    starting: 'Starting…',
    ready: 'Ready: press Train.',
    training: 'Training…',
    pausing: 'Pausing after this step…',
    paused: 'Paused. Train continues where it stopped.',
    busy: 'Working…',
  };
  status.textContent = detail || words[state];
  updateControls();
}

function showError(message: string | null): void {
  const el = $('error');
  el.hidden = message === null;
  el.textContent = message ?? '';
}

function showLoss(): void {
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  $('loss').textContent = recentLosses.length ? mean(recentLosses).toFixed(4) : '—';
  $('loss-start').textContent = firstLosses.length ? `(mean of the last ${recentLosses.length} steps; it started at ${mean(firstLosses).toFixed(4)})` : '';
}

function addLoss(loss: number): void {
  if (firstLosses.length < LOSS_WINDOW) firstLosses.push(loss);
  recentLosses.push(loss);
  if (recentLosses.length > LOSS_WINDOW) recentLosses.shift();
}

/** The step count's detail: where it is in the data. */
function showPosition(p: Progress, batch: number, batchesPerEpoch: number): void {
  $('epoch').textContent =
    p.samplesInEpoch > 0
      ? `(epoch ${p.epoch + 1}, batch ${batch} of ${batchesPerEpoch})`
      : p.epoch > 0
        ? `(${p.epoch} epoch${p.epoch === 1 ? '' : 's'} done)`
        : '';
}

function showSpeed(samplesPerSecond: number | undefined, detail = ''): void {
  $('speed').textContent = samplesPerSecond ? `${Math.round(samplesPerSecond).toLocaleString('en')} samples/s` : '—';
  $('speed-detail').textContent = samplesPerSecond ? detail : '';
}

function showPlan(p: PlanInfo | null): void {
  [$('plan').textContent, $('plan-reason').textContent] = planText(p);
}

function showMemory(m: MemoryStats, during: 'step' | 'idle'): void {
  [$('memory').textContent, $('memory-detail').textContent] = memoryText(m, during, 'the model and its optimizer’s state');
}

function showEval(p: EvalPoint): void {
  $('accuracy').textContent = `${(p.accuracy * 100).toFixed(1)}%`;
  $('accuracy-detail').textContent = `on ${p.digits === QUICK_EVAL_DIGITS ? `${p.digits} held-out digits` : `all ${p.digits.toLocaleString('en')} held-out digits`} at step ${p.step}`;
}

function startDemo(): void {
  const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module', name: 'webgrad training' });
  const post = (msg: ToWorker, transfer: Transferable[] = []): void => worker.postMessage(msg, transfer);
  const charts = new TrainingCharts($('loss-chart'), $('accuracy-chart'));
  const bars = new ProbabilityBars($('probabilities'), $('verdict'));
  const seen = $<HTMLCanvasElement>('seen');
  profilePanel = new ProfilePanel($('profile'), $('profile-table'), $('profile-note'), () => post({ type: 'profile', config: readConfig() }));
  const together = new TogetherPanel($('together-card'), (url) => post({ type: 'together', url }));
  let deviceInfo: DeviceInfo | null = null;

  // Each drawing (and Clear) gets a new number; only answers about the current one are shown
  // (one asked before Clear, or before the drawing changed, may arrive after it).
  let drawingId = 0;
  // One prediction in flight at a time; while it runs, only the newest drawing waits.
  let inFlight: number | null = null;
  let waiting: Float32Array | null = null;
  const predict = (pixels: Float32Array): void => {
    if (inFlight !== null) {
      waiting = pixels;
      return;
    }
    inFlight = drawingId;
    post({ type: 'predict', id: drawingId, pixels }, [pixels.buffer]);
  };
  const pad = new DrawingPad($<HTMLCanvasElement>('pad'), (pixels) => {
    drawingId++;
    showInput(seen, pixels);
    if (pixels) predict(new Float32Array(pixels));
    else {
      waiting = null;
      bars.show(null);
      post({ type: 'clear-drawing' });
    }
  });

  worker.onmessage = (ev: MessageEvent<FromWorker>) => {
    const msg = ev.data;
    switch (msg.type) {
      case 'device':
        deviceInfo = msg.info;
        showDevice($('device'), msg.info);
        break;
      case 'adapters':
        if (deviceInfo) showAdapters($('device'), deviceInfo, msg.adapters);
        break;
      case 'profile':
        profilePanel!.show(msg.profile);
        updateControls();
        break;
      case 'unavailable':
        worker.terminate();
        showUnavailable(msg.message);
        break;
      case 'status':
        setStatus(msg.state, msg.detail, msg.progress);
        break;
      case 'model': {
        showError(null);
        writeConfig(msg.config);
        trainedSteps = msg.progress.step;
        firstLosses = msg.history.loss.slice(0, LOSS_WINDOW).map(([, l]) => l);
        recentLosses = msg.history.loss.slice(-LOSS_WINDOW).map(([, l]) => l);
        $('step').textContent = String(msg.progress.step);
        showPosition(msg.progress, msg.batch, msg.batchesPerEpoch);
        showLoss();
        const lastEval = msg.history.evals.at(-1);
        if (lastEval) showEval(lastEval);
        else {
          $('accuracy').textContent = '—';
          $('accuracy-detail').textContent = '';
        }
        showSpeed(msg.history.samplesPerSecond, '(when it last trained)');
        showMemory(msg.memory, 'idle');
        showPlan(msg.plan);
        charts.reset(msg.history);
        const size = `${msg.parameters.toLocaleString('en')} parameters`;
        const o = msg.origin;
        const what = `${msg.config.model.toUpperCase()}, ${size}`;
        const { step, epoch } = msg.progress;
        // The command line's checkpoints count epochs, not steps.
        const trained = step > 0 ? `${step} steps trained` : epoch > 0 ? `${epoch} epochs trained` : 'untrained';
        $('model-note').textContent =
          o.kind === 'restored'
            ? `Restored model from ${formatDate(o.savedAt)}: ${what}, ${trained}.`
            : o.kind === 'file'
              ? `Loaded ${o.fileName}: ${what}, ${trained}.`
              : `New model: ${what}.`;
        updateControls();
        break;
      }
      case 'step': {
        const p = msg.progress;
        trainedSteps = p.step;
        $('step').textContent = String(p.step);
        showPosition(p, msg.batch, msg.batchesPerEpoch);
        addLoss(msg.loss);
        showLoss();
        charts.addLoss(p.step, msg.loss);
        showSpeed(msg.samplesPerSecond);
        showMemory(msg.memory, 'step');
        break;
      }
      case 'plan':
        showPlan(msg.plan);
        break;
      case 'eval':
        showEval(msg.point);
        charts.addEval(msg.point);
        break;
      case 'prediction':
        if (msg.id === drawingId) bars.show(msg.probabilities);
        if (msg.id !== inFlight) break; // a re-reading after an evaluation
        inFlight = null;
        if (waiting) {
          const next = waiting;
          waiting = null;
          predict(next);
        }
        break;
      case 'checkpoint':
        downloadFile(msg.bytes, msg.fileName);
        break;
      case 'stored':
        $('stored-note').textContent = `Kept in this browser at ${formatDate(msg.savedAt)}: a reload continues from here.`;
        break;
      case 'together':
        together.show(msg.status);
        break;
      case 'error':
        showError(msg.message);
        break;
    }
  };
  worker.onerror = (ev) => showError(`The training worker failed: ${ev.message || 'it could not be started'}`);

  buttons.train.onclick = () => {
    showError(null);
    post({ type: 'train', config: readConfig() });
  };
  buttons.pause.onclick = () => post({ type: 'pause' });
  buttons.reset.onclick = () => post({ type: 'reset', config: readConfig() });
  buttons.download.onclick = () => post({ type: 'download' });
  buttons.clear.onclick = () => pad.clear();
  buttons.load.onchange = async () => {
    const file = buttons.load.files?.[0];
    if (!file) return;
    const bytes = new Uint8Array(await file.arrayBuffer());
    buttons.load.value = '';
    post({ type: 'load', bytes, fileName: file.name }, [bytes.buffer]);
  };
  // A new model when the choice changes before any training (afterwards these are locked).
  controls.model.onchange = () => post({ type: 'reset', config: readConfig() });
  controls.optimizer.onchange = () => {
    controls.lr.value = String(DEFAULT_LR[readConfig().optimizer]);
    post({ type: 'reset', config: readConfig() });
  };
  controls.lr.oninput = updateControls;

  post({ type: 'start', config: readConfig(), backend: backendChoice() });
}

// Each mode starts its worker when it is first shown.
setUpModes({ mnist: startDemo, text: startTextDemo });
