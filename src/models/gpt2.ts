// wg.models.gpt2: pretrained GPT-2 checkpoints of Hugging Face (`model.safetensors`) as webgrad
// GPTs, and back. The file's names and layouts are those of transformers' GPT2Model:
//
//   wte.weight [V, D]             → wte.weight            token embedding (also the output projection: tied)
//   wpe.weight [C, D]             → wpe.weight            position embedding
//   h.N.ln_1.weight, .bias [D]    → blocks.N.ln1
//   h.N.attn.c_attn.weight [D, 3D], .bias [3D]  → blocks.N.attn.inProj   (q, k, v; heads inside each)
//   h.N.attn.c_proj.weight [D, D], .bias [D]    → blocks.N.attn.outProj
//   h.N.ln_2.weight, .bias [D]    → blocks.N.ln2
//   h.N.mlp.c_fc.weight [D, 4D], .bias [4D]     → blocks.N.fc
//   h.N.mlp.c_proj.weight [4D, D], .bias [D]    → blocks.N.proj
//   ln_f.weight, .bias [D]        → lnF
//
// GPT-2's Linear layers are Conv1D modules, whose weight is stored [in, out]: the transpose of
// nn.Linear's [out, in], so those four weights are transposed on the way in and out. The GELU is
// the tanh approximation (gelu_new). Files saved from GPT2LMHeadModel prefix the names with
// "transformer." and may add lm_head.weight (the same values as wte: tied; other values make an
// untied output projection); older files carry the attention's mask buffers (h.N.attn.bias,
// h.N.attn.masked_bias), which are constants and are skipped. Nothing else is accepted: a file
// that is not GPT-2 is refused with the names it lacks.
//
// The configuration comes from the tensors' shapes: vocabulary (wte's rows), width (its columns),
// context length (wpe's rows), blocks (the h.N present). Only the number of heads cannot be seen
// in the shapes: it is config.n_head when a config is given, else width / 64 — every GPT-2 has
// 64-wide heads (small 768/12, medium 1024/16, large 1280/20, xl 1600/25) — and a width that is
// not a multiple of 64 needs config.n_head. A config (the checkpoint's config.json) is checked
// against the shapes; its activation_function and layer_norm_epsilon are used.

import { noGrad } from '../autograd/grad-mode';
import { tensor } from '../creation';
import { readSafetensorsHeader, safetensorsValues, saveSafetensors, type SafetensorsTensorInfo } from '../io/safetensors';
import { contiguous, copyInto } from '../ops/copy';
import { toFloat } from '../ops/half';
import { mT } from '../ops/shape';
import { ShapeError, WebGradError } from '../runtime/errors';
import { keep, tidy } from '../scope';
import { formatShape, type Tensor } from '../tensor';
import { GPT, type GPTConfig } from './gpt';

/** The fields of a Hugging Face GPT-2 config.json that matter here (others are ignored). */
export interface GPT2Config {
  n_head?: number;
  n_embd?: number;
  n_layer?: number;
  n_positions?: number;
  n_ctx?: number;
  vocab_size?: number;
  n_inner?: number | null;
  layer_norm_epsilon?: number;
  activation_function?: string;
  scale_attn_weights?: boolean;
  scale_attn_by_inverse_layer_idx?: boolean;
  reorder_and_upcast_attn?: boolean;
  [key: string]: unknown;
}

export interface GPT2LoadOptions {
  /** The checkpoint's config.json (parsed); without it the shapes decide and heads are 64 wide. */
  config?: GPT2Config;
  /** Dropout while training (GPTConfig.dropout; default 0). */
  dropout?: number;
}

const OP = 'wg.models.gpt2.fromSafetensors';
/** Width of every GPT-2's attention heads: the number of heads when no config gives it. */
const HEAD_DIM = 64;
/** HF's activation functions that are GELU's tanh approximation, and the exact one. */
const TANH_GELUS = new Set(['gelu_new', 'gelu_pytorch_tanh', 'gelu_fast']);

/** The tensors of block n: the HF name's tail, our parameter's path, and whether it is a Conv1D weight (transposed). */
const BLOCK_TENSORS: readonly [string, string, boolean][] = [
  ['ln_1.weight', 'ln1.weight', false],
  ['ln_1.bias', 'ln1.bias', false],
  ['attn.c_attn.weight', 'attn.inProj.weight', true],
  ['attn.c_attn.bias', 'attn.inProj.bias', false],
  ['attn.c_proj.weight', 'attn.outProj.weight', true],
  ['attn.c_proj.bias', 'attn.outProj.bias', false],
  ['ln_2.weight', 'ln2.weight', false],
  ['ln_2.bias', 'ln2.bias', false],
  ['mlp.c_fc.weight', 'fc.weight', true],
  ['mlp.c_fc.bias', 'fc.bias', false],
  ['mlp.c_proj.weight', 'proj.weight', true],
  ['mlp.c_proj.bias', 'proj.bias', false],
];

/** Every HF name of a GPT-2 of `layers` blocks with our parameter path and transposition. */
function tensorMap(layers: number): [string, string, boolean][] {
  return [
    ['wte.weight', 'wte.weight', false],
    ['wpe.weight', 'wpe.weight', false],
    ...Array.from({ length: layers }, (_, n) => BLOCK_TENSORS.map(([hf, ours, t]): [string, string, boolean] => [`h.${n}.${hf}`, `blocks.${n}.${ours}`, t])).flat(),
    ['ln_f.weight', 'lnF.weight', false],
    ['ln_f.bias', 'lnF.bias', false],
  ];
}

/** A checked GPT-2 file: the GPT's configuration, and where each tensor lies. */
interface GPT2File {
  config: GPTConfig & { activation: 'gelu' | 'gelu_tanh'; layerNormEps: number };
  infos: Map<string, SafetensorsTensorInfo>;
  dataStart: number;
}

/**
 * The GPT configuration of a Hugging Face GPT-2 `model.safetensors`, from its header alone (no
 * GPU work, no tensor read): what fromSafetensors would build, or its refusal. For checking a
 * file before a device starts, and for planning memory without loading it.
 */
export function inspect(bytes: Uint8Array, { config }: { config?: GPT2Config } = {}): GPTConfig {
  return { ...readGPT2(bytes, config).config };
}

function readGPT2(bytes: Uint8Array, config: GPT2Config | undefined): GPT2File {
  if (!(bytes instanceof Uint8Array)) throw new WebGradError(`${OP}: expected the file's bytes as a Uint8Array`);
  if (config !== undefined && (typeof config !== 'object' || config === null)) throw new WebGradError(`${OP}: config must be the parsed config.json object`);
  const header = readSafetensorsHeader(bytes);

  // Names without the "transformer." prefix of GPT2LMHeadModel's files.
  const prefixed = Object.keys(header.tensors).some((k) => k.startsWith('transformer.'));
  const infos = new Map<string, SafetensorsTensorInfo>();
  for (const [k, info] of Object.entries(header.tensors)) infos.set(prefixed && k.startsWith('transformer.') ? k.slice('transformer.'.length) : k, info);

  let layers = 0;
  while (infos.has(`h.${layers}.ln_1.weight`) || infos.has(`h.${layers}.attn.c_attn.weight`)) layers++;
  const expected = tensorMap(Math.max(layers, 1));
  const missing = expected.map(([hf]) => hf).filter((k) => !infos.has(k));
  if (missing.length > 0) {
    const have = [...infos.keys()];
    throw new WebGradError(
      `${OP}: this is not a GPT-2 checkpoint (Hugging Face names): it lacks ${list(missing)}; it holds ${have.length ? list(have) : 'no tensors'}`,
    );
  }
  const known = new Set(expected.map(([hf]) => hf));
  const buffer = (k: string) => /^h\.\d+\.attn\.(bias|masked_bias)$/.test(k);
  const unexpected = [...infos.keys()].filter((k) => !known.has(k) && !buffer(k) && k !== 'lm_head.weight');
  if (unexpected.length > 0) {
    throw new WebGradError(`${OP}: the checkpoint holds tensors a GPT-2 of ${layers} blocks does not have: ${list(unexpected)}`);
  }
  for (const [k, info] of infos) {
    if (!buffer(k) && info.dtype === 'I32') throw new WebGradError(`${OP}: ${k} is I32; GPT-2's weights are floating point`);
  }

  const shape = (k: string) => infos.get(k)!.shape;
  const [vocabSize, dim] = shape('wte.weight') as [number, number];
  const contextLength = shape('wpe.weight')[0]!;
  const heads = headsOf(dim, config);
  const c = checkConfig(config, { vocabSize, dim, contextLength, layers });
  const hidden = shape('h.0.mlp.c_fc.weight')[1];
  // An lm_head.weight that repeats wte (GPT2LMHeadModel's tied head, saved anyway) is the tied head.
  const range = (k: string) => {
    const i = infos.get(k)!;
    return bytes.subarray(header.dataStart + i.dataOffsets[0], header.dataStart + i.dataOffsets[1]);
  };
  const tieWeights =
    !infos.has('lm_head.weight') || (infos.get('lm_head.weight')!.dtype === infos.get('wte.weight')!.dtype && sameBytes(range('lm_head.weight'), range('wte.weight')));
  // Every tensor's shape, Conv1D weights as [in, out], before a single GPU tensor exists.
  const want: Record<string, number[]> = {
    'wte.weight': [vocabSize, dim],
    'wpe.weight': [contextLength, dim],
    'ln_f.weight': [dim],
    'ln_f.bias': [dim],
    'lm_head.weight': [vocabSize, dim],
  };
  for (let n = 0; n < layers; n++) {
    Object.assign(want, {
      [`h.${n}.ln_1.weight`]: [dim],
      [`h.${n}.ln_1.bias`]: [dim],
      [`h.${n}.attn.c_attn.weight`]: [dim, 3 * dim],
      [`h.${n}.attn.c_attn.bias`]: [3 * dim],
      [`h.${n}.attn.c_proj.weight`]: [dim, dim],
      [`h.${n}.attn.c_proj.bias`]: [dim],
      [`h.${n}.ln_2.weight`]: [dim],
      [`h.${n}.ln_2.bias`]: [dim],
      [`h.${n}.mlp.c_fc.weight`]: [dim, 4 * dim],
      [`h.${n}.mlp.c_fc.bias`]: [4 * dim],
      [`h.${n}.mlp.c_proj.weight`]: [4 * dim, dim],
      [`h.${n}.mlp.c_proj.bias`]: [dim],
    });
  }
  if (hidden !== 4 * dim) {
    throw new ShapeError(`${OP}: h.0.mlp.c_fc.weight is ${formatShape(shape('h.0.mlp.c_fc.weight'))}: an MLP of ${hidden}, not 4 × n_embd = ${4 * dim}, which webgrad's GPT has`);
  }
  for (const [k, s] of Object.entries(want)) {
    const got = infos.get(k)?.shape;
    if (got && (got.length !== s.length || got.some((d, i) => d !== s[i]))) {
      throw new ShapeError(`${OP}: ${k} is ${formatShape(got)}; a GPT-2 with n_embd ${dim}, vocab_size ${vocabSize}, n_positions ${contextLength} has ${formatShape(s)}`);
    }
  }
  return {
    config: { vocabSize, contextLength, layers, heads, dim, tieWeights, activation: c.activation, layerNormEps: c.layerNormEps },
    infos,
    dataStart: header.dataStart,
  };
}

/** The GPT of a Hugging Face GPT-2 `model.safetensors` (see the top of this file). */
export function fromSafetensors(bytes: Uint8Array, { config, dropout = 0 }: GPT2LoadOptions = {}): GPT {
  const { config: c, infos, dataStart } = readGPT2(bytes, config);
  const layers = c.layers;
  const values = (k: string) => safetensorsValues(bytes, dataStart, infos.get(k)!) as Float32Array;
  const model = new GPT({ ...c, dropout });
  try {
    const params = Object.fromEntries(model.namedParameters());
    const load = (ours: string, data: Float32Array, transposed: boolean) => {
      const p = params[ours];
      if (!p) throw new Error(`${OP}: the GPT has no parameter ${ours}`);
      const [rows, cols] = transposed ? [p.shape[1]!, p.shape[0]!] : [0, 0];
      tidy(() => copyInto(p, tensor(transposed ? transpose(data, rows, cols) : data, p.shape)));
    };
    noGrad(() => {
      for (const [hf, ours, transposed] of tensorMap(layers)) load(ours, values(hf), transposed);
      if (!c.tieWeights) load('lmHead.weight', values('lm_head.weight'), false);
    });
  } catch (e) {
    model.dispose();
    throw e;
  }
  return model;
}

/**
 * The Hugging Face GPT-2 `model.safetensors` of a GPT (as save_pretrained writes GPT2Model: the
 * names above, Conv1D layouts, metadata { format: 'pt' }; lm_head.weight only when untied).
 * Weights stored in f16 are written as F32, exactly. LoRA adapters must be merged first.
 */
export async function toSafetensors(model: GPT): Promise<Uint8Array> {
  const op = 'wg.models.gpt2.toSafetensors';
  if (!(model instanceof GPT)) throw new WebGradError(`${op}: expected a GPT (wg.models.gpt or wg.models.gpt2.fromSafetensors)`);
  const named = model.namedParameters();
  const adapters = named.filter(([k]) => k.includes('.lora.')).map(([k]) => k);
  if (adapters.length) throw new WebGradError(`${op}: the model has LoRA adapters (${list(adapters)}); merge() them into the weights first`);
  if (model.config.activation !== 'gelu_tanh') {
    throw new WebGradError(`${op}: the model's GELU is exact; GPT-2 files mean the tanh approximation (build it with activation: 'gelu_tanh')`);
  }
  const params = Object.fromEntries(named);
  // Transposed copies and widened f16 weights live until the file is written (it reads them back).
  const made: Tensor[] = [];
  const own = (t: Tensor) => (made.push(keep(t)), t);
  try {
    const out: Record<string, Tensor> = {};
    noGrad(() => {
      for (const [hf, ours, transposed] of tensorMap(model.config.layers)) {
        const p = params[ours]!;
        const t = p.dtype === 'float16' ? own(toFloat(p)) : p;
        out[hf] = transposed ? own(tidy(() => contiguous(mT(t)))) : t;
      }
      const w = model.lmHead?.weight;
      if (w) out['lm_head.weight'] = w.dtype === 'float16' ? own(toFloat(w)) : w;
    });
    return await saveSafetensors(out, { format: 'pt' });
  } finally {
    for (const t of made) t.dispose();
  }
}

/** Heads: config.n_head, else width / 64 (see the top of this file). */
function headsOf(dim: number, config: GPT2Config | undefined): number {
  const n = config?.n_head;
  if (n !== undefined) {
    if (!Number.isSafeInteger(n) || n < 1 || dim % n !== 0) {
      throw new ShapeError(`${OP}: config.n_head ${String(n)} must be a positive divisor of n_embd ${dim}`);
    }
    return n;
  }
  if (dim % HEAD_DIM !== 0) {
    throw new WebGradError(
      `${OP}: n_embd ${dim} is not a multiple of 64, GPT-2's head width, so the number of heads cannot be inferred: pass { config: { n_head } } (the checkpoint's config.json)`,
    );
  }
  return dim / HEAD_DIM;
}

/** The config's settings, checked against what the shapes say. */
function checkConfig(
  config: GPT2Config | undefined,
  seen: { vocabSize: number; dim: number; contextLength: number; layers: number },
): { activation: 'gelu' | 'gelu_tanh'; layerNormEps: number } {
  if (!config) return { activation: 'gelu_tanh', layerNormEps: 1e-5 };
  const against: [keyof GPT2Config, number][] = [
    ['vocab_size', seen.vocabSize],
    ['n_embd', seen.dim],
    ['n_positions', seen.contextLength],
    ['n_layer', seen.layers],
  ];
  for (const [k, v] of against) {
    if (config[k] !== undefined && config[k] !== v) throw new ShapeError(`${OP}: config.${String(k)} is ${String(config[k])}, but the checkpoint's tensors have ${v}`);
  }
  if (config.n_inner !== undefined && config.n_inner !== null && config.n_inner !== 4 * seen.dim) {
    throw new ShapeError(`${OP}: config.n_inner ${String(config.n_inner)} is not 4 × n_embd; webgrad's GPT has MLPs of 4 × n_embd`);
  }
  for (const [k, fine] of [['scale_attn_weights', true], ['scale_attn_by_inverse_layer_idx', false], ['reorder_and_upcast_attn', false]] as const) {
    if (config[k] !== undefined && config[k] !== fine) throw new WebGradError(`${OP}: config.${k} = ${String(config[k])} is not supported (GPT-2's is ${fine})`);
  }
  const fn = config.activation_function ?? 'gelu_new';
  if (fn !== 'gelu' && !TANH_GELUS.has(fn)) {
    throw new WebGradError(`${OP}: config.activation_function "${String(fn)}" is not supported (gelu_new, gelu_pytorch_tanh, gelu_fast or gelu)`);
  }
  const eps = config.layer_norm_epsilon ?? 1e-5;
  if (typeof eps !== 'number' || !(eps > 0)) throw new WebGradError(`${OP}: config.layer_norm_epsilon must be a positive number, got ${String(eps)}`);
  return { activation: fn === 'gelu' ? 'gelu' : 'gelu_tanh', layerNormEps: eps };
}

/** [rows, cols] row-major → [cols, rows] row-major. */
function transpose(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c]!;
  return out;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function list(names: readonly string[]): string {
  return names.slice(0, 8).join(', ') + (names.length > 8 ? `, … (${names.length} in all)` : '');
}
