// The demo's models and their files. A file is a webgrad checkpoint (wg.io.saveCheckpoint: the
// model, the optimizer state, and the settings and progress as metadata), so a download, a reload
// and `npm run train -- --resume` all continue the same training. Loading also accepts the CLI's
// checkpoints and plain state dicts (wg.io.saveSafetensors(model.stateDict())): the network's
// layer sizes are read from the tensor shapes, and everything is checked before the model changes.
// The page's files also carry the training history (the charts' curves), so that loading one
// shows where it stands.

import * as wg from '../src/index';
import type { EvalPoint, History, ModelKind, OptimizerKind, Progress, TrainConfig } from './protocol';

/** A file's history is not trusted beyond this many points per curve (a day of steps at 10 per second). */
const MAX_HISTORY_POINTS = 1_000_000;

/** A network the demo can build: the kind and its layer sizes. */
export type Architecture = { kind: 'mlp'; hidden: number } | { kind: 'cnn'; channels: [number, number] };

export const DEFAULT_ARCHITECTURE: Record<ModelKind, Architecture> = {
  mlp: { kind: 'mlp', hidden: 256 },
  cnn: { kind: 'cnn', channels: [16, 32] },
};

/** The metadata the demo writes into a checkpoint's progress. */
interface SavedProgress extends Progress {
  model: ModelKind;
  optimizer: OptimizerKind;
  settings: Omit<TrainConfig, 'model' | 'optimizer'>;
  history: History;
}

export function buildModel(a: Architecture): wg.nn.Sequential {
  return a.kind === 'mlp' ? wg.models.mnistMLP({ hidden: a.hidden }) : wg.models.mnistCNN({ channels: a.channels });
}

export function buildOptimizer(kind: OptimizerKind, model: wg.nn.Module, lr: number): wg.optim.Optimizer {
  const params = model.parameters();
  return kind === 'adam' ? new wg.optim.Adam(params, { lr }) : new wg.optim.SGD(params, { lr, momentum: 0.9 });
}

export function saveModel(
  model: wg.nn.Module,
  optimizer: wg.optim.Optimizer,
  config: TrainConfig,
  progress: Progress,
  history: History,
): Promise<Uint8Array> {
  const { model: kind, optimizer: optimizerKind, ...settings } = config;
  const saved: SavedProgress = { ...progress, model: kind, optimizer: optimizerKind, settings, history };
  return wg.io.saveCheckpoint({ model, optimizer, progress: { ...saved } });
}

/** What a file holds, read from its header alone (no GPU work). */
export interface FileContents {
  architecture: Architecture;
  /** The optimizer whose state the file carries, or null when it has none. */
  optimizer: OptimizerKind | null;
  /** Settings and progress saved with it (what the file does not say is left out). */
  settings: Partial<TrainConfig>;
  progress: Progress;
  /** The training history saved with it (this page's files), or null. */
  history: History | null;
  /** A webgrad checkpoint (tensors under "model."), or a plain state dict. */
  isCheckpoint: boolean;
}

export function describeFile(bytes: Uint8Array): FileContents {
  const header = wg.io.readSafetensorsHeader(bytes);
  const rawMeta = header.metadata['webgrad.checkpoint'];
  const isCheckpoint = rawMeta !== undefined;
  const prefix = isCheckpoint ? 'model.' : '';
  const shapeOf = (name: string): number[] | undefined => header.tensors[prefix + name]?.shape;
  const architecture = architectureFrom(shapeOf);

  const names = Object.keys(header.tensors);
  const optimizerFromState: OptimizerKind | null = names.some((n) => n.endsWith('.momentumBuffer'))
    ? 'sgd'
    : names.some((n) => n.endsWith('.expAvg'))
      ? 'adam'
      : null;
  const saved = isCheckpoint ? savedProgress(rawMeta) : {};
  const settings: Partial<TrainConfig> = { ...validSettings(saved.settings), model: architecture.kind };
  if (optimizerFromState) settings.optimizer = optimizerFromState;
  else if (saved.optimizer === 'sgd' || saved.optimizer === 'adam') settings.optimizer = saved.optimizer;
  return {
    architecture,
    optimizer: optimizerFromState,
    settings,
    progress: { step: count(saved.step), epoch: count(saved.epoch), samplesInEpoch: count(saved.samplesInEpoch) },
    history: validHistory(saved.history),
    isCheckpoint,
  };
}

/**
 * Copies the file's tensors into `model` (and its state into `optimizer`, when the file has
 * state for that kind of optimizer). Throws, changing nothing, when names or shapes differ.
 */
export function loadModel(bytes: Uint8Array, contents: FileContents, model: wg.nn.Module, optimizer: wg.optim.Optimizer, kind: OptimizerKind): void {
  if (contents.isCheckpoint) {
    wg.io.loadCheckpoint(bytes, { model, optimizer: contents.optimizer === kind ? optimizer : undefined });
    return;
  }
  const tensors = wg.io.loadSafetensors(bytes);
  try {
    model.loadStateDict(tensors);
  } finally {
    for (const t of Object.values(tensors)) t.dispose();
  }
}

function architectureFrom(shapeOf: (name: string) => number[] | undefined): Architecture {
  const conv1 = shapeOf('0.weight');
  const conv2 = shapeOf('3.weight');
  if (conv1?.length === 4 && conv2?.length === 4) return { kind: 'cnn', channels: [conv1[0]!, conv2[0]!] };
  const fc1 = shapeOf('1.weight');
  if (fc1?.length === 2 && fc1[1] === 28 * 28) return { kind: 'mlp', hidden: fc1[0]! };
  throw new wg.WebGradError(
    'this file is not one of the demo’s MNIST models: expected an MLP (a [hidden, 784] weight "1.weight") or a ' +
      'CNN (convolution weights "0.weight" and "3.weight"), as saved by this page or `npm run train`',
  );
}

function savedProgress(rawMeta: string): Partial<SavedProgress> {
  try {
    return (JSON.parse(rawMeta) as { progress?: Partial<SavedProgress> }).progress ?? {};
  } catch (e) {
    throw new wg.WebGradError(`the checkpoint's metadata is not valid JSON (${(e as Error).message})`);
  }
}

/** The saved settings that make sense (a file may come from anywhere). */
function validSettings(raw: unknown): Partial<TrainConfig> {
  const out: Partial<TrainConfig> = {};
  if (typeof raw !== 'object' || raw === null) return out;
  const r = raw as Record<string, unknown>;
  if (typeof r.lr === 'number' && r.lr > 0 && Number.isFinite(r.lr)) out.lr = r.lr;
  if (typeof r.batchSize === 'number' && Number.isInteger(r.batchSize) && r.batchSize >= 1) out.batchSize = r.batchSize;
  if (r.microBatchSize === 'auto' || (typeof r.microBatchSize === 'number' && Number.isInteger(r.microBatchSize) && r.microBatchSize >= 1)) {
    out.microBatchSize = r.microBatchSize;
  }
  if (typeof r.augment === 'boolean') out.augment = r.augment;
  return out;
}

/** The saved history if it has the expected form (a file may come from anywhere), else null. */
function validHistory(raw: unknown): History | null {
  if (typeof raw !== 'object' || raw === null) return null;
  const r = raw as Record<string, unknown>;
  const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
  if (!Array.isArray(r.loss) || !Array.isArray(r.evals) || r.loss.length > MAX_HISTORY_POINTS || r.evals.length > MAX_HISTORY_POINTS) return null;
  // Non-finite losses are saved as null by JSON; they are left out of the chart anyway.
  const loss = r.loss.filter((p): p is [number, number] => Array.isArray(p) && p.length === 2 && finite(p[0]) && (finite(p[1]) || p[1] === null));
  const evals = r.evals.filter(
    (p): p is EvalPoint =>
      typeof p === 'object' && p !== null && finite(p.step) && finite(p.accuracy) && p.accuracy >= 0 && p.accuracy <= 1 && finite(p.digits),
  );
  if (loss.length !== r.loss.length || evals.length !== r.evals.length) return null;
  const history: History = { loss: loss.map(([s, l]) => [s, l ?? NaN]), evals: evals.map((p) => ({ step: p.step, accuracy: p.accuracy, loss: finite(p.loss) ? p.loss : NaN, digits: p.digits })) };
  if (finite(r.samplesPerSecond) && r.samplesPerSecond > 0) history.samplesPerSecond = r.samplesPerSecond;
  return history;
}

function count(v: unknown): number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : 0;
}
