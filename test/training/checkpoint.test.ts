import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { gpu, wg } from '../helpers';

beforeAll(() => gpu());
afterAll(() => wg.shutdown());

function setup(seed: number) {
  wg.manualSeed(seed);
  const model = new wg.nn.Sequential(new wg.nn.Linear(6, 5), new wg.nn.ReLU(), new wg.nn.Linear(5, 3));
  const optimizer = new wg.optim.Adam(model.parameters(), { lr: 0.01 });
  return { model, optimizer };
}

async function trainSteps(model: wg.nn.Module, optimizer: wg.optim.Optimizer, steps: number): Promise<void> {
  const x = wg.tensor(Float32Array.from({ length: 24 }, (_, i) => Math.sin(i)), [4, 6]);
  const y = new Int32Array([0, 1, 2, 1]);
  for (let i = 0; i < steps; i++) {
    optimizer.zeroGrad();
    wg.tidy(() => wg.crossEntropy(model.forward(x), y).backward());
    optimizer.step();
  }
  await wg.sync();
}

async function values(m: wg.nn.Module): Promise<number[]> {
  const out: number[] = [];
  for (const t of Object.values(m.stateDict())) out.push(...(await t.toArray()));
  return out;
}

describe('checkpoints', () => {
  it('model and optimizer state round-trip bit-exactly, and training resumes identically', async () => {
    const a = setup(1);
    await trainSteps(a.model, a.optimizer, 3);
    const bytes = await wg.io.saveCheckpoint({ model: a.model, optimizer: a.optimizer, progress: { epoch: 3, note: 'x' } });
    expect(wg.io.readCheckpointProgress(bytes)).toEqual({ epoch: 3, note: 'x' });
    const b = setup(2); // different initial weights
    expect(await values(b.model)).not.toEqual(await values(a.model));
    const progress = wg.io.loadCheckpoint(bytes, b);
    expect(progress).toEqual({ epoch: 3, note: 'x' });
    expect(await values(b.model)).toEqual(await values(a.model));
    expect(b.optimizer.stepCount).toBe(3);
    // Both continue with the same Adam moments and step counts: identical parameters after.
    await trainSteps(a.model, a.optimizer, 2);
    await trainSteps(b.model, b.optimizer, 2);
    expect(await values(b.model)).toEqual(await values(a.model));
  });

  it('a checkpoint for another model changes nothing and says what does not fit', async () => {
    const a = setup(1);
    const bytes = await wg.io.saveCheckpoint({ model: a.model, optimizer: a.optimizer });
    wg.manualSeed(5);
    const other = new wg.nn.Sequential(new wg.nn.Linear(6, 4), new wg.nn.ReLU(), new wg.nn.Linear(4, 3));
    const before = await values(other);
    expect(() => wg.io.loadCheckpoint(bytes, { model: other })).toThrowError(/loadStateDict: 0\.weight has shape \[5, 6\], the module expects \[4, 6\]/);
    expect(await values(other)).toEqual(before);
  });

  it('tensor names from the file are plain entries: "model.__proto__" and "model.constructor" are unexpected', async () => {
    const a = setup(1);
    const sd: Record<string, wg.Tensor> = Object.create(null);
    for (const [k, t] of Object.entries(a.model.stateDict())) sd[`model.${k}`] = t;
    for (const name of ['__proto__', 'constructor']) {
      const extra = wg.zeros([1]);
      const bytes = await wg.io.saveSafetensors({ ...sd, [`model.${name}`]: extra }, { 'webgrad.checkpoint': JSON.stringify({ version: 1, progress: {} }) });
      extra.dispose();
      expect(() => wg.io.loadCheckpoint(bytes, { model: a.model }), name).toThrowError(new RegExp(`loadStateDict: unexpected ${name}$`));
    }
  });

  it('a plain safetensors file is not mistaken for a checkpoint', async () => {
    const plain = await wg.io.saveSafetensors({ w: wg.ones([2]) });
    expect(() => wg.io.readCheckpointProgress(plain)).toThrowError(/not a webgrad checkpoint/);
  });
});

/** `bytes` with its checkpoint metadata (the JSON text under "webgrad.checkpoint") rewritten by `edit`. */
function withMetaText(bytes: Uint8Array, edit: (json: string) => string): Uint8Array {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  header.__metadata__['webgrad.checkpoint'] = edit(header.__metadata__['webgrad.checkpoint']);
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + padded + bytes.length - 8 - n);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.fill(0x20, 8, 8 + padded);
  out.set(json, 8);
  out.set(bytes.subarray(8 + n), 8 + padded);
  return out;
}

/** The same, editing the parsed metadata object. */
function withMeta(bytes: Uint8Array, edit: (meta: { optimizer: Record<string, unknown> } & Record<string, unknown>) => void): Uint8Array {
  return withMetaText(bytes, (text) => {
    const meta = JSON.parse(text);
    edit(meta);
    return JSON.stringify(meta);
  });
}

describe('checkpoint contents are checked like constructor options', () => {
  async function adamCheckpoint(kind: 'Adam' | 'AdamW' = 'Adam'): Promise<Uint8Array> {
    wg.manualSeed(1);
    const model = new wg.nn.Sequential(new wg.nn.Linear(6, 5), new wg.nn.ReLU(), new wg.nn.Linear(5, 3));
    const optimizer = new wg.optim[kind](model.parameters(), { lr: 0.01 });
    await trainSteps(model, optimizer, 2);
    return wg.io.saveCheckpoint({ model, optimizer, progress: { epoch: 1 } });
  }

  /** Loading `bytes` into a fresh Adam setup fails with `message`, a WebGradError, and changes nothing. */
  async function refused(bytes: Uint8Array, message: RegExp, into: 'Adam' | 'SGD' = 'Adam'): Promise<void> {
    const b = setup(2);
    const optimizer = into === 'Adam' ? b.optimizer : new wg.optim.SGD(b.model.parameters(), { lr: 0.1, momentum: 0.9 });
    const before = await values(b.model);
    const lr = optimizer.lr;
    let err: unknown;
    try {
      wg.io.loadCheckpoint(bytes, { model: b.model, optimizer });
    } catch (e) {
      err = e;
    }
    expect(err, String(message)).toBeInstanceOf(wg.WebGradError);
    expect((err as Error).message).toMatch(message);
    expect(await values(b.model)).toEqual(before);
    expect(optimizer.lr).toBe(lr);
    expect(optimizer.stepCount).toBe(0);
    expect(Object.keys(optimizer.stateDict().state)).toEqual([]);
  }

  it('bad hyper-parameters are refused with the constructor\'s own message', async () => {
    const bytes = await adamCheckpoint();
    const hp = (h: Record<string, unknown>) => withMeta(bytes, (m) => Object.assign(m.optimizer.hyperParams as object, h));
    const cases: [Record<string, unknown>, Partial<wg.optim.AdamOptions> & Record<string, unknown>][] = [
      [{ lr: -5 }, { lr: -5 }],
      [{ betas: [] }, { betas: [] as unknown as [number, number] }],
      [{ betas: [5, -1] }, { betas: [5, -1] }],
      [{ betas: [0.9, 'x'] }, { betas: [0.9, 'x'] as unknown as [number, number] }],
      [{ eps: -1 }, { eps: -1 }],
      [{ weightDecay: 'a lot' }, { weightDecay: 'a lot' as unknown as number }],
    ];
    for (const [saved, options] of cases) {
      // The constructor's message, with the constructor's name for the loader's.
      let ctor = '';
      try {
        new wg.optim.Adam([wg.zeros([1], { requiresGrad: true })], { lr: 0.01, ...options } as wg.optim.AdamOptions);
      } catch (e) {
        ctor = (e as Error).message;
      }
      expect(ctor, JSON.stringify(saved)).toMatch(/^Adam: /);
      await refused(hp(saved), new RegExp(`^${escape(ctor.replace(/^Adam: /, 'Adam.loadStateDict: '))}$`));
    }
    // 1e999 is how JSON spells an overflow: it parses as Infinity.
    await refused(withMetaText(bytes, (t) => t.replace('"lr":0.01', '"lr":1e999')), /Adam\.loadStateDict: lr must be a number ≥ 0, got Infinity/);
  });

  it('SGD hyper-parameters, and how they combine, are checked as in the constructor', async () => {
    const b = setup(3);
    const sgd = new wg.optim.SGD(b.model.parameters(), { lr: 0.1, momentum: 0.9 });
    await trainSteps(b.model, sgd, 1);
    const bytes = await wg.io.saveCheckpoint({ model: b.model, optimizer: sgd });
    const hp = (h: Record<string, unknown>) => withMeta(bytes, (m) => Object.assign(m.optimizer.hyperParams as object, h));
    await refused(hp({ nesterov: true, momentum: 0 }), /SGD\.loadStateDict: Nesterov momentum needs momentum > 0 and dampening 0/, 'SGD');
    await refused(hp({ nesterov: 'yes' }), /SGD\.loadStateDict: nesterov must be true or false, got "yes"/, 'SGD');
    await refused(hp({ momentum: null }), /SGD\.loadStateDict: momentum must be a number ≥ 0, got null/, 'SGD');
  });

  it('step counts and metadata that are not what a checkpoint holds are refused, never a TypeError', async () => {
    const bytes = await adamCheckpoint();
    await refused(withMeta(bytes, (m) => (m.optimizer.step = 'abc')), /Adam\.loadStateDict: step must be a non-negative integer, got "abc"/);
    await refused(withMeta(bytes, (m) => (m.optimizer.step = -1)), /step must be a non-negative integer, got -1/);
    await refused(withMeta(bytes, (m) => ((m.optimizer.paramSteps as Record<string, unknown>)['0'] = 1.5)), /paramSteps/);
    await refused(withMeta(bytes, (m) => delete m.optimizer.paramSteps), /loadCheckpoint: the optimizer metadata has no paramSteps/);
    await refused(withMeta(bytes, (m) => (m.optimizer.hyperParams = [1])), /hyperParams must be an object/);
    await refused(withMetaText(bytes, () => 'null'), /loadCheckpoint: the checkpoint metadata must be a JSON object, got null/);
    await refused(withMetaText(bytes, () => '[]'), /the checkpoint metadata must be a JSON object/);
    await refused(withMeta(bytes, (m) => (m.version = 7)), /loadCheckpoint: checkpoint format version 7 is not supported \(this webgrad reads version 1\)/);
    await refused(withMeta(bytes, (m) => (m.progress = 'far')), /loadCheckpoint: progress must be an object, got "far"/);
    await refused(withMeta(bytes, (m) => ((m as Record<string, unknown>).optimizer = 3)), /loadCheckpoint: the optimizer metadata must be an object, got 3/);
    expect(() => wg.io.readCheckpointProgress(withMetaText(bytes, () => 'null'))).toThrowError(/must be a JSON object/);
  });

  it("a Trainer's automatic checkpoint: progress and loss scaler state are checked before anything loads", async () => {
    let saved: Uint8Array | null = null;
    const store = { where: 'a test store', save: async (b: Uint8Array) => void (saved = b), load: async () => saved };
    const { model, optimizer } = setup(4);
    const t = new wg.Trainer({ model, optimizer, loss: 'cross-entropy', precision: 'f16-mixed', checkpoint: { every: 1, store } });
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {}); // no shader-f16 here
    await t.step(wg.tensor(Float32Array.from({ length: 24 }, (_, i) => Math.cos(i)), [4, 6]), wg.tensor([0, 1, 2, 1], [4], { dtype: 'int32' }));
    warn.mockRestore();
    const good = saved!;
    const before = await values(model);
    const progress = (edit: (p: Record<string, unknown>) => void) => withMeta(good, (m) => edit(m.progress as Record<string, unknown>));
    const cases: [Uint8Array, RegExp][] = [
      [progress((p) => (p.step = -1)), /Trainer\.recover \(a test store\): step must be a non-negative integer, got -1/],
      [progress((p) => (p.epoch = 'one')), /epoch must be a non-negative integer, got "one"/],
      [progress((p) => (p.rng = [1, 2])), /rng must be the generator's state, four 32-bit unsigned integers not all 0; got \[1,2\]/],
      [progress((p) => (p.rng = [0, 0, 0, 0])), /rng must be the generator's state/],
      [progress((p) => ((p.lossScaler as Record<string, unknown>).scale = 0)), /the loss scale must be a number ≥ 5e-324, got 0/],
      [progress((p) => ((p.lossScaler as Record<string, unknown>).finiteRun = 0.5)), /finiteRun must be a non-negative integer, got 0\.5/],
      [progress((p) => delete p.rng), /a checkpoint without a Trainer's progress \(step, rng\)/],
    ];
    for (const [bytes, message] of cases) {
      saved = bytes;
      await expect(t.recover(), String(message)).rejects.toThrowError(message);
      expect(await values(model)).toEqual(before);
      expect(t.lossScale).toBe(2 ** 16);
    }
  });

  it('a checkpoint of another optimizer kind is refused by name', async () => {
    await refused(await adamCheckpoint('AdamW'), /loadCheckpoint: the checkpoint holds AdamW optimizer state; the optimizer given is Adam/);
    await refused(await adamCheckpoint('Adam'), /loadCheckpoint: the checkpoint holds Adam optimizer state; the optimizer given is SGD/, 'SGD');
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
