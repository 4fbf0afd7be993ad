// The messages between the demo page (main.ts) and the training worker (worker.ts). The worker
// owns the GPU, the model and the training history; the page only shows what it is told and
// sends the user's requests.

import type { AdapterSummary, BackendChoice, BackendName, DeviceInfo, KernelProfile, MemoryStats } from '../src/index';
import type { PeerInfo } from '../src/distributed';

/** The quick accuracy check: this many held-out digits, every EVAL_EVERY_STEPS steps. */
export const QUICK_EVAL_DIGITS = 500;
export const EVAL_EVERY_STEPS = 20;
/** wg.data.mnist()'s test split, evaluated in full at every epoch end. */
export const HELD_OUT_DIGITS = 2000;

export type ModelKind = 'mlp' | 'cnn';
export type OptimizerKind = 'sgd' | 'adam';

/** What the controls choose. Model and optimizer take effect on Reset; the rest on the next Train. */
export interface TrainConfig {
  model: ModelKind;
  optimizer: OptimizerKind;
  lr: number;
  batchSize: number;
  microBatchSize: number | 'auto';
  augment: boolean;
}

/** Where training stands: enough to continue exactly where it stopped. */
export interface Progress {
  /** Optimizer updates so far. */
  step: number;
  /** Completed epochs. */
  epoch: number;
  /** Training samples already used in the current epoch. */
  samplesInEpoch: number;
}

/** One test-accuracy measurement. */
export interface EvalPoint {
  step: number;
  accuracy: number;
  loss: number;
  /** How many held-out digits it covered (a quick subset, or all of them at an epoch end). */
  digits: number;
}

/**
 * Everything the charts and readouts show of past training, so that a restored or loaded model
 * brings its curves back (kept in IndexedDB, and in the checkpoint files the page saves).
 */
export interface History {
  /** [step, training loss] per step. */
  loss: [number, number][];
  evals: EvalPoint[];
  /** Samples per second when it last trained (absent before its first step). */
  samplesPerSecond?: number;
}

export type RunState = 'starting' | 'ready' | 'training' | 'pausing' | 'paused' | 'busy';

/** The Trainer's micro-batch plan, as shown to the user. */
export interface PlanInfo {
  batchSize: number;
  microBatchSize: number;
  microBatches: number;
  estimatedPeakBytes: number;
  budgetBytes: number;
  reason: string;
}

/** One training step under wg.profile (profile-step.ts, profile-panel.ts). */
export interface StepProfile {
  /** The step it was (1-based). */
  step: number;
  /** The backend that ran it ('wasm': kernel times are CPU times). */
  backend: BackendName;
  /** GPU times from timestamp queries; false: only the step's wall time (or, on the CPU, each kernel's). */
  timestamps: boolean;
  totalGpuMs: number | null;
  wallMs: number;
  dispatches: number;
  submissions: number;
  kernels: KernelProfile[];
}

export type ToWorker =
  /**
   * The first message: start the backend (the page's ?backend=, 'auto' by default: WebGPU on a
   * GPU, the CPU without one), load the digits, restore the stored model or make one from `config`.
   */
  | { type: 'start'; config: TrainConfig; backend: BackendChoice }
  | { type: 'train'; config: TrainConfig }
  | { type: 'pause' }
  /** A fresh model (and optimizer) from `config`; forgets the stored one. */
  | { type: 'reset'; config: TrainConfig }
  /** 28×28 grey levels in [0, 1], row-major (see draw.ts); `id` numbers the drawing (the answer carries it). */
  | { type: 'predict'; id: number; pixels: Float32Array }
  /** Forget the drawing: stop re-predicting it as the model learns. */
  | { type: 'clear-drawing' }
  /** Ask for the model as a safetensors checkpoint (answered with 'checkpoint'). */
  | { type: 'download' }
  | { type: 'load'; bytes: Uint8Array; fileName: string }
  /** Profile the next training step (when idle: train one step, profiled, then pause). */
  | { type: 'profile'; config: TrainConfig }
  /** Train as a replica of the data-parallel session at this URL from the next step on; null: alone (together-worker.ts). */
  | { type: 'together'; url: string | null };

export type FromWorker =
  | { type: 'device'; info: DeviceInfo }
  /** Every adapter the browser offers (wg.adapters()). */
  | { type: 'adapters'; adapters: AdapterSummary[] }
  | { type: 'profile'; profile: StepProfile }
  /** No backend could start (WebGPU asked for and missing): the message says what is missing and how to enable it. */
  | { type: 'unavailable'; message: string }
  /** `progress`: the share (0–1) done of what `detail` describes (compiling kernels, tuning them), when it is counted. */
  | { type: 'status'; state: RunState; detail: string; progress?: number }
  /**
   * A model is in place (new, restored from storage, or loaded from a file): the page resets its
   * controls, charts and readouts to these.
   */
  | {
      type: 'model';
      config: TrainConfig;
      parameters: number;
      progress: Progress;
      /** Batches done in the current epoch, and per epoch, at the configured batch size. */
      batch: number;
      batchesPerEpoch: number;
      history: History;
      /** How a step at the configured batch size would be split (null when it cannot be planned). */
      plan: PlanInfo | null;
      /** GPU memory held now (the model, its optimizer state, the digits). */
      memory: MemoryStats;
      /** How it came to be, for the note under the model controls. */
      origin: { kind: 'new' } | { kind: 'restored'; savedAt: number } | { kind: 'file'; fileName: string };
    }
  | {
      type: 'step';
      progress: Progress;
      /** Batches done in the current epoch, and per epoch, at the current batch size. */
      batch: number;
      batchesPerEpoch: number;
      loss: number;
      samplesPerSecond: number;
      microBatches: number;
      memory: MemoryStats;
    }
  | { type: 'plan'; plan: PlanInfo }
  | { type: 'eval'; point: EvalPoint }
  /** Softmax of the model's output for drawing `id`, classes 0–9. */
  | { type: 'prediction'; id: number; probabilities: number[] }
  | { type: 'checkpoint'; bytes: Uint8Array; fileName: string }
  /** The model was kept in the browser's storage (IndexedDB). */
  | { type: 'stored'; savedAt: number }
  | { type: 'together'; status: TogetherStatus }
  | { type: 'error'; message: string };

/** Where this tab stands in a data-parallel session (together-panel.ts shows it). */
export interface TogetherStatus {
  /** off: training alone; waiting: joins when training runs; joined: a replica; failed: it could not join or was dropped. */
  state: 'off' | 'waiting' | 'joined' | 'failed';
  detail: string;
  url: string | null;
  rank: number;
  worldSize: number;
  peers: PeerInfo[];
}
