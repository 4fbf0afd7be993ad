// Peer links in this process: replicas open WebRTC data channels to each other (node-datachannel,
// on loopback) and run the ring over them, the hub only signalling and committing. What a peer
// sends over its link is checked as the hub checks what it relays; a peer that sends what does not
// fit, replays an old sync, or repeats a message, loses its link (the pair is relayed, the step
// re-run) and cannot make the receiver leave; signals go only between members. Under the network
// model, links that lose frames stall an attempt until the hub relays them, and lossy-but-reliable
// slow links only slow the session down: every step is applied once, as one device would.

import { describe, expect, it } from 'vitest';
import { decodeFrame, encodeFrame } from '../../src/distributed/frame';
import type { Members } from '../../src/distributed/messages';
import { shardOf, singleDevice } from './fixture';
import { linksOpen, paramsOf, portTo, sameBits, tapConnector, testSession, until, type TestSession } from './session';
import { gpu, relErr, wg } from '../helpers';

const D = wg.distributed;
const BATCH = 30;

async function steps(s: TestSession, n: number, who = s.replicas): Promise<wg.distributed.DataParallelStepResult[][]> {
  const out = [];
  for (let i = 0; i < n; i++) out.push(await Promise.all(who.map((r) => r.dp.step(shardOf(wg, BATCH)))));
  return out;
}

/** The replicas hold the same bits, and one device's parameters after as many steps. */
async function expectOneDevice(s: TestSession, who = s.replicas): Promise<void> {
  const ps = await Promise.all(who.map((r) => paramsOf(r.trainer)));
  for (const p of ps.slice(1)) expect(sameBits(p, ps[0]!), `the replicas differ\n${s.log.join('\n')}`).toBe(true);
  const reference = await singleDevice(wg, who[0]!.dp.steps, BATCH, 1);
  reference.forEach((p, i) => expect(relErr(ps[0]![i]!, p), `parameter ${i} vs one device`).toBeLessThan(1e-5));
}

/** A transport to the hub that counts the ring messages it carries. */
function counting(hub: wg.distributed.Hub, seen: { grads: number }): wg.distributed.Transport {
  const t = portTo(hub);
  const send = t.send.bind(t);
  t.send = (frame) => {
    if (decodeFrame(frame).header.type === 'grad') seen.grads++;
    send(frame);
  };
  return t;
}

describe('peer links over WebRTC', () => {
  it('three replicas run the ring over their data channels: the coordinator relays none of it, the sums are those of one device', async () => {
    await gpu({ autotune: false });
    const seen = { grads: 0 };
    const s = await testSession([]);
    for (const seed of [1, 2, 3]) await s.add(seed, { minReplicas: 3, transport: counting(s.hub, seen) }).dp.ready();
    await linksOpen(s);
    const results = await steps(s, 3);
    expect(results.flat().map((r) => r.route)).toEqual(new Array(9).fill('peer'));
    expect(seen.grads).toBe(0);
    expect(s.log.filter((l) => l.includes('peer link with member'))).toHaveLength(6);
    await expectOneDevice(s);
  });

  it('a pair that cannot connect uses the coordinator, and the log says so', async () => {
    await gpu({ autotune: false });
    const failing: wg.distributed.PeerConnector = {
      description: 'links that never connect',
      connect: (peer) => ({ signal: () => undefined, close: () => undefined, opened: Promise.reject(new D.DistributedError(`no WebRTC link to member ${peer} within 0.1 s (test)`)) }),
    };
    const s = await testSession([1, 2], { minReplicas: 2, links: failing });
    const results = await steps(s, 2);
    expect(results.flat().map((r) => r.route)).toEqual(['relay', 'relay', 'relay', 'relay']);
    expect(s.log).toContain('r0 #1: no WebRTC link to member 2 within 0.1 s (test): the ring messages to and from member 2 go through the coordinator');
    await expectOneDevice(s);
  });
});

describe('what a peer sends over its link is checked', () => {
  /** Three replicas; the third's links pass what it sends at step 1 through `tamper`. */
  async function tampered(tamper: (frame: Uint8Array, send: (f: Uint8Array) => void) => void) {
    const s = await testSession([1, 2], { minReplicas: 3 }, { maxMessageBytes: 64 << 10 });
    let step = -1;
    const evil = s.add(3, {
      links: tapConnector(new D.WebRTCConnector(), (_peer, frame, send) => {
        const h = decodeFrame(frame).header;
        if (h.type === 'grad') step = h.step as number;
        if (h.type === 'grad' && h.step === 1) tamper(frame, send);
        else send(frame);
      }),
    });
    await evil.dp.ready();
    await linksOpen(s);
    const results = await steps(s, 3);
    expect(step).toBeGreaterThanOrEqual(1); // its links carried the ring of steps 0 and 1
    return { s, results };
  }

  /** The frame with its header changed (the payload kept, or replaced). */
  function rewrite(frame: Uint8Array, change: (h: Record<string, unknown>) => void, payload?: Uint8Array): Uint8Array {
    const f = decodeFrame(frame);
    const h = { ...f.header };
    change(h);
    return encodeFrame(h as { type: string }, payload ?? f.payload);
  }

  const cases: [string, (frame: Uint8Array) => Uint8Array, RegExp][] = [
    [
      'another layout',
      (frame) => rewrite(frame, (h) => (h.tensors = (h.tensors as { shape: number[] }[]).map((t) => ({ ...t, shape: [...t.shape].reverse() })))),
      /refused a message from member 3 on its peer link: a gradient message declares tensor "\d\.(weight|bias)" \[.*\] float32; the model's parameter there is/,
    ],
    ['another dtype', (frame) => rewrite(frame, (h) => (h.dtype = 'float16')), /refused a message from member 3 on its peer link: a gradient message carries "float16" values; this session's wire format is f32 \(float32\)/],
    [
      'too large',
      (frame) => rewrite(frame, () => undefined, new Uint8Array(100 << 10)),
      /refused a message from member 3 on its peer link: a message of 10[\d,]+ bytes; the session accepts at most 65,536/,
    ],
  ];

  for (const [what, change, reason] of cases) {
    it(`a ring message of ${what}: refused with the reason, the pair relayed and the step re-run; the session unharmed`, async () => {
      await gpu({ autotune: false });
      let once = false;
      const { s, results } = await tampered((frame, send) => {
        send(once ? frame : change(frame));
        once = true;
      });
      const log = s.log.join('\n');
      expect(log).toMatch(reason);
      expect(log).toMatch(/hub: r0 #1 reports its peer link with r2 #3 failed \(refused a message from member 3 on its peer link: .*\): the pair is relayed through the coordinator from now on, and step 1 attempt \d+ runs again/);
      expect(results[1]!.map((r) => r.attempts), log).toEqual([2, 2, 2]);
      expect(results[2]!.map((r) => [r.attempts, r.worldSize])).toEqual([[1, 3], [1, 3], [1, 3]]);
      // Relayed from then on: the third replica's ring messages to the first go through the coordinator.
      expect(results[2]!.map((r) => r.route)).toEqual(['peer', 'peer', 'relay']);
      expect(s.hub.memberList).toHaveLength(3);
      await expectOneDevice(s);
    });
  }

  it('a replay of an old sync is dropped with the reason; a repeated message is refused, and the step re-run', async () => {
    await gpu({ autotune: false });
    const s = await testSession([1, 2], { minReplicas: 3 });
    const old: Uint8Array[] = [];
    let replayed = false;
    let repeated = false;
    const evil = s.add(3, {
      links: tapConnector(new D.WebRTCConnector(), (_peer, frame, send) => {
        const h = decodeFrame(frame).header;
        if (h.type === 'grad' && h.step === 0) old.push(frame.slice());
        if (h.type === 'grad' && h.step === 1 && !replayed) {
          replayed = true;
          for (const f of old) send(f); // step 0's messages again, before step 1's
        }
        send(frame);
        if (h.type === 'grad' && h.step === 2 && !repeated) {
          repeated = true;
          send(frame); // the same message twice
        }
      }),
    });
    await evil.dp.ready();
    await linksOpen(s);
    const results = await steps(s, 4);
    const log = s.log.join('\n');
    expect(old.length).toBeGreaterThan(0);
    expect(log).toMatch(/r0 #1: dropped a ring message from member 3 of step 0 attempt 0: that attempt is over \(this replica runs step 1 attempt 1\); a late message or a replay/);
    expect(results[1]!.map((r) => r.attempts)).toEqual([1, 1, 1]);
    expect(log).toMatch(/r0 #1: refused a message from member 3 on its peer link: member 3 sent the "grad" \(reduce bucket \d+ \[\d+, \+\d+\)\) of step 2 attempt 2 twice/);
    expect(results[2]!.map((r) => r.attempts)).toEqual([2, 2, 2]);
    await expectOneDevice(s);
  });
});

describe('who may connect', () => {
  const offer = { description: { type: 'offer', sdp: 'v=0' } };

  it('a signal before joining, to a non-member, malformed, or one too many, a link report about a non-member, and a signal from a member a replica does not know: refused with the reason', async () => {
    await gpu({ autotune: false });
    const log: string[] = [];
    const hub = new D.Hub({ log: (l) => log.push(l) });
    try {
      const sent: Record<string, unknown>[][] = [];
      const raw = (join: boolean) => {
        const got: Record<string, unknown>[] = [];
        sent.push(got);
        const conn = hub.connect({ send: (b) => got.push(decodeFrame(b).header), close: () => undefined });
        if (join) conn.receive(encodeFrame({ type: 'join', name: 'raw', layout: [{ name: 'w', shape: [4], dtype: 'float32' }], agreement: {} }));
        return { got, send: (h: { type: string; [k: string]: unknown }) => conn.receive(encodeFrame(h)) };
      };
      const stranger = raw(false);
      stranger.send({ type: 'signal', to: [1], ...offer });
      expect(stranger.got.at(-1)).toMatchObject({ type: 'closed', reason: expect.stringMatching(/the first message must be "join", got "signal"/) });
      const a = raw(true);
      const b = raw(true);
      const ids = [a, b].map((m) => m.got.find((h) => h.type === 'welcome')!.id as number);
      a.send({ type: 'signal', to: [99], ...offer });
      expect(log.at(-1)).toMatch(new RegExp(`refused a signal from raw #${ids[0]} to member 99: it is not a member of the session`));
      expect(hub.memberList).toHaveLength(2);
      a.send({ type: 'signal', to: [ids[1]], ...offer });
      expect(b.got.at(-1)).toMatchObject({ type: 'signal', description: offer.description });
      for (let i = 0; i < 300; i++) a.send({ type: 'signal', to: [ids[1]], candidate: { candidate: 'candidate:1 1 udp 1 127.0.0.1 9 typ host', sdpMid: '0', sdpMLineIndex: 0 } });
      expect(a.got.at(-1)).toMatchObject({ type: 'closed', reason: expect.stringMatching(/raw #\d+ sent more than 256 signals to raw #\d+/) });
      b.send({ type: 'signal', to: [ids[0]], description: { type: 'offer', sdp: 'x'.repeat(70_000) } });
      expect(b.got.at(-1)).toMatchObject({ type: 'closed', reason: expect.stringMatching(/a "signal" message's description is not an offer or answer with an SDP of at most 65536 characters/) });
      // A report that a link failed may only name another member (and relays that pair once).
      const c = raw(true);
      c.send({ type: 'link', peer: 99, reason: 'made up' });
      expect(c.got.at(-1)).toMatchObject({ type: 'closed', reason: expect.stringMatching(/a "link" report names member 99, which is not another member of the session/) });
    } finally {
      hub.close();
    }

    // A replica takes signals only from members it knows (a hub that lies relays one from member 42).
    const trainer = (await import('./fixture')).makeTrainer(wg, 1);
    const lines: string[] = [];
    const fake: wg.distributed.Transport = {
      description: 'a fake hub',
      onFrame: null,
      onClose: null,
      open: async () => undefined,
      close: () => undefined,
      send(frame) {
        const h = decodeFrame(frame).header;
        const from = (id: number, bytes: Uint8Array) => (new DataView(bytes.buffer).setUint32(4, id, true), bytes);
        if (h.type !== 'join') return;
        const members: Members = { type: 'members', members: [{ id: 1, name: 'me' }], leader: 1, synced: [], lastBegin: null, relayed: [], abandoned: null };
        queueMicrotask(() => {
          fake.onFrame!(from(0, encodeFrame({ type: 'welcome', id: 1, bucketBytes: 1 << 20, partBytes: 1 << 16, maxMessageBytes: 1 << 20, heartbeatMs: 10_000 })));
          fake.onFrame!(from(0, encodeFrame(members)));
          fake.onFrame!(from(42, encodeFrame({ type: 'signal', ...offer })));
        });
      },
    };
    const dp = new D.DataParallel({ trainer, transport: fake, name: 'me', log: (l) => lines.push(l) });
    await dp.ready();
    await until(() => lines.some((l) => l.includes('member 42')));
    expect(lines).toContain('me #1: refused a peer offer from member 42: it is not a member of the session as this replica knows it');
    dp.close();
    trainer.optimizer.dispose();
    trainer.model.dispose();
  });
});

describe('under the network model', () => {
  it('links that lose frames: the attempt stalls until the hub relays its peer links at the deadline, and the session goes on, every step applied once', async () => {
    await gpu({ autotune: false });
    const lossy = (seed: number) => D.modelConnector(new D.WebRTCConnector(), { loss: 0.2, delivery: 'lossy', seed });
    const s = await testSession([], {}, { minStepDeadlineMs: 1500 });
    for (const seed of [1, 2, 3]) await s.add(seed, { minReplicas: 3, links: lossy(seed) }).dp.ready();
    await until(() => s.log.filter((l) => /peer link with member \d+ open/.test(l)).length >= 3, 30_000);
    const results = await steps(s, 4);
    const log = s.log.join('\n');
    expect(log).toMatch(/hub: step \d+ attempt \d+ did not complete within its deadline \(1\.5 s, .*\) over the peer links .*: they are relayed through the coordinator from now on and the step runs again/);
    expect(results.flat().some((r) => r.attempts > 1)).toBe(true);
    expect(results.map((rs) => rs.map((r) => r.step))).toEqual([[0, 0, 0], [1, 1, 1], [2, 2, 2], [3, 3, 3]]);
    expect(s.hub.memberList).toHaveLength(3);
    await expectOneDevice(s);
  });

  it('40 ms round trips, 20 Mbit/s and 5% of packets resent, on every link: slower, and every step once over the peer links', async () => {
    await gpu({ autotune: false });
    const model = { rttMs: 40, bitsPerSecond: 20e6, loss: 0.05 };
    const s = await testSession([]);
    for (const seed of [1, 2]) {
      const transport = D.modelTransport(portTo(s.hub), { ...model, seed });
      await s.add(seed, { minReplicas: 2, transport, links: D.modelConnector(new D.WebRTCConnector(), { ...model, seed }) }).dp.ready();
    }
    await linksOpen(s);
    const results = await steps(s, 3);
    expect(results.flat().map((r) => [r.route, r.attempts])).toEqual(new Array(6).fill(['peer', 1]));
    // Each step waits at least for the shard sizes through the hub and the commit (two round trips).
    for (const r of results.flat()) expect(r.ms).toBeGreaterThan(80);
    await expectOneDevice(s);
  });
});
