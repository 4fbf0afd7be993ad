// Sessions inside the test process: a Hub behind MessagePorts and replicas (each with its own model,
// sharing the one GPU device) that join it, with what each replica logged, and their parameters.

import { afterEach } from 'vitest';
import { makeTrainer } from './fixture';
import { wg } from '../helpers';

const D = wg.distributed;

export interface TestReplica {
  name: string;
  trainer: wg.Trainer;
  dp: wg.distributed.DataParallel;
}

export interface TestSession {
  hub: wg.distributed.Hub;
  /** The hub's log and every replica's, in order. */
  log: string[];
  replicas: TestReplica[];
  /** Another replica of the session (joins now). */
  add(seed: number, opts?: Partial<wg.distributed.DataParallelOptions>, trainer?: wg.Trainer): TestReplica;
}

const open: (() => void)[] = [];
afterEach(() => {
  for (const close of open.splice(0)) close();
});

/** A hub's transport: a MessageChannel whose other end the hub serves. */
export function portTo(hub: wg.distributed.Hub): wg.distributed.Transport {
  const { port1, port2 } = new MessageChannel();
  D.servePort(hub, port1);
  return new D.MessagePortTransport(port2);
}

/** A session with replicas of the fixture's MLP from `seeds` (joined in order: the first leads). */
export async function testSession(seeds: number[], opts: Partial<wg.distributed.DataParallelOptions> = {}, hubOpts: wg.distributed.HubOptions = {}): Promise<TestSession> {
  const log: string[] = [];
  const hub = new D.Hub({ bucketBytes: 512, partBytes: 128, ...hubOpts, log: (l) => log.push(`hub: ${l}`) });
  const replicas: TestReplica[] = [];
  const add = (seed: number, extra: Partial<wg.distributed.DataParallelOptions> = {}, trainer = makeTrainer(wg, seed)): TestReplica => {
    const name = `r${replicas.length}`;
    const dp = new D.DataParallel({ trainer, transport: portTo(hub), name, log: (l) => log.push(l), ...opts, ...extra });
    const r = { name, trainer, dp };
    replicas.push(r);
    open.push(() => {
      dp.close();
      trainer.optimizer.dispose();
      trainer.model.dispose();
    });
    return r;
  };
  open.push(() => hub.close());
  for (const seed of seeds) await add(seed).dp.ready();
  return { hub, log, replicas, add };
}

export async function paramsOf(t: wg.Trainer): Promise<Float32Array[]> {
  return Promise.all(t.model.parameters().map(async (p) => (await p.toArray()) as Float32Array));
}

export function sameBits(a: Float32Array[], b: Float32Array[]): boolean {
  return a.length === b.length && a.every((t, i) => Buffer.from(t.buffer, t.byteOffset, t.byteLength).equals(Buffer.from(b[i]!.buffer, b[i]!.byteOffset, b[i]!.byteLength)));
}

/** Wait until `condition` holds (polling). */
export async function until(condition: () => boolean, ms = 60_000, story = () => ''): Promise<void> {
  const end = performance.now() + ms;
  while (!condition()) {
    if (performance.now() > end) throw new Error(`still waiting after ${ms / 1000} s\n${story()}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Wait until every pair of `n` replicas has its peer link open, both ways (their logs say so). */
export async function linksOpen(s: TestSession, n = s.replicas.length): Promise<void> {
  await until(() => s.log.filter((l) => /peer link with member \d+ open/.test(l)).length >= n * (n - 1), 30_000, () => s.log.join('\n'));
}

/**
 * A connector whose links pass each frame this replica sends to `tap(peer, frame, send)`, which
 * sends it, changes it, holds it back or sends more (a peer that misbehaves on its links).
 */
export function tapConnector(inner: wg.distributed.PeerConnector, tap: (peer: number, frame: Uint8Array, send: (f: Uint8Array) => void) => void): wg.distributed.PeerConnector {
  return {
    description: inner.description,
    connect(peer, offerer, signal) {
      const c = inner.connect(peer, offerer, signal);
      return {
        signal: (x) => c.signal(x),
        close: () => c.close(),
        opened: c.opened.then((link) => {
          const send = link.send.bind(link);
          link.send = (frame) => tap(peer, frame, send);
          return link;
        }),
      };
    },
  };
}
