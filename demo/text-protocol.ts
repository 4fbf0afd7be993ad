// The messages between the page's Text mode (text-page.ts) and its worker (text-worker.ts): a
// small character-level GPT trained on a text the person chose, with samples streamed back as
// they are generated. The worker owns the GPU, the model, the text and the history; the page only
// shows what it is told and sends the person's requests. (The MNIST mode has its own worker and
// protocol.ts; the two share the run states, the plan and the device messages.)

import type { AdapterSummary, BackendChoice, DeviceInfo, MemoryStats } from '../src/index';
import type { PlanInfo, RunState } from './protocol';

/** What the model trains on: a shipped corpus, or the text pasted into the page. */
export type TextSource = 'moby-dick' | 'names' | 'pasted';

/** The model sizes the page offers (text-model.ts has their layers, heads, width and context). */
export type TextSize = 'tiny' | 'small' | 'medium' | 'large';

/** The sizes offered: tiny moves within seconds even on a software GPU or the CPU; large wants a real GPU. */
export const TEXT_SIZES: Record<TextSize, GptShape> = {
  tiny: { layers: 1, heads: 2, dim: 32, context: 32 },
  small: { layers: 2, heads: 4, dim: 64, context: 64 }, // the CLI's default
  medium: { layers: 4, heads: 4, dim: 128, context: 128 },
  large: { layers: 6, heads: 6, dim: 192, context: 128 },
};

/** The learning rate the size selector suggests (smaller models take larger steps, as in nanoGPT's configs). */
export const DEFAULT_LR: Record<TextSize, number> = { tiny: 1e-2, small: 3e-3, medium: 1e-3, large: 6e-4 };

/** What the controls choose. Source and size take effect on Reset; the rest on the next Train. */
export interface TextConfig {
  source: TextSource;
  size: TextSize;
  lr: number;
  batchSize: number;
  microBatchSize: number | 'auto';
}

/** A GPT's shape, as checkpoints (the page's and `npm run train -- --model gpt`'s) record it. */
export interface GptShape {
  layers: number;
  heads: number;
  dim: number;
  context: number;
}

/** One held-out measurement: the loss on the first held-out tokens, in nats per character and bits per character. */
export interface HeldOutPoint {
  step: number;
  loss: number;
  bitsPerChar: number;
}

/** What the charts and readouts show of past training (kept in IndexedDB and in the page's files). */
export interface TextHistory {
  /** [step, training loss] per step. */
  loss: [number, number][];
  heldOut: HeldOutPoint[];
  /** [step, tokens per second over the recent steps] per step. */
  speed: [number, number][];
}

/** The text a model trains on, as the page describes it. */
export interface TextInfo {
  source: TextSource;
  /** What a token is: a character (the page's GPTs), or a piece of a word (GPT-2's tokenizer). */
  unit: 'character' | 'token';
  /** "28 distinct characters", "GPT-2's 50,257 tokens". */
  vocabulary: string;
  /** For the readouts: "Moby Dick", "8,422 first names", "your text". */
  title: string;
  /** Tokens (characters, for the page's GPTs) to train on and held out. */
  trainTokens: number;
  heldOutTokens: number;
  vocabSize: number;
  /** The held-out loss of a count-based bigram model on the same held-out tokens (nats per token): the line to beat. */
  bigram: number;
  /** What periodic samples start from when the prompt box is empty. */
  defaultPrompt: string;
}

export type ToTextWorker =
  /**
   * The first message: start the backend, restore the stored text model or make one from
   * `config` (with `pasted`, the text of the paste box, when `config.source` is 'pasted').
   */
  | { type: 'start'; config: TextConfig; backend: BackendChoice; pasted: string }
  | { type: 'train'; config: TextConfig }
  | { type: 'pause' }
  /** A fresh model for `config`'s text and size; forgets the stored one. */
  | { type: 'reset'; config: TextConfig; pasted: string }
  /** Generate from `prompt` now (the next sample, ahead of the periodic ones). */
  | { type: 'sample'; prompt: string; temperature: number }
  /** The temperature and prompt of the periodic samples from now on. */
  | { type: 'sampling'; prompt: string; temperature: number }
  /** Ask for the model as a safetensors checkpoint (answered with 'checkpoint'). */
  | { type: 'download' }
  | { type: 'load'; bytes: Uint8Array; fileName: string; pasted: string }
  /** Fine-tune a pretrained GPT-2 (a Hugging Face model.safetensors) with LoRA on `config`'s text. */
  | { type: 'gpt2'; bytes: Uint8Array; fileName: string; config: TextConfig; pasted: string };

/** A GPT-2 being fine-tuned: where it came from, and its adapters. */
export interface LoraInfo {
  fileName: string;
  rank: number;
  alpha: number;
  /** Layers with adapters. */
  layers: number;
  trainable: number;
  /** Whether its frozen weights are stored in f16 (adapters with shader-f16). */
  frozenF16: boolean;
}

export type FromTextWorker =
  | { type: 'device'; info: DeviceInfo }
  | { type: 'adapters'; adapters: AdapterSummary[] }
  | { type: 'unavailable'; message: string }
  /** `progress`: the share (0–1) done of what `detail` describes (compiling kernels, tuning them), when it is counted. */
  | { type: 'status'; state: RunState; detail: string; progress?: number }
  /** A model is in place (new, restored, or loaded): the page resets its controls, charts and readouts to these. */
  | {
      type: 'model';
      config: TextConfig;
      shape: GptShape;
      parameters: number;
      step: number;
      history: TextHistory;
      text: TextInfo;
      /** How a step at the configured batch size would be split (null when it cannot be planned). */
      plan: PlanInfo | null;
      memory: MemoryStats;
      /** A pretrained GPT-2 fine-tuned with LoRA; null: one of the page's own GPTs. */
      lora: LoraInfo | null;
      origin: { kind: 'new' } | { kind: 'restored'; savedAt: number } | { kind: 'file'; fileName: string } | { kind: 'gpt2'; fileName: string };
    }
  | {
      type: 'step';
      step: number;
      loss: number;
      tokensPerSecond: number;
      /** The learning rate of this step (it warms up over the first steps). */
      lr: number;
      memory: MemoryStats;
    }
  | { type: 'plan'; plan: PlanInfo }
  | { type: 'held-out'; point: HeldOutPoint }
  /** A sample begins: `prompt` as typed, then 'sample-text' pieces as they are generated, then 'sample-end'. */
  | { type: 'sample-start'; id: number; step: number; prompt: string; temperature: number; requested: boolean }
  | { type: 'sample-text'; id: number; text: string }
  | { type: 'sample-end'; id: number }
  | { type: 'checkpoint'; bytes: Uint8Array; fileName: string }
  | { type: 'stored'; savedAt: number }
  | { type: 'error'; message: string };
