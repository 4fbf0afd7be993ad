// Rounds of local steps (DiLoCo) in this process: replicas take `every` local steps on their shards,
// then average their parameter deltas over WebRTC peer links and apply one outer Nesterov step. The
// replicas' parameters must be bit-identical, and equal (1e-5) to a reference that runs each
// rank's local steps on one device and the outer step on the weighted mean of the deltas. A
// replica that dies in the middle of a sync makes the others run the sync again without it: the
// reference then averages only their deltas, re-weighted, and nothing is applied twice.

import { describe, expect, it } from 'vitest';
import { decodeFrame } from '../../src/distributed/frame';
import { batchSlice, makeTrainer, shardOf } from './fixture';
import { linksOpen, paramsOf, sameBits, testSession } from './session';
import { gpu, relErr, settleGarbage, wg } from '../helpers';

const D = wg.distributed;
const BATCH = 30;
const OUTER = { lr: 0.7, momentum: 0.9, nesterov: true };

/**
 * DiLoCo on one device. Round k of `rounds` runs `world` ranks: each starts from θ and takes `every`
 * steps of its shard of the global batches with its own inner optimizer (kept across rounds, as
 * each replica keeps its own); the deltas θ − θ_rank of the first `counting` ranks (a replica lost
 * in the sync counts no more) are weighted by their samples and summed; the outer SGD steps θ with
 * that as the gradient.
 */
async function referenceRounds(rounds: { world: number; counting: number }[], every: number): Promise<Float32Array[]> {
  const thetaModel = makeTrainer(wg, 1);
  const outer = new wg.optim.SGD(thetaModel.model.parameters(), OUTER);
  const ranks = Array.from({ length: Math.max(...rounds.map((r) => r.world)) }, () => makeTrainer(wg, 1));
  const named = thetaModel.model.namedParameters();
  for (const [k, { world, counting }] of rounds.entries()) {
    const theta = await paramsOf(thetaModel);
    const deltas: { n: number; d: Float32Array[] }[] = [];
    for (let r = 0; r < world; r++) {
      const t = ranks[r]!;
      const start = Object.fromEntries(named.map(([n, p], i) => [n, wg.tensor(theta[i]!, p.shape)]));
      t.model.loadStateDict(start);
      for (const x of Object.values(start)) x.dispose();
      let n = 0;
      for (let i = 0; i < every; i++) {
        const { start, count } = D.shardRange(BATCH, r, world);
        const { x, y } = batchSlice(wg, k * every + i, BATCH, start, count);
        await t.step(x, y);
        x.dispose();
        y.dispose();
        n += count;
      }
      const local = await paramsOf(t);
      if (r < counting) deltas.push({ n, d: theta.map((th, j) => Float32Array.from(th, (v, e) => v - local[j]![e]!)) });
    }
    const total = deltas.reduce((a, d) => a + d.n, 0);
    thetaModel.model.parameters().forEach((p, j) => {
      const g = new Float64Array(p.size);
      for (const { n, d } of deltas) d[j]!.forEach((v, e) => (g[e]! += (v * n) / total));
      p.grad = wg.tensor(Float32Array.from(g), p.shape);
    });
    outer.step();
    outer.zeroGrad();
  }
  const out = await paramsOf(thetaModel);
  for (const t of [thetaModel, ...ranks]) {
    t.optimizer.dispose();
    t.model.dispose();
  }
  outer.dispose();
  return out;
}

/** `n` rounds of `world` ranks, all counting. */
const all = (n: number, world: number) => Array.from({ length: n }, () => ({ world, counting: world }));

function expectClose(got: Float32Array[], reference: Float32Array[], what: string): void {
  reference.forEach((p, i) => expect(relErr(got[i]!, p), `${what}: parameter ${i}`).toBeLessThan(1e-5));
}

describe('rounds of local steps (DiLoCo)', () => {
  it('three replicas, 4 local steps a round, Nesterov outer step: bit-identical, equal to DiLoCo on one device, syncing every 4th step', async () => {
    await gpu({ autotune: false });
    const s = await testSession([1, 2, 3], { minReplicas: 3, sync: { every: 4, outer: OUTER } });
    await linksOpen(s);
    const results = [];
    for (let i = 0; i < 12; i++) results.push(await Promise.all(s.replicas.map((r) => r.dp.step(shardOf(wg, BATCH)))));
    // Synced at the end of each round only; in between (the round's begin aside), nothing but heartbeats goes out.
    expect(results.map((rs) => rs[0]!.synced)).toEqual([false, false, false, true, false, false, false, true, false, false, false, true]);
    for (const rs of results.filter((x, i) => i % 4 !== 0 && !x[0]!.synced)) for (const r of rs) expect(r.bytesSent).toBeLessThan(100);
    for (const rs of results.filter((x) => x[0]!.synced)) {
      expect(rs.map((r) => [r.worldSize, r.globalBatch, r.attempts, r.route])).toEqual([[3, 4 * BATCH, 1, 'peer'], [3, 4 * BATCH, 1, 'peer'], [3, 4 * BATCH, 1, 'peer']]);
    }
    expect(s.replicas.map((r) => r.dp.steps)).toEqual([12, 12, 12]);
    const [a, b, c] = await Promise.all(s.replicas.map((r) => paramsOf(r.trainer)));
    expect(sameBits(a!, b!) && sameBits(a!, c!), 'the replicas differ').toBe(true);
    expectClose(a!, await referenceRounds(all(3, 3), 4), 'vs DiLoCo on one device');
  });

  it('f16 deltas: the replicas stay bit-identical, and the rounding errors fed back keep them near the f32 run', async () => {
    await gpu({ autotune: false });
    const s = await testSession([1, 2], { minReplicas: 2, sync: { every: 3, outer: OUTER }, wire: 'f16', links: 'relay' });
    let bytes = 0;
    for (let i = 0; i < 9; i++) bytes += (await Promise.all(s.replicas.map((r) => r.dp.step(shardOf(wg, BATCH)))))[0]!.bytesSent;
    const [a, b] = await Promise.all(s.replicas.map((r) => paramsOf(r.trainer)));
    expect(sameBits(a!, b!), 'the replicas differ').toBe(true);
    const reference = await referenceRounds(all(3, 2), 3);
    // Rounded to float16 (2^-11 relative) on the wire, with the residual carried to the next sync.
    reference.forEach((p, i) => expect(relErr(a![i]!, p), `parameter ${i}`).toBeLessThan(2e-3));
    expect(bytes).toBeGreaterThan(0);
  });

  it('a replica that dies in the middle of a sync: the others run the sync again without it (its delta dropped, theirs re-weighted), nothing applied twice', async () => {
    await gpu({ autotune: false });
    const s = await testSession([1, 2], { minReplicas: 3, sync: { every: 2, outer: OUTER } }, { partBytes: 64 });
    // The third replica crashes (its connections drop, nothing said) right after its first ring
    // message of the second round's sync, over its peer link or through the hub.
    let crash = () => undefined as void;
    let crashed = false;
    const onGrad = (frame: Uint8Array) => {
      const h = decodeFrame(frame).header;
      if (h.type === 'grad' && h.step === 1 && !crashed) {
        crashed = true;
        setTimeout(() => crash(), 0);
      }
    };
    const transport = (() => {
      const { port1, port2 } = new MessageChannel();
      D.servePort(s.hub, port1);
      const t = new D.MessagePortTransport(port2);
      const send = t.send.bind(t);
      t.send = (frame) => {
        if (crashed) return;
        onGrad(frame); // (before sending: the port takes the frame's buffer)
        send(frame);
      };
      return t;
    })();
    const links: wg.distributed.PeerLink[] = [];
    const inner = new D.WebRTCConnector();
    const connector: wg.distributed.PeerConnector = {
      description: inner.description,
      connect(peer, offerer, signal) {
        const c = inner.connect(peer, offerer, signal);
        return {
          ...c,
          signal: (x) => c.signal(x),
          close: () => c.close(),
          opened: c.opened.then((link) => {
            links.push(link);
            const send = link.send.bind(link);
            link.send = (frame) => {
              if (crashed) return;
              onGrad(frame);
              send(frame);
            };
            return link;
          }),
        };
      },
    };
    const victim = s.add(3, { transport, links: connector });
    crash = () => {
      transport.close();
      for (const l of links) l.close();
    };
    await victim.dp.ready();
    const victimSteps = (async () => {
      const out = [];
      try {
        for (let i = 0; i < 4; i++) out.push(await victim.dp.step(shardOf(wg, BATCH)));
      } catch (e) {
        return { out, error: e as Error };
      }
      return { out, error: null };
    })();
    const survivors = [];
    for (let i = 0; i < 6; i++) survivors.push(await Promise.all(s.replicas.slice(0, 2).map((r) => r.dp.step(shardOf(wg, BATCH)))));
    const v = await victimSteps;
    expect(v.error?.message, s.log.join('\n')).toMatch(/ended the session for this replica|closed/);
    expect(v.out.map((r) => r.step)).toEqual([0, 1, 2]);
    // Round 1's sync (the fourth step) ran again with the two survivors (more than once if the
    // leader began a re-run before the hub had noticed the crash).
    expect(survivors.map((rs) => rs.map((r) => (r.synced ? `${r.worldSize}/${Math.min(r.attempts, 2)}` : '-')))).toEqual([
      ['-', '-'],
      ['3/1', '3/1'],
      ['-', '-'],
      ['2/2', '2/2'],
      ['-', '-'],
      ['2/1', '2/1'],
    ]);
    expect(survivors[3]![0]!.globalBatch).toBe(2 * 20); // two local steps of the two survivors' 10-sample shards
    const [a, b] = await Promise.all(s.replicas.slice(0, 2).map((r) => paramsOf(r.trainer)));
    expect(sameBits(a!, b!), 'the survivors differ').toBe(true);
    // Round 2 is begun with the two survivors: shards of 15 (ranks 0 and 1 of 2).
    const reference = await referenceRounds(
      [
        { world: 3, counting: 3 },
        { world: 3, counting: 2 },
        { world: 2, counting: 2 },
      ],
      2,
    );
    expectClose(a!, reference, `vs one device\n${s.log.join('\n')}`);
  });

  it('no leaks: GPU memory stays flat over rounds and steps, in every mode, with the sums on the CPU or the GPU', async () => {
    await gpu({ autotune: false });
    const modes: Partial<wg.distributed.DataParallelOptions>[] = [
      {},
      { reduce: 'gpu' },
      { sync: { every: 3, outer: OUTER } },
      { sync: { every: 3 }, wire: 'f16', reduce: 'gpu' },
    ];
    for (const opts of modes) {
      const s = await testSession([1, 2], { minReplicas: 2, links: 'relay', ...opts });
      const run = async (n: number) => {
        for (let i = 0; i < n; i++) await Promise.all(s.replicas.map((r) => r.dp.step(shardOf(wg, BATCH))));
      };
      await run(6);
      await settleGarbage();
      const before = wg.memory();
      await run(12);
      await settleGarbage();
      const after = wg.memory();
      expect([after.liveTensors, after.liveBytes], JSON.stringify(opts)).toEqual([before.liveTensors, before.liveBytes]);
    }
  });
});
