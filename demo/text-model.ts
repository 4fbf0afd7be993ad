// The Text mode's models and their files. A model is a character-level GPT trained as
// `npm run train -- --model gpt` trains it (nanoGPT's recipe for small character models: AdamW
// with betas (0.9, 0.99), weight decay 0.1 on weight matrices only, gradients clipped to norm 1,
// a linear warm-up), so the two read each other's checkpoints: the progress metadata names the
// text ("data") and the shape (layers, heads, dim, context) as the CLI's does, the tokenizer
// travels in the file, and the page adds its settings and training history.

import * as wg from '../src/index';
import type { GptShape, HeldOutPoint, TextConfig, TextHistory, TextSize, TextSource } from './text-protocol';
import { TEXT_SIZES } from './text-protocol';

export const WEIGHT_DECAY = 0.1;
export const CLIP_NORM = 1;
/** Steps over which the learning rate rises linearly to the chosen one. */
export const WARMUP_STEPS = 20;
/** A file's history is not trusted beyond this many points per curve. */
const MAX_HISTORY_POINTS = 1_000_000;

export interface TextModel {
  model: wg.models.GPT;
  optimizer: wg.optim.AdamW;
}

export function buildTextModel(shape: GptShape, vocabSize: number, lr: number): TextModel {
  const model = wg.models.gpt({ vocabSize, contextLength: shape.context, layers: shape.layers, heads: shape.heads, dim: shape.dim });
  const optimizer = new wg.optim.AdamW(wg.optim.decayGroups(model, WEIGHT_DECAY), { lr, betas: [0.9, 0.99] });
  return { model, optimizer };
}

/** The learning rate of step `step` (1-based): warm-up, then the chosen rate. */
export function lrAt(step: number, lr: number): number {
  return lr * Math.min(1, step / WARMUP_STEPS);
}

/** What the page writes into a checkpoint's progress (the CLI's fields, and the page's). */
interface SavedProgress extends GptShape {
  model: 'gpt';
  /** The text: 'moby-dick', 'names', or (the CLI's) a file name; the page's pasted text is 'pasted'. */
  data: string;
  steps: number;
  heldOutLoss?: number;
  settings: Omit<TextConfig, 'source' | 'size'>;
  size: TextSize | null;
  history: TextHistory;
}

export function saveTextModel(
  m: TextModel,
  tokenizer: wg.data.Tokenizer,
  shape: GptShape,
  config: TextConfig,
  steps: number,
  history: TextHistory,
): Promise<Uint8Array> {
  const { source, size, ...settings } = config;
  const progress: SavedProgress = { model: 'gpt', data: source, ...shape, steps, settings, size, history };
  const last = history.heldOut.at(-1);
  if (last) progress.heldOutLoss = last.loss;
  return wg.io.saveCheckpoint({ model: m.model, optimizer: m.optimizer, tokenizer, progress: { ...progress } });
}

/** What a file holds, read from its header alone (no GPU work). */
export interface TextFileContents {
  shape: GptShape;
  tokenizer: wg.data.Tokenizer;
  /** The text it was trained on, when it is one the page has (else the pasted text is used, if the vocabulary covers it). */
  source: TextSource | null;
  /** The page's size name for its shape (null: a shape of the CLI's own choosing). */
  size: TextSize | null;
  settings: Partial<TextConfig>;
  steps: number;
  history: TextHistory | null;
}

export async function describeTextFile(bytes: Uint8Array): Promise<TextFileContents> {
  let progress: Record<string, unknown>;
  try {
    progress = wg.io.readCheckpointProgress(bytes);
  } catch (e) {
    throw new wg.WebGradError(`it is not a webgrad checkpoint (${(e as Error).message})`);
  }
  if (progress.model === 'gpt2-lora') {
    throw new wg.WebGradError(
      'it holds LoRA adapters of a GPT-2, not a whole model: the page fine-tunes GPT-2 from its model.safetensors (Load GPT-2), ' +
        'and does not load adapters back (`npm run finetune` writes merged models with --merged-out)',
    );
  }
  if (progress.model !== 'gpt') {
    throw new wg.WebGradError(
      `it holds ${typeof progress.model === 'string' ? `an ${progress.model.toUpperCase()} model` : 'no GPT'}: the Text mode loads GPTs saved by this page or \`npm run train -- --model gpt\`` +
        (progress.model === 'mlp' || progress.model === 'cnn' ? ' (load it in the Digits mode)' : ''),
    );
  }
  const shape = shapeFrom(progress);
  const tokenizer = await wg.io.readCheckpointTokenizer(bytes);
  if (!tokenizer) throw new wg.WebGradError('it has no tokenizer: the page cannot turn its ids into text');
  checkTensors(bytes, shape, tokenizer.vocabSize);
  const data = progress.data;
  const source: TextSource | null = data === 'moby-dick' || data === 'names' || data === 'pasted' ? data : null;
  const size = (Object.keys(TEXT_SIZES) as TextSize[]).find((k) => sameShape(TEXT_SIZES[k], shape)) ?? null;
  return {
    shape,
    tokenizer,
    source,
    size,
    settings: validSettings(progress.settings),
    steps: count(progress.steps),
    history: validHistory(progress.history),
  };
}

/** Copies the file's weights and optimizer state into `m`; throws, changing nothing, when they do not fit. */
export function loadTextModel(bytes: Uint8Array, m: TextModel): void {
  wg.io.loadCheckpoint(bytes, { model: m.model, optimizer: m.optimizer });
}

function shapeFrom(p: Record<string, unknown>): GptShape {
  const out: Partial<GptShape> = {};
  for (const k of ['layers', 'heads', 'dim', 'context'] as const) {
    const v = p[k];
    // Bounds that keep a file from asking for a model no browser could hold.
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 8192) {
      throw new wg.WebGradError(`its progress says ${k} ${JSON.stringify(v)}; expected a whole number from 1 to 8192`);
    }
    out[k] = v;
  }
  return out as GptShape;
}

/**
 * The file's weights must be those of the GPT its metadata describes, checked before that GPT is
 * built: a file cannot make the page allocate a model larger than the weights it carries.
 */
function checkTensors(bytes: Uint8Array, s: GptShape, vocabSize: number): void {
  const tensors = wg.io.readSafetensorsHeader(bytes).tensors;
  const expect = (name: string, shape: number[]): void => {
    const found = tensors[`model.${name}`]?.shape;
    if (!found || found.length !== shape.length || found.some((d, i) => d !== shape[i])) {
      throw new wg.WebGradError(
        `its weights do not fit the GPT its metadata describes (${s.layers} layers, width ${s.dim}, context ${s.context}, ` +
          `${vocabSize} characters): model.${name} is ${found ? `[${found.join(', ')}]` : 'missing'}, expected [${shape.join(', ')}]`,
      );
    }
  };
  expect('wte.weight', [vocabSize, s.dim]);
  expect('wpe.weight', [s.context, s.dim]);
  expect(`blocks.${s.layers - 1}.fc.weight`, [4 * s.dim, s.dim]);
  if (tensors[`model.blocks.${s.layers}.fc.weight`]) throw new wg.WebGradError(`it has more blocks than the ${s.layers} layers its metadata says`);
  if (s.dim % s.heads !== 0) throw new wg.WebGradError(`its width ${s.dim} is not a multiple of its ${s.heads} heads`);
}

function sameShape(a: GptShape, b: GptShape): boolean {
  return a.layers === b.layers && a.heads === b.heads && a.dim === b.dim && a.context === b.context;
}

function validSettings(raw: unknown): Partial<TextConfig> {
  const out: Partial<TextConfig> = {};
  if (typeof raw !== 'object' || raw === null) return out;
  const r = raw as Record<string, unknown>;
  if (typeof r.lr === 'number' && r.lr > 0 && Number.isFinite(r.lr)) out.lr = r.lr;
  if (typeof r.batchSize === 'number' && Number.isInteger(r.batchSize) && r.batchSize >= 1 && r.batchSize <= 4096) out.batchSize = r.batchSize;
  if (r.microBatchSize === 'auto' || (typeof r.microBatchSize === 'number' && Number.isInteger(r.microBatchSize) && r.microBatchSize >= 1)) {
    out.microBatchSize = r.microBatchSize;
  }
  return out;
}

/** The saved history if it has the expected form (a file may come from anywhere), else null. */
export function validHistory(raw: unknown): TextHistory | null {
  if (typeof raw !== 'object' || raw === null) return null;
  const r = raw as Record<string, unknown>;
  const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
  if (!Array.isArray(r.loss) || !Array.isArray(r.heldOut) || r.loss.length > MAX_HISTORY_POINTS || r.heldOut.length > MAX_HISTORY_POINTS) return null;
  // Non-finite losses are saved as null by JSON; the chart leaves them out anyway.
  const loss = r.loss.filter((p): p is [number, number | null] => Array.isArray(p) && p.length === 2 && finite(p[0]) && (finite(p[1]) || p[1] === null));
  const heldOut = r.heldOut.filter(
    (p): p is HeldOutPoint => typeof p === 'object' && p !== null && finite(p.step) && finite(p.loss) && finite(p.bitsPerChar),
  );
  if (loss.length !== r.loss.length || heldOut.length !== r.heldOut.length) return null;
  // Files saved before the speed was recorded lack it.
  const speed = r.speed === undefined ? [] : r.speed;
  if (!Array.isArray(speed) || speed.length > MAX_HISTORY_POINTS) return null;
  if (!speed.every((p) => Array.isArray(p) && p.length === 2 && finite(p[0]) && finite(p[1]) && p[1] >= 0)) return null;
  return {
    loss: loss.map(([s, l]) => [s, l ?? NaN]),
    heldOut: heldOut.map((p) => ({ step: p.step, loss: p.loss, bitsPerChar: p.bitsPerChar })),
    speed: speed.map(([s, v]: [number, number]) => [s, v]),
  };
}

function count(v: unknown): number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : 0;
}
