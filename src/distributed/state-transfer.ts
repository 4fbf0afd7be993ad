// The session's state for replicas that join: the leader sends its parameters and optimizer state
// (a webgrad checkpoint) in parts with the begin of the attempt they join at; a joiner checks the
// parts belong together and fit its model, and loads them before it computes.

import { loadCheckpoint, saveCheckpoint } from '../io/checkpoint';
import { ProtocolError } from './errors';
import type { Begin } from './messages';
import type { Replica } from './replica';

/** As leader: the state, in parts, to the replicas attempt `b` sends it to. */
export async function sendState(r: Replica, b: Begin): Promise<void> {
  const bytes = await saveCheckpoint({ model: r.trainer.model, optimizer: r.trainer.optimizer, progress: { step: b.step } });
  const size = r.link.plan!.partElements * 4;
  const parts = Math.ceil(bytes.byteLength / size);
  for (let part = 0; part < parts; part++) {
    r.link.sendTo(b.syncTo, { type: 'sync', step: b.step, attempt: b.attempt, part, parts, bytes: bytes.byteLength }, bytes.subarray(part * size, (part + 1) * size));
  }
}

/** As a joiner: wait for every part of the leader's state, load it, and hold the session's state from step `b.step`. */
export async function receiveState(r: Replica, b: Begin): Promise<void> {
  const leader = b.participants[0]!;
  const limit = maxStateBytes(r);
  const parts = await r.link.until(() => {
    r.checkAttempt(b);
    const first = r.mailbox.sync(b, 0);
    if (!first) return undefined;
    const { parts, bytes } = first.msg;
    if (bytes > limit) throw new ProtocolError(`the leader sent a state of ${bytes.toLocaleString('en')} bytes; this model's is at most ${limit.toLocaleString('en')}`);
    const got: Uint8Array[] = [];
    for (let i = 0; i < parts; i++) {
      const m = r.mailbox.sync(b, i);
      if (!m) return undefined;
      if (m.from !== leader || m.msg.parts !== parts || m.msg.bytes !== bytes) throw new ProtocolError(`member ${m.from} sent a state part that does not belong to the leader's state`);
      got.push(m.payload);
    }
    const total = got.reduce((n, p) => n + p.byteLength, 0);
    if (total !== bytes) throw new ProtocolError(`the leader's state has ${total} bytes in its parts but declares ${bytes}`);
    return got;
  });
  const bytes = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    bytes.set(p, at);
    at += p.byteLength;
  }
  try {
    loadCheckpoint(bytes, { model: r.trainer.model, optimizer: r.trainer.optimizer });
  } catch (e) {
    throw new ProtocolError(`the state the leader sent does not fit this replica's model and optimizer: ${(e as Error).message}`);
  }
  r.steps = b.step;
  r.trainer.steps = b.step;
  r.synced = true;
}

/** The most a state (checkpoint) of this model can take: parameters, buffers and up to two optimizer states each. */
function maxStateBytes(r: Replica): number {
  const elements = Object.values(r.trainer.model.stateDict()).reduce((n, t) => n + t.size, 0);
  return elements * 4 * 3 + (1 << 20);
}
