// The coordinator's rules, tested while two honest replicas (in this process) train through it:
// a wrong token or session, another model, malformed and oversized messages, and a gradient whose
// declared shape does not fit the model are each refused with a reason that names the problem,
// and the honest replicas' parameters stay those of one device on the same batches. Then what one
// peer must not be able to do to a session (issue 18): poison its attempt numbers, fix its model
// forever, or hold its steps up by never computing; each over WebSocket, with honest replicas.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { decodeFrame, encodeFrame, type Frame } from '../../src/distributed/frame';
import { BucketPlan, modelLayout } from '../../src/distributed/layout';
import { makeTrainer, shardOf, singleDevice } from './fixture';
import { gpu, relErr, wg } from '../helpers';

const BATCH = 20;
const MAX_MESSAGE = 64 << 10;

let coordinator: wg.distributed.Coordinator;
const honest: { trainer: wg.Trainer; dp: wg.distributed.DataParallel }[] = [];

beforeAll(async () => {
  await gpu();
  coordinator = await wg.distributed.startCoordinator({ maxMessageBytes: MAX_MESSAGE, partBytes: 256, bucketBytes: 512 });
  for (const seed of [1, 2]) {
    const trainer = makeTrainer(wg, seed);
    const dp = new wg.distributed.DataParallel({ trainer, transport: new wg.distributed.WebSocketTransport(coordinator.url), name: 'honest', minReplicas: 2 });
    await dp.ready(); // seed 1 joins first and leads
    honest.push({ trainer, dp });
  }
});

afterAll(async () => {
  for (const h of honest) {
    h.dp.close();
    h.trainer.optimizer.dispose();
    h.trainer.model.dispose();
  }
  await coordinator?.close();
});

/** Two honest steps, alongside whatever the test does meanwhile. */
async function trainAlongside(attack: () => Promise<void>): Promise<void> {
  const training = (async () => {
    for (let i = 0; i < 2; i++) await Promise.all(honest.map((h) => h.dp.step(shardOf(wg, BATCH))));
  })();
  await Promise.all([training, attack()]);
}

/** The honest replicas: bit-identical, and one device's parameters after as many steps. */
async function expectHonestUnharmed(): Promise<void> {
  const [a, b] = await Promise.all(honest.map((h) => Promise.all(h.trainer.model.parameters().map(async (p) => (await p.toArray()) as Float32Array))));
  a!.forEach((p, i) => expect(Buffer.from(p.buffer).equals(Buffer.from(b![i]!.buffer)), `parameter ${i}: the honest replicas differ`).toBe(true));
  const reference = await singleDevice(wg, honest[0]!.dp.steps, BATCH, 1);
  reference.forEach((p, i) => expect(relErr(a![i]!, p), `parameter ${i} vs one device`).toBeLessThan(1e-5));
  expect(coordinator.hub.memberList.map((m) => m.name)).toEqual(['honest #1', 'honest #2']);
}

interface RawClient {
  ws: WebSocket;
  frames: Frame[];
  /** The close code and the coordinator's reason (from its "closed" message, else the close frame). */
  closed: Promise<{ code: number; reason: string }>;
}

/** A client that speaks the wire format by hand, to send what no DataParallel would. */
function rawClient(url: string): Promise<RawClient> {
  const ws = new WebSocket(url);
  const frames: Frame[] = [];
  let said = '';
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: said || reason.toString() })),
  );
  ws.on('message', (data: Buffer) => {
    const f = decodeFrame(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    if (f.header.type === 'closed') said = String(f.header.reason);
    frames.push(f);
  });
  return new Promise((resolve, reject) => {
    ws.on('open', () => resolve({ ws, frames, closed }));
    ws.on('error', reject);
  });
}

/** A raw client admitted to the session (it joins with the honest replicas' model). */
async function joinedClient(url = coordinator.url): Promise<RawClient> {
  const c = await rawClient(url);
  const t = makeTrainer(wg, 5);
  c.ws.send(encodeFrame({ type: 'join', name: 'intruder', layout: modelLayout(t.model), agreement: {} }));
  t.optimizer.dispose();
  t.model.dispose();
  await frame(c, 'welcome');
  return c;
}

/** The first frame of `type` the client receives. */
async function frame(c: RawClient, type: string): Promise<Frame> {
  for (;;) {
    const f = c.frames.find((x) => x.header.type === type);
    if (f) return f;
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Honest replicas of another session: they train `steps` steps together and leave. */
async function honestSession(url: string, steps: number): Promise<Float32Array[][]> {
  const rs = [1, 2].map((seed) => {
    const trainer = makeTrainer(wg, seed);
    return { trainer, dp: new wg.distributed.DataParallel({ trainer, transport: new wg.distributed.WebSocketTransport(url), name: 'honest', minReplicas: 2 }) };
  });
  try {
    for (const r of rs) await r.dp.ready(); // seed 1 joins first and leads
    for (let i = 0; i < steps; i++) await Promise.all(rs.map((r) => r.dp.step(shardOf(wg, BATCH))));
    return await Promise.all(rs.map((r) => Promise.all(r.trainer.model.parameters().map(async (p) => (await p.toArray()) as Float32Array))));
  } finally {
    for (const r of rs) {
      r.dp.close();
      r.trainer.optimizer.dispose();
      r.trainer.model.dispose();
    }
  }
}

function withToken(token: string): string {
  const u = new URL(coordinator.url);
  u.searchParams.set('token', token);
  return u.toString();
}

describe('one peer cannot poison the session', () => {
  it('a "ready" that claims 2^53 − 1 attempts seen, from a member that leaves once the step begins: the step is re-run and the session goes on', async () => {
    const before = honest[0]!.dp.steps;
    await trainAlongside(async () => {
      const c = await joinedClient();
      // A joining member's "ready": the leader takes it into the next attempt.
      c.ws.send(encodeFrame({ type: 'ready', to: [1, 2], step: 0, synced: false, samplesPerSecond: 0, attemptsSeen: 2 ** 53 - 1 }));
      const begin = await frame(c, 'begin');
      expect(begin.header.attempt).toBeLessThan(10);
      c.ws.close();
    });
    expect(honest[0]!.dp.steps).toBe(before + 2);
    await expectHonestUnharmed();
  });

  it('the coordinator numbers the attempts: a leader\'s "begin" with another number or step, and a commit of an attempt nobody began, are refused', async () => {
    const other = await wg.distributed.startCoordinator({ partBytes: 256, bucketBytes: 512 });
    try {
      const wild = await joinedClient(other.url); // the first member leads
      wild.ws.send(encodeFrame({ type: 'begin', to: [], step: 0, attempt: 2 ** 53 - 1, participants: [1], syncTo: [] }));
      expect((await wild.closed).reason).toMatch(/a "begin" of attempt 9007199254740991; the session's next attempt is 0/);
      const skipper = await joinedClient(other.url);
      const id = (await frame(skipper, 'welcome')).header.id as number;
      skipper.ws.send(encodeFrame({ type: 'begin', to: [], step: 4, attempt: 0, participants: [id], syncTo: [] }));
      skipper.ws.send(encodeFrame({ type: 'begin', to: [], step: 4, attempt: 5, participants: [id], syncTo: [] }));
      expect((await skipper.closed).reason).toMatch(/a "begin" of attempt 5; the session's next attempt is 1/);
      // (The session is empty again: it starts afresh.)
      const committer = await joinedClient(other.url);
      const cid = (await frame(committer, 'welcome')).header.id as number;
      committer.ws.send(encodeFrame({ type: 'begin', to: [], step: 2, attempt: 0, participants: [cid], syncTo: [] }));
      committer.ws.send(encodeFrame({ type: 'commit', to: [cid], step: 2, attempt: 7, loss: 0, globalBatch: 1, skipped: false }));
      expect((await committer.closed).reason).toMatch(/a "commit" of step 2 attempt 7, which no leader began \(the latest is step 2 attempt 0\)/);
      const jumper = await joinedClient(other.url);
      const jid = (await frame(jumper, 'welcome')).header.id as number;
      jumper.ws.send(encodeFrame({ type: 'begin', to: [], step: 2, attempt: 0, participants: [jid], syncTo: [] }));
      jumper.ws.send(encodeFrame({ type: 'commit', to: [jid], step: 2, attempt: 0, loss: 0, globalBatch: 1, skipped: false }));
      jumper.ws.send(encodeFrame({ type: 'begin', to: [], step: 9, attempt: 1, participants: [jid], syncTo: [] }));
      expect((await jumper.closed).reason).toMatch(/a "begin" of step 9; the session's state is at step 3/);
      const boaster = await joinedClient(other.url);
      boaster.ws.send(encodeFrame({ type: 'ready', to: [], step: 0, synced: false, samplesPerSecond: -1 }));
      expect((await boaster.closed).reason).toMatch(/a "ready" message has samplesPerSecond = -1; expected a finite number ≥ 0/);
      // Honest replicas train in that session afterwards: the same as one device.
      const [a, b] = await honestSession(other.url, 2);
      a!.forEach((p, i) => expect(Buffer.from(p.buffer).equals(Buffer.from(b![i]!.buffer)), `parameter ${i}: the honest replicas differ`).toBe(true));
      (await singleDevice(wg, 2, BATCH, 1)).forEach((p, i) => expect(relErr(a![i]!, p), `parameter ${i} vs one device`).toBeLessThan(1e-5));
    } finally {
      await other.close();
    }
  });
});

describe('a session that empties starts afresh', () => {
  it('the first member fixes the model and settings only while the session has members, and a refused replica is told what to do', async () => {
    const other = await wg.distributed.startCoordinator({ partBytes: 256, bucketBytes: 512 });
    try {
      // A member with a one-parameter model and other settings joins an empty session first.
      const tiny = await rawClient(other.url);
      tiny.ws.send(encodeFrame({ type: 'join', name: 'tiny', layout: [{ name: 'p0', shape: [1], dtype: 'float32' }], agreement: { batch: 1 } }));
      await frame(tiny, 'welcome');
      const trainer = makeTrainer(wg, 1);
      const refused = new wg.distributed.DataParallel({ trainer, transport: new wg.distributed.WebSocketTransport(other.url), name: 'mlp' });
      await expect(refused.ready()).rejects.toThrow(
        /mlp trains another model than the session: parameter 0 is "0.weight" \[16, 12\], the session's is "p0" \[1\]\. Every replica trains the session's model with its settings, set by tiny #1 when it joined the empty session \(1 member now\): start this replica with the same model and settings, or start another coordinator for this one \(a session takes the model of whoever joins it when it is empty\)/,
      );
      trainer.optimizer.dispose();
      trainer.model.dispose();
      tiny.ws.close();
      while (other.hub.memberList.length) await new Promise((r) => setTimeout(r, 5));
      // Once it has left, the session takes the next model: honest replicas train as one device.
      const [a, b] = await honestSession(other.url, 2);
      a!.forEach((p, i) => expect(Buffer.from(p.buffer).equals(Buffer.from(b![i]!.buffer)), `parameter ${i}: the honest replicas differ`).toBe(true));
      (await singleDevice(wg, 2, BATCH, 1)).forEach((p, i) => expect(relErr(a![i]!, p), `parameter ${i} vs one device`).toBeLessThan(1e-5));
    } finally {
      await other.close();
    }
  });

  it('a replica with other settings than the session is told which and what to do', async () => {
    const other = await wg.distributed.startCoordinator({ partBytes: 256, bucketBytes: 512 });
    const trainers = [makeTrainer(wg, 1), makeTrainer(wg, 2)];
    try {
      const first = new wg.distributed.DataParallel({ trainer: trainers[0]!, transport: new wg.distributed.WebSocketTransport(other.url), name: 'first', agreement: { batch: 96, seed: 1 } });
      await first.ready();
      const second = new wg.distributed.DataParallel({ trainer: trainers[1]!, transport: new wg.distributed.WebSocketTransport(other.url), name: 'second', agreement: { seed: 1, batch: 20 } });
      await expect(second.ready()).rejects.toThrow(
        /second has other settings than the session: \{"batch":20,"seed":1\} instead of \{"batch":96,"seed":1\}\. Every replica trains the session's model with its settings, set by first #1 when it joined the empty session \(1 member now\): start this replica with the same model and settings/,
      );
      first.close();
    } finally {
      for (const t of trainers) {
        t.optimizer.dispose();
        t.model.dispose();
      }
      await other.close();
    }
  });
});

describe('a replica that stops computing holds nobody up for long', () => {
  /** The step deadline's floor in these tests (a step takes ~0.1 s here; the timeout stays 30 s). */
  // Long enough that a healthy replica on a loaded 2-core machine is never the one dropped (1.5 s was not, at load 20).
  const DEADLINE_MS = 3000;

  interface Replica {
    trainer: wg.Trainer;
    dp: wg.distributed.DataParallel;
  }

  /** A coordinator with a short step deadline, its log, and replicas joined in order (the first leads). */
  async function deadlineSession(n: number, transport: (url: string, i: number) => wg.distributed.Transport = (url) => new wg.distributed.WebSocketTransport(url)) {
    const log: string[] = [];
    const c = await wg.distributed.startCoordinator({ partBytes: 128, bucketBytes: 512, minStepDeadlineMs: DEADLINE_MS, log: (l) => log.push(l) });
    const rs: Replica[] = [];
    for (let i = 0; i < n; i++) {
      const trainer = makeTrainer(wg, i + 1);
      // Through the coordinator only: these tests are about what it sees (peer links: peer-links.test.ts).
      rs.push({ trainer, dp: new wg.distributed.DataParallel({ trainer, transport: transport(c.url, i), name: `r${i}`, minReplicas: n, links: 'relay', log: (l) => log.push(l) }) });
      await rs.at(-1)!.dp.ready();
    }
    const done = async () => {
      for (const r of rs) {
        r.dp.close();
        r.trainer.optimizer.dispose();
        r.trainer.model.dispose();
      }
      await c.close();
    };
    return { c, log, rs, done };
  }

  const paramsOf = (r: Replica) => Promise.all(r.trainer.model.parameters().map(async (p) => (await p.toArray()) as Float32Array));

  async function expectSame(rs: Replica[], steps: number): Promise<void> {
    const [first, ...rest] = await Promise.all(rs.map(paramsOf));
    for (const other of rest) first!.forEach((p, i) => expect(Buffer.from(p.buffer).equals(Buffer.from(other[i]!.buffer)), `parameter ${i}: the replicas differ`).toBe(true));
    (await singleDevice(wg, steps, BATCH, 1)).forEach((p, i) => expect(relErr(first![i]!, p), `parameter ${i} vs one device`).toBeLessThan(1e-5));
  }

  it('a member that says "ready" and then only sends heartbeats is dropped at the step deadline, and the step is re-run without it', async () => {
    const s = await deadlineSession(2);
    try {
      const [a, b] = s.rs as [Replica, Replica];
      await Promise.all([a, b].map((r) => r.dp.step(shardOf(wg, BATCH))));
      const idle = await joinedClient(s.c.url);
      idle.ws.send(encodeFrame({ type: 'ready', to: [1, 2], step: 0, synced: false, samplesPerSecond: 0 }));
      const beats = setInterval(() => idle.ws.send(encodeFrame({ type: 'beat' })), 200);
      try {
        while (!a.dp.peers.some((p) => p.joining)) await new Promise((r) => setTimeout(r, 5));
        const started = performance.now();
        const [ra, rb] = await Promise.all([a, b].map((r) => r.dp.step(shardOf(wg, BATCH))));
        const waited = performance.now() - started;
        expect(ra).toMatchObject({ step: 1, worldSize: 2, attempts: 2, globalBatch: BATCH });
        expect(rb).toMatchObject({ step: 1, worldSize: 2, attempts: 2 });
        // Held up for the deadline, not longer.
        expect(waited).toBeGreaterThan(DEADLINE_MS - 50);
        expect(waited).toBeLessThan(DEADLINE_MS + 5000);
        const reason = /intruder #3 held up step 1 \(attempt 1\): it had not sent its shard size [\d.]+ s after the attempt began \(deadline [\d.]+ s: 4× the slowest of the last 1 steps \([\d.]+ s\), at least 3\.0 s\); the others run the step again without it/;
        expect((await idle.closed).reason).toMatch(reason);
        expect(s.log.join('\n')).toMatch(reason);
      } finally {
        clearInterval(beats);
      }
      await Promise.all([a, b].map((r) => r.dp.step(shardOf(wg, BATCH))));
      await expectSame([a, b], 3);
    } finally {
      await s.done();
    }
  });

  it('a replica that computes but withholds its part of the all-reduce is the one dropped; the others re-run the step', async () => {
    // The third replica sends one gradient message of step 1, then no more (its heartbeats go on).
    const withholding = (url: string, i: number) => {
      const t = new wg.distributed.WebSocketTransport(url);
      if (i !== 2) return t;
      const send = t.send.bind(t);
      let sent = 0;
      t.send = (frame) => {
        const h = decodeFrame(frame).header;
        if (h.type === 'grad' && h.step === 1 && sent++ >= 1) return;
        send(frame);
      };
      return t;
    };
    const s = await deadlineSession(3, withholding);
    try {
      const [a, b, w] = s.rs as [Replica, Replica, Replica];
      await Promise.all([a, b, w].map((r) => r.dp.step(shardOf(wg, BATCH))));
      const wLeft = expect(w.dp.step(shardOf(wg, BATCH))).rejects.toThrow(/r2 #3 held up step 1 \(attempt 1\): it had not sent its gradients \(ring step 1 of 4, bucket 0\)/);
      const [ra, rb] = await Promise.all([a, b].map((r) => r.dp.step(shardOf(wg, BATCH))));
      await wLeft;
      expect(ra).toMatchObject({ step: 1, worldSize: 2, attempts: 2 });
      expect(rb).toMatchObject({ step: 1, worldSize: 2, attempts: 2 });
      expect(s.log.filter((l) => l.includes('held up'))).toHaveLength(1);
      await expectSame([a, b], 2);
    } finally {
      await s.done();
    }
  });

  it('a holder of the state that is not ready for the next step is left out of it, and sent the state when it is', async () => {
    const s = await deadlineSession(3);
    try {
      const [a, b, c] = s.rs as [Replica, Replica, Replica];
      await Promise.all([a, b, c].map((r) => r.dp.step(shardOf(wg, BATCH))));
      // c does not call step() for a while (it stays in the session: its heartbeats go on).
      const [ra] = await Promise.all([a, b].map((r) => r.dp.step(shardOf(wg, BATCH))));
      expect(ra).toMatchObject({ step: 1, worldSize: 2, attempts: 1 });
      expect(s.log.join('\n')).toMatch(/r2 #3 was not ready for step 1 within the deadline \([\d.]+ s: .*, at least 3\.0 s\) after the leader: the session goes on without it \(it is sent the state when it is ready\)/);
      // When c steps again, it is sent the session's state and takes part.
      const seen = s.log.length;
      const cStep = c.dp.step(shardOf(wg, BATCH));
      while (!s.log.slice(seen).includes('r0 #1: ready from 3: step 1')) await new Promise((r) => setTimeout(r, 5));
      const [ra2, , rc] = await Promise.all([a.dp.step(shardOf(wg, BATCH)), b.dp.step(shardOf(wg, BATCH)), cStep]);
      expect(ra2).toMatchObject({ step: 2, worldSize: 3, attempts: 1 });
      expect(rc).toMatchObject({ step: 2, worldSize: 3, rank: 2 });
      expect(s.log.filter((l) => l.includes('begins step 2'))).toEqual(['r0 #1: begins step 2 attempt 2 with 1,2,3 (state to 3)']);
      await expectSame([a, b, c], a.dp.steps);
    } finally {
      await s.done();
    }
  });
});

describe('the coordinator refuses', () => {
  it('a wrong token, and a session it does not host, before anything is sent', async () => {
    await trainAlongside(async () => {
      const trainer = makeTrainer(wg, 3);
      const dp = new wg.distributed.DataParallel({ trainer, transport: new wg.distributed.WebSocketTransport(withToken('guessed')) });
      await expect(dp.ready()).rejects.toThrow(/ended the session for this replica: wrong token for session [0-9a-f]+/);
      const u = new URL(coordinator.url);
      u.pathname = '/another';
      const raw = await rawClient(u.toString());
      expect(await raw.closed).toEqual({ code: 4404, reason: 'there is no session "another" at this coordinator' });
      trainer.optimizer.dispose();
      trainer.model.dispose();
    });
    await expectHonestUnharmed();
  });

  it('a replica that trains another model', async () => {
    await trainAlongside(async () => {
      wg.manualSeed(3);
      const model = new wg.nn.Sequential(new wg.nn.Linear(12, 8), new wg.nn.ReLU(), new wg.nn.Linear(8, 4));
      const trainer = new wg.Trainer({ model, optimizer: new wg.optim.SGD(model.parameters(), { lr: 0.1 }), loss: 'cross-entropy' });
      const dp = new wg.distributed.DataParallel({ trainer, transport: new wg.distributed.WebSocketTransport(coordinator.url), name: 'other' });
      await expect(dp.ready()).rejects.toThrow(/other trains another model than the session: parameter 0 is "0.weight" \[8, 12\], the session's is "0.weight" \[16, 12\]/);
      model.dispose();
    });
    await expectHonestUnharmed();
  });

  it('malformed messages: text, a broken frame, a first message that is not a join', async () => {
    await trainAlongside(async () => {
      const text = await rawClient(coordinator.url);
      text.ws.send('hello');
      expect(await text.closed).toMatchObject({ code: 4400, reason: expect.stringMatching(/shorter than the 8-byte frame prefix/) });
      const broken = await rawClient(coordinator.url);
      broken.ws.send(new Uint8Array([200, 0, 0, 0, 0, 0, 0, 0, 1, 2]));
      expect((await broken.closed).reason).toMatch(/declares a 200-byte header, which does not fit its 10 bytes/);
      const eager = await rawClient(coordinator.url);
      eager.ws.send(encodeFrame({ type: 'grad', to: [1] }));
      expect((await eager.closed).reason).toMatch(/the first message must be "join", got "grad"/);
      const member = await joinedClient();
      member.ws.send(encodeFrame({ type: 'shard', to: [1], step: 'soon', attempt: 0, samples: 3 }));
      expect((await member.closed).reason).toMatch(/rejected a message from intruder #\d+: a "shard" message has step = "soon"; expected a non-negative integer/);
    });
    await expectHonestUnharmed();
  });

  it('an oversized message', async () => {
    await trainAlongside(async () => {
      const c = await joinedClient();
      const frame = encodeFrame({ type: 'sync', to: [1, 2], step: 0, attempt: 0, part: 0, parts: 1, bytes: 2 * MAX_MESSAGE }, new Uint8Array(2 * MAX_MESSAGE));
      c.ws.send(frame);
      const id = c.frames.find((f) => f.header.type === 'welcome')!.header.id;
      expect(await c.closed).toEqual({
        code: 4413,
        reason: `intruder #${id} sent a message of ${frame.byteLength.toLocaleString('en')} bytes; the session accepts at most 65,536`,
      });
    });
    await expectHonestUnharmed();
  });

  it('a gradient whose declared shape does not match the model (and one that is not from the leader)', async () => {
    const plan = new BucketPlan(modelLayout(honest[0]!.trainer.model), 512, 256);
    const segments = plan.segments(0, 0, 64);
    await trainAlongside(async () => {
      const c = await joinedClient();
      const transposed = segments.map((s) => ({ ...s, shape: [...s.shape].reverse() }));
      c.ws.send(encodeFrame({ type: 'grad', to: [1, 2], step: 0, attempt: 0, phase: 'reduce', bucket: 0, offset: 0, count: 64, tensors: transposed, dtype: 'float32' }, new Float32Array(64)));
      expect(await c.closed).toMatchObject({
        code: 4400,
        reason: expect.stringMatching(/a gradient message declares tensor "0.weight" \[12, 16\] float32; the model's parameter there is "0.weight" \[16, 12\] float32/),
      });
      const d = await joinedClient();
      d.ws.send(encodeFrame({ type: 'commit', to: [1, 2], step: 5, attempt: 0, loss: 0, globalBatch: BATCH, skipped: false }));
      expect((await d.closed).reason).toMatch(/only the leader \(member 1\) sends "commit" messages/);
    });
    await expectHonestUnharmed();
  });
});
