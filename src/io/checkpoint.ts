// Training checkpoints: a model's state dict, its optimizer's state and free-form progress
// (epoch, step, …) in one safetensors file. Tensors are stored as "model.<name>" and
// "optimizer.<param index>.<state name>"; everything else goes into the JSON metadata under
// "webgrad.checkpoint", the tokenizer of a language model included (its toJSON(): a
// CharTokenizer's characters in id order, or { kind: 'gpt2' }), so that a loaded model decodes
// with the vocabulary it was trained on. Loading checks the whole file against the model and
// optimizer before changing either, so a bad file never leaves a half-loaded model.

import { tokenizerFromJSON, type Tokenizer, type TokenizerJSON } from '../data/tokenizer';
import type { Module } from '../nn/module';
import type { Optimizer, OptimizerStateDict } from '../optim/optimizer';
import { WebGradError } from '../runtime/errors';
import type { Tensor } from '../tensor';
import { loadSafetensors, readSafetensorsHeader, saveSafetensors } from './safetensors';

const META_KEY = 'webgrad.checkpoint';

export interface CheckpointMeta {
  /** Anything JSON the caller wants back (epoch, step, model kind, …). */
  progress?: Record<string, unknown>;
}

interface StoredMeta {
  version: 1;
  progress: Record<string, unknown>;
  tokenizer?: TokenizerJSON;
  optimizer?: { step: number; hyperParams: OptimizerStateDict['hyperParams']; paramSteps: Record<number, number> };
}

export async function saveCheckpoint(opts: {
  model: Module;
  optimizer?: Optimizer;
  progress?: Record<string, unknown>;
  /** A language model's tokenizer, for readCheckpointTokenizer. */
  tokenizer?: Tokenizer;
}): Promise<Uint8Array> {
  const tensors: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(opts.model.stateDict())) tensors[`model.${k}`] = t;
  const meta: StoredMeta = { version: 1, progress: opts.progress ?? {} };
  if (opts.tokenizer) meta.tokenizer = opts.tokenizer.toJSON();
  if (opts.optimizer) {
    const sd = opts.optimizer.stateDict();
    const paramSteps: Record<number, number> = {};
    for (const [i, s] of Object.entries(sd.state)) {
      paramSteps[Number(i)] = s.step;
      for (const [name, t] of Object.entries(s.buffers)) tensors[`optimizer.${i}.${name}`] = t;
    }
    meta.optimizer = { step: sd.step, hyperParams: sd.hyperParams, paramSteps };
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

function readMeta(bytes: Uint8Array): StoredMeta {
  const header = readSafetensorsHeader(bytes);
  const raw = header.metadata[META_KEY];
  if (!raw) throw new WebGradError(`loadCheckpoint: not a webgrad checkpoint (no "${META_KEY}" metadata)`);
  try {
    return JSON.parse(raw) as StoredMeta;
  } catch (e) {
    throw new WebGradError(`loadCheckpoint: the checkpoint metadata is not valid JSON (${(e as Error).message})`);
  }
}

/**
 * Restore a checkpoint into `model` (and `optimizer`, when given and the file has its state).
 * Returns the progress object saved with it.
 */
export function loadCheckpoint(bytes: Uint8Array, opts: { model: Module; optimizer?: Optimizer }): Record<string, unknown> {
  const meta = readMeta(bytes);
  const all = loadSafetensors(bytes);
  try {
    const model: Record<string, Tensor> = {};
    const optState: OptimizerStateDict['state'] = {};
    for (const [k, t] of Object.entries(all)) {
      if (k.startsWith('model.')) model[k.slice(6)] = t;
      else if (k.startsWith('optimizer.')) {
        const [, i, name] = k.split('.', 3) as [string, string, string];
        (optState[Number(i)] ??= { step: meta.optimizer?.paramSteps[Number(i)] ?? 0, buffers: {} }).buffers[name] = t;
      } else throw new WebGradError(`loadCheckpoint: unexpected tensor "${k}"`);
    }
    const optSd = opts.optimizer && meta.optimizer ? { step: meta.optimizer.step, hyperParams: meta.optimizer.hyperParams, state: optState } : null;
    // Both loads validate before copying; the model goes first, so check the optimizer's state
    // against its parameters up front to keep the all-or-nothing promise.
    if (optSd) opts.optimizer!.checkStateDict(optSd);
    opts.model.loadStateDict(model);
    if (optSd) opts.optimizer!.loadStateDict(optSd);
    return meta.progress;
  } finally {
    for (const t of Object.values(all)) t.dispose();
  }
}
