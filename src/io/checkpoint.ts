// Training checkpoints: a model's state dict, its optimizer's state and free-form progress
// (epoch, step, …) in one safetensors file. Tensors are stored as "model.<name>" and
// "optimizer.<param index>.<state name>"; everything else goes into the JSON metadata under
// "webgrad.checkpoint", the tokenizer of a language model included (its toJSON(): a
// CharTokenizer's characters in id order, or { kind: 'gpt2' }), so that a loaded model decodes
// with the vocabulary it was trained on. Loading checks the whole file against the model and
// optimizer before changing either, so a bad file never leaves a half-loaded model.
// `trainableOnly: true` keeps only the trainable parameters (a LoRA fine-tune's adapters: a few
// MB instead of the whole model) and their optimizer state; such a file loads into a model that
// has those trainable parameters — the same model wrapped by wg.nn.lora the same way — and leaves
// its other parameters as they are.

import { tokenizerFromJSON, type Tokenizer, type TokenizerJSON } from '../data/tokenizer';
import type { Module } from '../nn/module';
import { checkCount, formatValue, type Optimizer, type OptimizerStateDict } from '../optim/optimizer';
import { WebGradError } from '../runtime/errors';
import type { Tensor } from '../tensor';
import { loadSafetensors, readSafetensorsHeader, saveSafetensors } from './safetensors';

const META_KEY = 'webgrad.checkpoint';
const VERSION = 1;

export interface CheckpointMeta {
  /** Anything JSON the caller wants back (epoch, step, model kind, …). */
  progress?: Record<string, unknown>;
}

interface StoredMeta {
  version: 1;
  progress: Record<string, unknown>;
  /** 'trainable': the file holds only the parameters that required grad (and no buffers). */
  parameters?: 'all' | 'trainable';
  tokenizer?: TokenizerJSON;
  optimizer?: {
    /** The optimizer's class name (files written before it was recorded lack it). */
    kind?: string;
    step: number;
    hyperParams: OptimizerStateDict['hyperParams'];
    /** Each parameter group's indices and hyper-parameters (files written before groups existed lack it). */
    paramGroups?: OptimizerStateDict['paramGroups'];
    /** Each parameter's own step count, by parameter index. */
    paramSteps: Record<string, number>;
  };
}

export async function saveCheckpoint(opts: {
  model: Module;
  optimizer?: Optimizer;
  progress?: Record<string, unknown>;
  /** A language model's tokenizer, for readCheckpointTokenizer. */
  tokenizer?: Tokenizer;
  /** Keep only the parameters that train (e.g. LoRA adapters), not the frozen ones nor buffers. */
  trainableOnly?: boolean;
}): Promise<Uint8Array> {
  const tensors: Record<string, Tensor> = {};
  const entries = opts.trainableOnly ? opts.model.namedParameters().filter(([, t]) => t.requiresGrad) : Object.entries(opts.model.stateDict());
  if (opts.trainableOnly && entries.length === 0) {
    throw new WebGradError('saveCheckpoint: trainableOnly, but the model has no trainable parameter (every one is frozen)');
  }
  for (const [k, t] of entries) tensors[`model.${k}`] = t;
  const meta: StoredMeta = { version: VERSION, progress: opts.progress ?? {} };
  if (opts.trainableOnly) meta.parameters = 'trainable';
  if (opts.tokenizer) meta.tokenizer = opts.tokenizer.toJSON();
  if (opts.optimizer) {
    const sd = opts.optimizer.stateDict();
    const paramSteps: Record<string, number> = {};
    for (const [i, s] of Object.entries(sd.state)) {
      paramSteps[i] = s.step;
      for (const [name, t] of Object.entries(s.buffers)) tensors[`optimizer.${i}.${name}`] = t;
    }
    meta.optimizer = { kind: opts.optimizer.name, step: sd.step, hyperParams: sd.hyperParams, paramSteps };
    if (sd.paramGroups) meta.optimizer.paramGroups = sd.paramGroups;
  }
  return saveSafetensors(tensors, { [META_KEY]: JSON.stringify(meta) });
}

/** The progress object saved with a checkpoint, without loading anything onto the GPU. */
export function readCheckpointProgress(bytes: Uint8Array): Record<string, unknown> {
  return readMeta(bytes).progress;
}

/** The tokenizer saved with a checkpoint (null when it has none), without loading anything onto the GPU. */
export async function readCheckpointTokenizer(bytes: Uint8Array): Promise<Tokenizer | null> {
  const json = readMeta(bytes).tokenizer;
  return json === undefined ? null : tokenizerFromJSON(json);
}

/**
 * The checkpoint metadata, its structure checked (the optimizer's values are checked by the
 * optimizer itself, with its constructor's rules).
 */
function readMeta(bytes: Uint8Array): StoredMeta {
  const op = 'loadCheckpoint';
  const header = readSafetensorsHeader(bytes);
  const raw = header.metadata[META_KEY];
  if (!raw) throw new WebGradError(`${op}: not a webgrad checkpoint (no "${META_KEY}" metadata)`);
  let meta: unknown;
  try {
    meta = JSON.parse(raw);
  } catch (e) {
    throw new WebGradError(`${op}: the checkpoint metadata is not valid JSON (${(e as Error).message})`);
  }
  if (!isRecord(meta)) throw new WebGradError(`${op}: the checkpoint metadata must be a JSON object, got ${formatValue(meta)}`);
  if (meta.version !== VERSION) {
    throw new WebGradError(`${op}: checkpoint format version ${formatValue(meta.version)} is not supported (this webgrad reads version ${VERSION})`);
  }
  if (!isRecord(meta.progress)) throw new WebGradError(`${op}: progress must be an object, got ${formatValue(meta.progress)}`);
  if (meta.parameters !== undefined && meta.parameters !== 'all' && meta.parameters !== 'trainable') {
    throw new WebGradError(`${op}: parameters must be "all" or "trainable", got ${formatValue(meta.parameters)}`);
  }
  const opt = meta.optimizer;
  if (opt !== undefined) {
    if (!isRecord(opt)) throw new WebGradError(`${op}: the optimizer metadata must be an object, got ${formatValue(opt)}`);
    if (opt.kind !== undefined && typeof opt.kind !== 'string') {
      throw new WebGradError(`${op}: the optimizer kind must be a name such as "Adam", got ${formatValue(opt.kind)}`);
    }
    if (opt.paramSteps === undefined) throw new WebGradError(`${op}: the optimizer metadata has no paramSteps (each parameter's step count)`);
    if (!isRecord(opt.paramSteps)) throw new WebGradError(`${op}: paramSteps must be an object, got ${formatValue(opt.paramSteps)}`);
    for (const [i, n] of Object.entries(opt.paramSteps)) {
      if (!isIndex(i)) throw new WebGradError(`${op}: paramSteps names parameter "${i}", which is not an index`);
      checkCount(op, `paramSteps["${i}"]`, n);
    }
  }
  return meta as unknown as StoredMeta;
}

/**
 * Restore a checkpoint into `model` (and `optimizer`, when given and the file has its state).
 * Returns the progress object saved with it.
 */
export function loadCheckpoint(bytes: Uint8Array, opts: { model: Module; optimizer?: Optimizer }): Record<string, unknown> {
  const meta = readMeta(bytes);
  const saved = meta.optimizer;
  if (opts.optimizer && saved?.kind !== undefined && saved.kind !== opts.optimizer.name) {
    throw new WebGradError(
      `loadCheckpoint: the checkpoint holds ${saved.kind} optimizer state; the optimizer given is ${opts.optimizer.name} ` +
        `(resume with a ${saved.kind}, or load the model alone)`,
    );
  }
  const all = loadSafetensors(bytes);
  try {
    // Names come from the file: null-prototype maps, so that "model.__proto__" is a plain entry.
    const model: Record<string, Tensor> = Object.create(null);
    const optState: OptimizerStateDict['state'] = Object.create(null);
    for (const [k, t] of Object.entries(all)) {
      if (k.startsWith('model.')) model[k.slice(6)] = t;
      else if (k.startsWith('optimizer.')) {
        const [, i, name] = k.split('.', 3) as [string, string, string | undefined];
        if (!saved) throw new WebGradError(`loadCheckpoint: tensor "${k}" is optimizer state, but the metadata describes no optimizer`);
        if (!isIndex(i) || !name) throw new WebGradError(`loadCheckpoint: unexpected tensor "${k}" (optimizer state is "optimizer.<index>.<name>")`);
        const step = saved.paramSteps[i];
        if (step === undefined) throw new WebGradError(`loadCheckpoint: optimizer state "${k}" has no step count in paramSteps`);
        (optState[Number(i)] ??= { step, buffers: Object.create(null) }).buffers[name] = t;
      } else throw new WebGradError(`loadCheckpoint: unexpected tensor "${k}"`);
    }
    const optSd: OptimizerStateDict | null =
      opts.optimizer && saved ? { step: saved.step, hyperParams: saved.hyperParams, state: optState } : null;
    if (optSd && saved!.paramGroups !== undefined) optSd.paramGroups = saved!.paramGroups;
    // Both loads validate before copying; the model goes first, so check the optimizer's state
    // against its parameters up front to keep the all-or-nothing promise.
    if (optSd) opts.optimizer!.checkStateDict(optSd);
    if (meta.parameters === 'trainable') checkTrainable(opts.model, model);
    opts.model.loadStateDict(model, { strict: meta.parameters !== 'trainable' });
    if (optSd) opts.optimizer!.loadStateDict(optSd);
    return meta.progress;
  } finally {
    for (const t of Object.values(all)) t.dispose();
  }
}

/** A file of trainable parameters only: they must be exactly the model's trainable ones. */
function checkTrainable(model: Module, saved: Record<string, Tensor>): void {
  const trainable = model.namedParameters().filter(([, t]) => t.requiresGrad).map(([k]) => k);
  const own = new Set(trainable);
  const unexpected = Object.keys(saved).filter((k) => !own.has(k));
  const missing = trainable.filter((k) => !Object.hasOwn(saved, k));
  if (unexpected.length || missing.length) {
    const list = (ks: string[]) => ks.slice(0, 6).join(', ') + (ks.length > 6 ? `, … (${ks.length} in all)` : '');
    throw new WebGradError(
      'loadCheckpoint: the checkpoint holds only trainable parameters (saved with trainableOnly), and they are not this model\'s: ' +
        [unexpected.length ? `the model has no trainable ${list(unexpected)}` : '', missing.length ? `the file lacks ${list(missing)}` : '']
          .filter(Boolean)
          .join('; ') +
        '. Wrap the model as it was when saved (e.g. wg.nn.lora with the same targets and rank) before loading.',
    );
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A parameter index as a key: "0", "1", … (no sign, no leading zeros). */
function isIndex(key: string): boolean {
  return /^(0|[1-9]\d*)$/.test(key);
}
