// Data parallelism inside one process: replicas (each with its own model, sharing the one GPU
// device) talk to a Hub over MessageChannels. The summed gradients are checked bit for bit
// against a CPU sum in the ring's fixed order, the parameters against one device training on the
// global batch; replicas leave mid-step and join mid-session; a replica rejects what does not fit.
// A hub driven by hand checks what it relays: who holds the state, and each message of an attempt
// against what its sender owes (and, past the deadline, who holds the attempt up).

import { afterEach, describe, expect, it } from 'vitest';
import { decodeFrame, encodeFrame } from '../../src/distributed/frame';
import type { Members } from '../../src/distributed/messages';
import { BucketPlan, modelLayout } from '../../src/distributed/layout';
import type { Transport } from '../../src/distributed/transport';
import { expectClose, gpu, relErr, Rng, wg } from '../helpers';

const D = wg.distributed;
const IN = 7;
const CLASSES = 3;
/** Small buckets and parts, so that a tiny model still spans several of each. */
const HUB_OPTS = { bucketBytes: 256, partBytes: 64, timeoutMs: 30_000 };

function makeModel(seed: number): wg.nn.Sequential {
  wg.manualSeed(seed);
  return new wg.nn.Sequential(new wg.nn.Linear(IN, 9), new wg.nn.ReLU(), new wg.nn.Linear(9, CLASSES));
}

function makeTrainer(seed: number, opts: Partial<wg.TrainerOptions> = {}): wg.Trainer {
  const model = makeModel(seed);
  return new wg.Trainer({ model, optimizer: new wg.optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 }), loss: 'cross-entropy', ...opts });
}

interface CpuBatch {
  x: Float32Array;
  y: Int32Array;
  size: number;
}

function batchFor(step: number, size: number): CpuBatch {
  const rng = new Rng(1000 + step);
  return { x: Float32Array.from(rng.array(size * IN)), y: Int32Array.from({ length: size }, () => rng.int(CLASSES)), size };
}

function slice(b: CpuBatch, start: number, count: number): { x: wg.Tensor; y: wg.Tensor } {
  return {
    x: wg.tensor(b.x.subarray(start * IN, (start + count) * IN), [count, IN]),
    y: wg.tensor(b.y.subarray(start, start + count), [count], { dtype: 'int32' }),
  };
}

/** A shard function: this rank's slice of the global batch of `step`. */
function shardOf(globalBatch: number): wg.distributed.ShardFn {
  return ({ step, rank, worldSize }) => {
    const { start, count } = D.shardRange(globalBatch, rank, worldSize);
    return slice(batchFor(step, globalBatch), start, count);
  };
}

function localTransport(hub: wg.distributed.Hub): wg.distributed.Transport {
  const { port1, port2 } = new MessageChannel();
  D.servePort(hub, port1);
  return new D.MessagePortTransport(port2);
}

async function params(holder: { model: wg.nn.Module }): Promise<Float32Array[]> {
  return Promise.all(holder.model.parameters().map(async (p) => (await p.toArray()) as Float32Array));
}

async function grads(trainer: wg.Trainer): Promise<Float32Array[]> {
  return Promise.all(trainer.model.parameters().map(async (p) => (await p.grad!.toArray()) as Float32Array));
}

function expectSameBits(a: Float32Array[], b: Float32Array[], what: string): void {
  expect(a.length, what).toBe(b.length);
  a.forEach((t, i) => expect(Buffer.from(t.buffer, t.byteOffset, t.byteLength).equals(Buffer.from(b[i]!.buffer, b[i]!.byteOffset, b[i]!.byteLength)), `${what}: tensor ${i}`).toBe(true));
}

/** One device training on the same global batches. */
/** Parameters `got` equal (1e-5) one device's after `steps` steps of the global batches. */
async function expectOneDevice(got: Float32Array[], steps: number, globalBatch: number): Promise<void> {
  const single = await reference(steps, globalBatch);
  single.forEach((p, i) => expect(relErr(got[i]!, p), `parameter ${i} vs one device`).toBeLessThan(1e-5));
}

async function reference(steps: number, globalBatch: number): Promise<Float32Array[]> {
  const t = makeTrainer(1);
  for (let s = 0; s < steps; s++) {
    const { x, y } = slice(batchFor(s, globalBatch), 0, globalBatch);
    await t.step(x, y);
    x.dispose();
    y.dispose();
  }
  const out = await params(t);
  t.optimizer.dispose();
  t.model.dispose();
  return out;
}

/** `p`, or a failure that tells what the replicas were doing if it has not settled within `ms`. */
async function within<T>(ms: number, p: Promise<T>, story: () => string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still waiting after ${ms / 1000} s:\n${story()}`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((r) => setTimeout(r, 5));
}

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) f();
});

function session(opts = HUB_OPTS): wg.distributed.Hub {
  const hub = new D.Hub(opts);
  cleanup.push(() => hub.close());
  return hub;
}

function replica(hub: wg.distributed.Hub, seed: number, extra: Partial<wg.distributed.DataParallelOptions> = {}, trainerOpts: Partial<wg.TrainerOptions> = {}) {
  const trainer = makeTrainer(seed, trainerOpts);
  const dp = new D.DataParallel({ trainer, transport: localTransport(hub), ...extra });
  cleanup.push(() => {
    dp.close();
    trainer.optimizer.dispose();
    trainer.model.dispose();
  });
  return { trainer, dp };
}

describe('shards and buckets', () => {
  it('shardRange cuts any batch into contiguous slices that differ by at most one sample', () => {
    for (const [B, W] of [[96, 3], [10, 3], [2, 3], [7, 1], [0, 2]] as const) {
      let next = 0;
      for (let r = 0; r < W; r++) {
        const { start, count } = D.shardRange(B, r, W);
        expect(start).toBe(next);
        expect(count).toBeGreaterThanOrEqual(Math.floor(B / W));
        expect(count).toBeLessThanOrEqual(Math.ceil(B / W));
        next += count;
      }
      expect(next).toBe(B);
    }
    expect(() => D.shardRange(8, 3, 3)).toThrow(/rank 3 of 3/);
  });

  it('a bucket plan covers every gradient element exactly once, and rejects declarations that do not fit', async () => {
    await gpu();
    const model = makeModel(1);
    const plan = new BucketPlan(modelLayout(model), 256, 64);
    const covered = new Int32Array(plan.total);
    for (let b = 0; b < plan.buckets.length; b++) {
      for (let c = 0; c < 3; c++) {
        for (const [o, n] of plan.parts(b, c, 3)) {
          expect(n).toBeLessThanOrEqual(16);
          const segs = plan.segments(b, o, n);
          expect(segs.reduce((k, s) => k + s.count, 0)).toBe(n);
          for (let i = 0; i < n; i++) covered[plan.buckets[b]!.start + o + i]!++;
          plan.checkGradientPart({ bucket: b, offset: o, count: n, tensors: segs, dtype: 'float32' }, n * 4);
        }
      }
    }
    expect([...covered].every((k) => k === 1)).toBe(true);
    expect(plan.buckets.length).toBeGreaterThan(1);
    const segs = plan.segments(0, 0, 16);
    const wrong = segs.map((s, i) => (i === 0 ? { ...s, shape: [s.shape[1], s.shape[0]] } : s));
    expect(() => plan.checkGradientPart({ bucket: 0, offset: 0, count: 16, tensors: wrong, dtype: 'float32' }, 64)).toThrow(/declares tensor "0.weight" \[7, 9\] float32; the model's parameter there is "0.weight" \[9, 7\]/);
    expect(() => plan.checkGradientPart({ bucket: 0, offset: 0, count: 16, tensors: segs, dtype: 'float32' }, 60)).toThrow(/carries 60 bytes/);
    expect(() => plan.checkGradientPart({ bucket: 99, offset: 0, count: 16, tensors: segs, dtype: 'float32' }, 64)).toThrow(/bucket 99/);
    model.dispose();
  });
});

/** Members of a hub driven by hand: what each was sent, and a way to send as it. */
function handDriven(hub: wg.distributed.Hub, names: string[]) {
  const members = names.map((name) => {
    const got: Record<string, unknown>[] = [];
    const conn = hub.connect({ send: (bytes) => got.push(decodeFrame(bytes).header), close: () => undefined });
    conn.receive(encodeFrame({ type: 'join', name, layout: HAND_LAYOUT, agreement: {}, sync: { every: 1, outer: null, wire: 'f32' } }));
    return {
      got,
      send: (h: { type: string; [k: string]: unknown }, payload?: Float32Array) => conn.receive(encodeFrame(h, payload)),
      lastMembers: () => got.filter((h) => h.type === 'members').at(-1) as unknown as Members,
    };
  });
  return members;
}

const HAND_LAYOUT = [{ name: 'w', shape: [4], dtype: 'float32' as const }];

/**
 * Every message of an attempt that members 1…W of a hand-driven hub send after the leader's begin
 * (state parts aside), in an order the ring allows: shards, the ring's steps, "done", the commit.
 */
function playAttempt(members: ReturnType<typeof handDriven>, b: { step: number; attempt: number; participants: number[] }, upTo: 'commit' | 'ring' = 'commit'): void {
  const plan = new BucketPlan(HAND_LAYOUT, HUB_OPTS.bucketBytes, HUB_OPTS.partBytes);
  const P = b.participants;
  const W = P.length;
  const as = (id: number) => members[id - 1]!;
  const at = { step: b.step, attempt: b.attempt };
  if (W > 1) for (const id of P) as(id).send({ type: 'shard', to: P.filter((p) => p !== id), ...at, samples: 1, via: 'relay' });
  const mod = (i: number) => ((i % W) + W) % W;
  for (let t = 0; t < 2 * (W - 1); t++) {
    P.forEach((id, r) => {
      const phase = t < W - 1 ? 'reduce' : 'gather';
      const c = t < W - 1 ? mod(r - t) : mod(r + 1 - (t - (W - 1)));
      for (const [offset, count] of plan.parts(0, c, W)) {
        as(id).send({ type: 'grad', to: [P[(r + 1) % W]], ...at, phase, bucket: 0, offset, count, tensors: plan.segments(0, offset, count), dtype: 'float32' }, new Float32Array(count));
      }
    });
  }
  if (upTo === 'ring') return;
  for (const id of P.slice(1)) as(id).send({ type: 'done', to: [P[0]], ...at, lossSum: 0, finite: true });
  as(P[0]!).send({ type: 'commit', to: P, ...at, loss: 1, globalBatch: W, skipped: false });
}

describe('the hub', () => {
  it('keeps counting as holders of the state the replicas a leader sends it to again, so that its leaving hands the session on', () => {
    const hub = session();
    const ms = handDriven(hub, ['one', 'two', 'three']);
    const [m1, m2] = ms;
    m1!.send({ type: 'begin', to: [2, 3], step: 0, attempt: 0, participants: [1, 2, 3], syncTo: [2, 3] });
    m1!.send({ type: 'sync', to: [2, 3], step: 0, attempt: 0, part: 0, parts: 1, bytes: 4 }, new Float32Array(1));
    playAttempt(ms, { step: 0, attempt: 0, participants: [1, 2, 3] });
    expect(m2!.lastMembers()).toMatchObject({ leader: 1, synced: [1, 2, 3] });
    // 2 and 3 hold the state of step 1 whether or not the leader sends it to them again.
    m1!.send({ type: 'begin', to: [2, 3], step: 1, attempt: 1, participants: [1, 2, 3], syncTo: [2, 3] });
    expect(m2!.lastMembers()).toMatchObject({ leader: 1, synced: [1, 2, 3] });
    m1!.send({ type: 'leave' });
    expect(m2!.lastMembers()).toMatchObject({ leader: 2, synced: [2, 3], lastBegin: { step: 1, attempt: 1 } });
  });
});

describe('the hub checks each message of an attempt against what its sender owes', () => {
  /** Why the hub closed member `m` (its "closed" message), or null while it is in. */
  const closedWhy = (m: ReturnType<typeof handDriven>[number]) => (m.got.find((h) => h.type === 'closed')?.reason as string | undefined) ?? null;

  /** A hub with members one, two, three (and four, who takes no part), attempt 0 of step 0 begun with 1, 2, 3. */
  function begun(opts: Partial<wg.distributed.HubOptions> = {}, syncTo: number[] = []) {
    const hub = session({ ...HUB_OPTS, ...opts });
    const ms = handDriven(hub, ['one', 'two', 'three', 'four']);
    ms[0]!.send({ type: 'begin', to: [2, 3], step: 0, attempt: 0, participants: [1, 2, 3], syncTo });
    return ms;
  }
  const at = { step: 0, attempt: 0 };

  it('refuses a second shard, one sent to only some, one from a member that takes no part, and one of an attempt nobody began', () => {
    let [, two, , four] = begun();
    two!.send({ type: 'shard', to: [1, 3], ...at, samples: 1, via: 'relay' });
    two!.send({ type: 'shard', to: [1, 3], ...at, samples: 1, via: 'relay' });
    expect(closedWhy(two!)).toMatch(/two #2 sent a second "shard" in attempt 0/);
    [, two] = begun();
    two!.send({ type: 'shard', to: [1], ...at, samples: 1, via: 'relay' });
    expect(closedWhy(two!)).toMatch(/a "shard" of attempt 0 goes to the other participants \(members 1, 3\), not to 1/);
    [, , , four] = begun();
    four!.send({ type: 'shard', to: [1, 2, 3], ...at, samples: 1, via: 'relay' });
    expect(closedWhy(four!)).toMatch(/a "shard" of step 0 attempt 0, which four #4 takes no part in/);
    [, two] = begun();
    two!.send({ type: 'shard', to: [1, 3], step: 0, attempt: 5, samples: 1, via: 'relay' });
    expect(closedWhy(two!)).toMatch(/a "shard" of step 0 attempt 5, which no leader began \(the latest is step 0 attempt 0\)/);
  });

  it('refuses gradients out of the ring\'s order, "done" before the gradients and a commit before every "done"', () => {
    const plan = new BucketPlan(HAND_LAYOUT, HUB_OPTS.bucketBytes, HUB_OPTS.partBytes);
    let ms = begun();
    ms[1]!.send({ type: 'shard', to: [1, 3], ...at, samples: 1, via: 'relay' });
    // Rank 1 sends chunk 1 ([1, 2) of the 4 elements) at ring step 0, not chunk 0.
    ms[1]!.send({ type: 'grad', to: [3], ...at, phase: 'reduce', bucket: 0, offset: 0, count: 1, tensors: plan.segments(0, 0, 1), dtype: 'float32' }, new Float32Array(1));
    expect(closedWhy(ms[1]!)).toMatch(/a "grad" message \(reduce bucket 0 \[0, \+1\)\) out of the ring's order: reduce bucket 0 \[1, \+1\) is due from two #2/);
    ms = begun();
    ms[1]!.send({ type: 'shard', to: [1, 3], ...at, samples: 1, via: 'relay' });
    ms[1]!.send({ type: 'done', to: [1], ...at, lossSum: 0, finite: true });
    expect(closedWhy(ms[1]!)).toMatch(/two #2 sent "done" in attempt 0 before its gradients/);
    ms = begun();
    playAttempt(ms, { ...at, participants: [1, 2, 3] }, 'ring');
    ms[1]!.send({ type: 'done', to: [1], ...at, lossSum: 0, finite: true });
    ms[0]!.send({ type: 'commit', to: [1, 2, 3], ...at, loss: 0, globalBatch: 3, skipped: false });
    expect(closedWhy(ms[0]!)).toMatch(/the leader committed attempt 0 before every participant held the sums/);
    expect(closedWhy(ms[1]!)).toBeNull();
  });

  it('past the deadline, drops whoever holds the attempt up: the leader that sends no state, a participant that sends no "done", a leader that does not commit', async () => {
    const fast = { minStepDeadlineMs: 30 };
    const overdue = () => new Promise((r) => setTimeout(r, 100));
    let ms = begun(fast, [2]);
    ms[2]!.send({ type: 'shard', to: [1, 2], ...at, samples: 1, via: 'relay' }); // three has the state: it owes nothing more yet
    await overdue();
    expect(closedWhy(ms[0]!)).toMatch(/one #1 held up step 0 \(attempt 0\): it had not sent the state, to the replicas that joined [\d.]+ s after the attempt began \(deadline 0\.0 s, before any step was timed\)/);
    expect(ms.slice(1).map(closedWhy)).toEqual([null, null, null]);
    ms = begun(fast);
    playAttempt(ms, { ...at, participants: [1, 2, 3] }, 'ring');
    ms[1]!.send({ type: 'done', to: [1], ...at, lossSum: 0, finite: true });
    await overdue();
    expect(ms.map(closedWhy)).toEqual([null, null, expect.stringMatching(/three #3 held up step 0 \(attempt 0\): it had not sent its "done"/), null]);
    ms = begun(fast);
    playAttempt(ms, { ...at, participants: [1, 2, 3] }, 'ring');
    for (const m of ms.slice(1, 3)) m.send({ type: 'done', to: [1], ...at, lossSum: 0, finite: true });
    await overdue();
    expect(ms.map(closedWhy)).toEqual([expect.stringMatching(/one #1 held up step 0 \(attempt 0\): it had not sent the commit/), null, null, null]);
  });
});

describe('DataParallel over MessageChannels', () => {
  for (const reduce of ['cpu', 'gpu'] as const) it(`three replicas sum gradients (on the ${reduce.toUpperCase()}) bit-identically in the ring order and match one device on the global batch`, async () => {
    await gpu();
    const hub = session();
    const B = 10; // shards of 4, 3 and 3
    // Different initial weights: rank 0's state is sent to the others before the first step.
    const rs = [replica(hub, 1, { minReplicas: 3, reduce }), replica(hub, 2, { reduce }), replica(hub, 3, { reduce })];
    await Promise.all(rs.map((r) => r.dp.ready()));
    const results = await Promise.all(rs.map((r) => r.dp.step(shardOf(B))));
    expect(results.map((r) => r.rank)).toEqual([0, 1, 2]);
    expect(results.map((r) => r.samples)).toEqual([4, 3, 3]);
    for (const r of results) {
      expect(r).toMatchObject({ step: 0, globalBatch: B, worldSize: 3, attempts: 1 });
      expect(r.loss).toBe(results[0]!.loss);
      expect(r.bytesSent).toBeGreaterThan(0);
    }
    const summed = await Promise.all(rs.map((r) => grads(r.trainer)));
    expectSameBits(summed[1]!, summed[0]!, 'gradients of rank 1 vs rank 0');
    expectSameBits(summed[2]!, summed[0]!, 'gradients of rank 2 vs rank 0');

    // The CPU reference: each rank's own gradients (scaled by its share), summed chunk by chunk
    // starting at the chunk's rank, exactly as the ring does.
    const t = makeTrainer(1);
    const plan = new BucketPlan(modelLayout(t.model), HUB_OPTS.bucketBytes, HUB_OPTS.partBytes);
    const local: Float32Array[] = [];
    for (let r = 0; r < 3; r++) {
      const { start, count } = D.shardRange(B, r, 3);
      const { x, y } = slice(batchFor(0, B), start, count);
      await t.computeGradients(x, y, { gradScale: count / B });
      const flat = new Float32Array(plan.total);
      (await grads(t)).forEach((g, i) => flat.set(g, plan.offsets[i]!));
      local.push(flat);
      x.dispose();
      y.dispose();
    }
    const expected = new Float32Array(plan.total);
    for (let b = 0; b < plan.buckets.length; b++) {
      for (let c = 0; c < 3; c++) {
        const [lo, hi] = plan.chunk(b, c, 3);
        for (let i = plan.buckets[b]!.start + lo; i < plan.buckets[b]!.start + hi; i++) {
          let s = local[c]![i]!;
          for (let k = 1; k < 3; k++) s = Math.fround(s + local[(c + k) % 3]![i]!);
          expected[i] = s;
        }
      }
    }
    const got = new Float32Array(plan.total);
    summed[0]!.forEach((g, i) => got.set(g, plan.offsets[i]!));
    expectSameBits([got], [expected], 'ring sums vs the fixed-order CPU sum');
    t.optimizer.dispose();
    t.model.dispose();

    const after = await Promise.all(rs.map((r) => params(r.trainer)));
    expectSameBits(after[1]!, after[0]!, 'parameters of rank 1 vs rank 0');
    expectSameBits(after[2]!, after[0]!, 'parameters of rank 2 vs rank 0');
    await expectOneDevice(after[0]!, 1, B);
  });

  it('a replica that leaves mid-step makes the others re-run the step without it; one that joins later gets the state', async () => {
    await gpu();
    const hub = session();
    const B = 12;
    const [a, b, c] = [replica(hub, 1, { minReplicas: 3 }), replica(hub, 2), replica(hub, 3)];
    await Promise.all([a, b, c].map((r) => r.dp.ready()));
    const steps = (r: typeof a, n: number) =>
      (async () => {
        const out = [];
        for (let i = 0; i < n; i++) out.push(await r.dp.step(shardOf(B)));
        return out;
      })();
    // c takes steps 0 and 1, then leaves in the middle of step 2, once the step has begun.
    const cRun = (async () => {
      await c.dp.step(shardOf(B));
      await c.dp.step(shardOf(B));
      return c.dp.step((at) => {
        c.dp.close();
        return shardOf(B)(at);
      });
    })();
    const cLeft = expect(cRun).rejects.toThrow(/left the session/);
    const [ra, rb] = await Promise.all([steps(a, 3), steps(b, 3)]);
    await cLeft;
    expect(ra[2]).toMatchObject({ step: 2, worldSize: 2, attempts: 2, globalBatch: B });
    expect(rb[2]).toMatchObject({ step: 2, worldSize: 2, attempts: 2 });
    expect(ra.slice(0, 2).map((r) => r.worldSize)).toEqual([3, 3]);

    // d joins with other weights and is sent the state at the next step boundary.
    const d = replica(hub, 7);
    const membership: wg.distributed.Membership[] = [];
    d.dp.onMembershipChange = (m) => membership.push(m);
    const dStep = d.dp.step(shardOf(B));
    // Once the leader knows d is waiting, d takes part in the next step (else it would wait for the one after).
    await until(() => a.dp.peers.some((p) => p.joining));
    const [r3a, r3b, r3d] = await Promise.all([a.dp.step(shardOf(B)), b.dp.step(shardOf(B)), dStep]);
    expect([r3a.step, r3b.step, r3d.step]).toEqual([3, 3, 3]);
    expect(r3d).toMatchObject({ worldSize: 3, rank: 2, globalBatch: B });
    expect(d.dp.steps).toBe(4);
    const last = membership.at(-1)!;
    expect(last.peers.map((p) => p.rank)).toEqual([0, 1, 2]);
    expect(last.peers.find((p) => p.isSelf)!.rank).toBe(2);
    expect(last.peers[0]!.isLeader).toBe(true);

    const [pa, pb, pd] = await Promise.all([params(a.trainer), params(b.trainer), params(d.trainer)]);
    expectSameBits(pb, pa, 'b vs a');
    expectSameBits(pd, pa, 'd (joined at step 3) vs a');
    // Every step used the whole global batch once: one device on the same batches.
    await expectOneDevice(pa, 4, B);
  });

  it('the leader leaving mid-step hands the session to the next replica, which re-runs the step', async () => {
    await gpu();
    const hub = session();
    const B = 9;
    const [a, b, c] = [replica(hub, 1, { minReplicas: 3 }), replica(hub, 2), replica(hub, 3)];
    await Promise.all([a, b, c].map((r) => r.dp.ready()));
    await Promise.all([a, b, c].map((r) => r.dp.step(shardOf(B))));
    const aRun = a.dp.step(async (at) => {
      a.dp.close();
      return shardOf(B)(at);
    });
    const aLeft = expect(aRun).rejects.toThrow(/left the session/);
    const [rb, rc] = await Promise.all([b.dp.step(shardOf(B)), c.dp.step(shardOf(B))]);
    await aLeft;
    expect(rb).toMatchObject({ step: 1, rank: 0, worldSize: 2, attempts: 2 });
    expect(rc).toMatchObject({ step: 1, rank: 1, worldSize: 2, attempts: 2 });
    const [pb, pc] = await Promise.all([params(b.trainer), params(c.trainer)]);
    expectSameBits(pc, pb, 'c vs b');
    await expectOneDevice(pb, 2, B);
  });

  it('the leader sends its state only to replicas that lack it, and leaving in the step after they joined hands the session on', async () => {
    // Every replica waits for 3 before the session's first step. The leader begins step 1 as soon as
    // it has committed step 0, before the others' "ready" for step 1 reach it: it must not take their
    // "ready" of step 0 (joining) as current and send them the state again. (It did, so the hub
    // counted only the leader as holding the state; when the leader then left, the next one took
    // the session for new and waited for 3 replicas among 2, forever.)
    await gpu();
    const hub = session();
    const B = 9;
    const logs = new Map<string, string[]>();
    const log = (name: string) => (line: string) => logs.set(name, [...(logs.get(name) ?? []), line]);
    const [a, b, c] = ['a', 'b', 'c'].map((n, i) => replica(hub, i + 1, { minReplicas: 3, name: n, log: log(n) }));
    await Promise.all([a!, b!, c!].map((r) => r.dp.ready()));
    await Promise.all([a!, b!, c!].map((r) => r.dp.step(shardOf(B))));
    const aRun = a!.dp.step(async (at) => {
      a!.dp.close();
      return shardOf(B)(at);
    });
    const aLeft = expect(aRun).rejects.toThrow(/left the session/);
    const story = () => [...logs].map(([n, lines]) => `${n}:\n  ${lines.join('\n  ')}`).join('\n');
    const [rb, rc] = await within(10_000, Promise.all([b!.dp.step(shardOf(B)), c!.dp.step(shardOf(B))]), story);
    await aLeft;
    const begins = logs.get('a')!.filter((l) => l.includes('begins step'));
    expect(begins, story()).toEqual(['a #1: begins step 0 attempt 0 with 1,2,3 (state to 2,3)', 'a #1: begins step 1 attempt 1 with 1,2,3']);
    expect(rb, story()).toMatchObject({ step: 1, rank: 0, worldSize: 2, attempts: 2 });
    expect(rc, story()).toMatchObject({ step: 1, rank: 1, worldSize: 2, attempts: 2 });
    const [pb, pc] = await Promise.all([params(b!.trainer), params(c!.trainer)]);
    expectSameBits(pc, pb, 'c vs b');
    await expectOneDevice(pb, 2, B);
  });

  it("the leader leaving in the session's first step: the others run it again without waiting for minReplicas anew", async () => {
    await gpu();
    const hub = session();
    const B = 9;
    const logs: string[] = [];
    const [a, b, c] = [1, 2, 3].map((seed) => replica(hub, seed, { minReplicas: 3, name: String(seed), log: (l) => logs.push(l) }));
    await Promise.all([a!, b!, c!].map((r) => r.dp.ready()));
    const aRun = a!.dp.step(async (at) => {
      a!.dp.close();
      return shardOf(B)(at);
    });
    const aLeft = expect(aRun).rejects.toThrow(/left the session/);
    const [rb, rc] = await within(10_000, Promise.all([b!.dp.step(shardOf(B)), c!.dp.step(shardOf(B))]), () => logs.join('\n'));
    await aLeft;
    // Nobody held the session's state when its leader left: b leads from its own weights.
    expect(rb).toMatchObject({ step: 0, rank: 0, worldSize: 2, attempts: 2 });
    expect(rc).toMatchObject({ step: 0, rank: 1, worldSize: 2, attempts: 2 });
    expectSameBits(await params(c!.trainer), await params(b!.trainer), 'c vs b');
  });

  it("a replica's Trainer keeps its automatic checkpoints: saved after committed steps, with the session's step", async () => {
    await gpu();
    const hub = session();
    const saved: Uint8Array[] = [];
    const store = { where: 'memory', save: async (b: Uint8Array) => void saved.push(b), load: async () => saved.at(-1) ?? null };
    const keeper = replica(hub, 1, { minReplicas: 2 }, { checkpoint: { every: 2, store } });
    const other = replica(hub, 2);
    for (let s = 0; s < 4; s++) await Promise.all([keeper.dp.step(shardOf(8)), other.dp.step(shardOf(8))]);
    // Saved after steps 2 and 4 (counted as applied), holding the parameters of that moment.
    expect(saved.map((b) => wg.io.readCheckpointProgress(b).step)).toEqual([2, 4]);
    const restored = makeModel(9);
    wg.io.loadCheckpoint(saved.at(-1)!, { model: restored });
    expectSameBits(await params({ model: restored }), await params(keeper.trainer), 'restored vs trained');
    restored.dispose();
  });

  it('shards of the tensor form add up to the global batch, and a lone replica is one device', async () => {
    await gpu();
    const hub = session();
    const r = replica(hub, 1);
    const { x, y } = slice(batchFor(0, 6), 0, 6);
    const result = await r.dp.step(x, y);
    expect(result).toMatchObject({ worldSize: 1, rank: 0, globalBatch: 6, samples: 6, attempts: 1 });
    x.dispose();
    y.dispose();
    const single = await reference(1, 6);
    expectClose((await params(r.trainer)).flatMap((p) => [...p]), single.flatMap((p) => [...p]), { rtol: 0, atol: 0, what: 'lone replica vs one device' });
  });
});

describe('non-finite gradients', () => {
  it('a replica whose loss is NaN makes every replica skip that update alike: bit-identical, as one device that skipped the step', async () => {
    await gpu();
    const hub = session();
    const B = 10;
    // Replica 2's shard of step 1 holds a NaN: its loss and gradients are NaN, and so would the sums be.
    const poisoned: wg.distributed.ShardFn = (at) => {
      const s = shardOf(B)(at) as { x: wg.Tensor; y: wg.Tensor };
      if (at.step !== 1) return s;
      const x = wg.tensor(Float32Array.from({ length: s.x.size }, () => NaN), s.x.shape);
      s.x.dispose();
      return { x, y: s.y };
    };
    const rs = [replica(hub, 1, { minReplicas: 2 }), replica(hub, 2)];
    await Promise.all(rs.map((r) => r.dp.ready()));
    const results = [];
    for (let i = 0; i < 3; i++) results.push(await Promise.all([rs[0]!.dp.step(shardOf(B)), rs[1]!.dp.step(poisoned)]));
    expect(results.map((rr) => rr.map((r) => r.skipped))).toEqual([[false, false], [true, true], [false, false]]);
    expect(results[1]!.every((r) => Number.isNaN(r.loss))).toBe(true);
    expect(rs.map((r) => r.dp.steps)).toEqual([3, 3]);
    const [a, b] = await Promise.all(rs.map((r) => params(r.trainer)));
    expectSameBits(a!, b!, 'the replicas');
    // One device: steps 0 and 2, none for step 1.
    const t = makeTrainer(1);
    for (const step of [0, 2]) {
      const { x, y } = slice(batchFor(step, B), 0, B);
      await t.step(x, y);
      x.dispose();
      y.dispose();
    }
    (await params(t)).forEach((p, i) => expect(relErr(a![i]!, p), `parameter ${i} vs one device`).toBeLessThan(1e-5));
    t.optimizer.dispose();
    t.model.dispose();
  });
});

describe('a replica checks what it receives', () => {
  it("refuses a Trainer with 'f16-mixed' precision, whose loss scaling would differ between replicas", async () => {
    await gpu();
    const model = makeModel(1);
    const trainer = new wg.Trainer({ model, optimizer: new wg.optim.SGD(model.parameters(), { lr: 0.1 }), loss: 'cross-entropy', precision: 'f16-mixed' });
    expect(() => new D.DataParallel({ trainer, transport: localTransport(session()) })).toThrow(
      /DataParallel: a Trainer with precision 'f16-mixed' is not supported yet .*use precision 'f32'/,
    );
    model.dispose();
  });

  it('a gradient whose declared shape does not fit the model fails the step with a ProtocolError and changes nothing', async () => {
    await gpu();
    const trainer = makeTrainer(1);
    const before = await params(trainer);
    // A hub that lies: it admits the replica, makes member 9 the leader, begins a step with both
    // and delivers a gradient message whose declared shape is transposed.
    const plan = new BucketPlan(modelLayout(trainer.model), 1 << 20, 1 << 16);
    const checkpoint = await wg.io.saveCheckpoint({ model: trainer.model, optimizer: trainer.optimizer, progress: { step: 0 } });
    // The state: the checkpoint's length, then the checkpoint (src/distributed/state-transfer.ts).
    const state = new Uint8Array(4 + checkpoint.byteLength);
    new DataView(state.buffer).setUint32(0, checkpoint.byteLength, true);
    state.set(checkpoint, 4);
    let begun = false;
    const from = (id: number, bytes: Uint8Array) => {
      new DataView(bytes.buffer).setUint32(4, id, true);
      return bytes;
    };
    const fake: Transport = {
      description: 'a fake hub',
      onFrame: null,
      onClose: null,
      open: async () => undefined,
      close: () => undefined,
      send(frame) {
        const header = JSON.parse(new TextDecoder().decode(frame.subarray(8, 8 + new DataView(frame.buffer, frame.byteOffset).getUint32(0, true))));
        const deliver = (h: { type: string; [k: string]: unknown }, id: number, payload?: Float32Array) => queueMicrotask(() => fake.onFrame!(from(id, encodeFrame(h, payload))));
        if (header.type === 'join') {
          deliver({ type: 'welcome', id: 2, bucketBytes: 1 << 20, partBytes: 1 << 16, maxMessageBytes: 1 << 20, heartbeatMs: 10_000 }, 0);
          deliver({ type: 'members', members: [{ id: 9, name: 'evil' }, { id: 2, name: 'victim' }], leader: 9, synced: [9, 2], lastBegin: null, relayed: [], abandoned: null }, 0);
        } else if (header.type === 'ready' && !begun) {
          begun = true;
          deliver({ type: 'begin', step: 0, attempt: 0, participants: [9, 2], syncTo: [2] }, 9);
          queueMicrotask(() => fake.onFrame!(from(9, encodeFrame({ type: 'sync', step: 0, attempt: 0, part: 0, parts: 1, bytes: state.byteLength }, state))));
          deliver({ type: 'shard', step: 0, attempt: 0, samples: 3, via: 'relay' }, 9);
        } else if (header.type === 'grad' && header.phase === 'reduce') {
          const [lo, hi] = plan.chunk(0, 0, 2);
          const count = Math.min(hi - lo, plan.partElements);
          const tensors = plan.segments(0, lo, count).map((s) => ({ ...s, shape: [...s.shape].reverse() }));
          deliver({ type: 'grad', step: 0, attempt: 0, phase: 'reduce', bucket: 0, offset: lo, count, tensors, dtype: 'float32' }, 9, new Float32Array(count));
        }
      },
    };
    const dp = new D.DataParallel({ trainer, transport: fake });
    const { x, y } = slice(batchFor(0, 3), 0, 3);
    await expect(dp.step(x, y)).rejects.toThrow(/rejected a message.*declares tensor "0.weight" \[7, 9\] float32; the model's parameter there is "0.weight" \[9, 7\]/);
    expect(dp.steps).toBe(0);
    expectSameBits(await params(trainer), before, 'parameters after the rejected step');
    x.dispose();
    y.dispose();
    trainer.optimizer.dispose();
    trainer.model.dispose();
  });
});
