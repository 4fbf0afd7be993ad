// Data parallelism over a BroadcastChannel, as tabs and Workers of one browser would use it: Node's
// BroadcastChannel delivers between instances of one process, so the replicas and the hub run here.
// Replicas train bit-identically and match one device; a hub that goes away without a word ends
// the replicas' sessions by its missing pings; a channel nobody serves fails open() plainly.

import { afterEach, describe, expect, it } from 'vitest';
import { makeTrainer, shardOf, singleDevice } from './fixture';
import { gpu, relErr, wg } from '../helpers';

const D = wg.distributed;

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) f();
});

function channelName(): string {
  return `webgrad-test-${Math.random().toString(36).slice(2)}`;
}

function serve(name: string, pingMs?: number) {
  const hub = new D.Hub({ bucketBytes: 256, partBytes: 64 });
  const served = D.serveBroadcastChannel(hub, name, { pingMs });
  cleanup.push(() => {
    served.close();
    hub.close();
  });
  return { hub, served };
}

function replica(name: string, seed: number, extra: Partial<wg.distributed.DataParallelOptions> = {}) {
  const trainer = makeTrainer(wg, seed);
  const dp = new D.DataParallel({ trainer, transport: new D.BroadcastChannelTransport(name), ...extra });
  cleanup.push(() => {
    dp.close();
    trainer.optimizer.dispose();
    trainer.model.dispose();
  });
  return { trainer, dp };
}

async function params(trainer: wg.Trainer): Promise<Float32Array[]> {
  return Promise.all(trainer.model.parameters().map(async (p) => (await p.toArray()) as Float32Array));
}

describe('DataParallel over a BroadcastChannel', () => {
  it('three replicas on one channel train bit-identically and match one device on the global batch', async () => {
    await gpu();
    const name = channelName();
    const { hub } = serve(name);
    // Whoever else posts on the channel is ignored.
    const stranger = new BroadcastChannel(name);
    cleanup.push(() => stranger.close());
    for (const junk of [null, 'hello', { kind: 'to-hub', hub: 'x', client: 'y', frame: 'not bytes' }, { kind: 'connect' }]) stranger.postMessage(junk);

    const B = 10;
    const rs = [replica(name, 1, { minReplicas: 3 }), replica(name, 2), replica(name, 3)];
    await Promise.all(rs.map((r) => r.dp.ready()));
    for (let s = 0; s < 3; s++) {
      const results = await Promise.all(rs.map((r) => r.dp.step(shardOf(wg, B))));
      expect(results.map((r) => [r.step, r.rank, r.worldSize])).toEqual([0, 1, 2].map((rank) => [s, rank, 3]));
    }
    const [p0, p1, p2] = await Promise.all(rs.map((r) => params(r.trainer)));
    const bits = (ps: Float32Array[]) => ps.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength).toString('hex'));
    expect(bits(p1!)).toEqual(bits(p0!));
    expect(bits(p2!)).toEqual(bits(p0!));
    const single = await singleDevice(wg, 3, B);
    single.forEach((p, i) => expect(relErr(p0![i]!, p), `parameter ${i}`).toBeLessThan(1e-5));

    // A hub that shuts down says so.
    hub.close();
    await expect(rs[0]!.dp.step(shardOf(wg, B))).rejects.toThrow(new RegExp(`BroadcastChannel "${name}" ended the session for this replica: the coordinator is shutting down`));
  });

  it("the hub's side going away without a word ends the replicas' sessions after a few missed pings", async () => {
    await gpu();
    const name = channelName();
    const { served } = serve(name, 100);
    const rs = [replica(name, 1, { minReplicas: 2 }), replica(name, 2)];
    await Promise.all(rs.map((r) => r.dp.step(shardOf(wg, 8))));
    served.close(); // as when the hub's tab closes: no more pings, nothing delivered
    const t0 = performance.now();
    for (const r of rs) {
      await expect(r.dp.step(shardOf(wg, 8))).rejects.toThrow(
        new RegExp(`BroadcastChannel "${name}" ended the session for this replica: no word from it for 0.4 s \\(its tab or Worker is gone\\)`),
      );
    }
    expect(performance.now() - t0).toBeLessThan(3000);
  });

  it('open() fails plainly when nobody serves the channel, and finds a hub that starts serving in time', async () => {
    const name = channelName();
    const lonely = new D.BroadcastChannelTransport(name, { openTimeoutMs: 200 });
    await expect(lonely.open()).rejects.toThrow(D.DistributedError);
    await expect(new D.BroadcastChannelTransport(name, { openTimeoutMs: 200 }).open()).rejects.toThrow(
      new RegExp(`no hub answered on BroadcastChannel "${name}" within 0.2 s: serve one with serveBroadcastChannel\\(hub, "${name}"\\)`),
    );

    // A replica that comes first announces itself again when the hub's first ping arrives.
    const early = new D.BroadcastChannelTransport(name, { openTimeoutMs: 2000 });
    cleanup.push(() => early.close());
    const opening = early.open();
    await new Promise((r) => setTimeout(r, 50));
    serve(name);
    await opening;
  });
});
