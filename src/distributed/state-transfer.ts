// The session's state for replicas that join: the leader sends its parameters and optimizer state
// (a webgrad checkpoint; in rounds of local steps, followed by a second checkpoint that holds only
// the outer optimizer's momentum) in parts with the begin of the attempt they join at; a joiner
// checks the parts belong together and fit its model, and loads them before it computes.
//   state = u32 length of the first checkpoint (little-endian) | first checkpoint | [second checkpoint]

import { loadCheckpoint, saveCheckpoint } from '../io/checkpoint';
import { Sequential } from '../nn/sequential';
import { ProtocolError } from './errors';
import type { Begin } from './messages';
import type { Replica } from './replica';

/** As leader: the state, in parts, to the replicas attempt `b` sends it to. */
export async function sendState(r: Replica, b: Begin): Promise<void> {
  const main = await saveCheckpoint({ model: r.trainer.model, optimizer: r.trainer.optimizer, progress: { step: b.step } });
  const outer = r.outer ? await saveCheckpoint({ model: new Sequential(), optimizer: r.outer }) : new Uint8Array(0);
  const bytes = new Uint8Array(4 + main.byteLength + outer.byteLength);
  new DataView(bytes.buffer).setUint32(0, main.byteLength, true);
  bytes.set(main, 4);
  bytes.set(outer, 4 + main.byteLength);
  const size = r.link.plan!.partBytes;
  const parts = Math.ceil(bytes.byteLength / size);
  for (let part = 0; part < parts; part++) {
    r.link.sendTo(b.syncTo, { type: 'sync', step: b.step, attempt: b.attempt, part, parts, bytes: bytes.byteLength }, bytes.subarray(part * size, (part + 1) * size));
  }
}

/** As a joiner: wait for every part of the leader's state, load it, and hold the session's state from sync `b.step`. */
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
  const mainBytes = bytes.byteLength >= 4 ? new DataView(bytes.buffer).getUint32(0, true) : -1;
  if (mainBytes < 0 || 4 + mainBytes > bytes.byteLength || (r.outer === null) !== (4 + mainBytes === bytes.byteLength)) {
    throw new ProtocolError(`the state the leader sent is not ${r.outer ? 'two checkpoints (the model and optimizer, the outer optimizer)' : 'one checkpoint'} with their lengths`);
  }
  try {
    loadCheckpoint(bytes.subarray(4, 4 + mainBytes), { model: r.trainer.model, optimizer: r.trainer.optimizer });
    if (r.outer) loadCheckpoint(bytes.subarray(4 + mainBytes), { model: new Sequential(), optimizer: r.outer });
  } catch (e) {
    throw new ProtocolError(`the state the leader sent does not fit this replica's model and optimizers: ${(e as Error).message}`);
  }
  r.syncs = b.step;
  r.steps = b.step * r.settings.every;
  r.trainer.steps = r.steps;
  r.synced = true;
}

/** The most a state of this model can take: parameters, buffers and up to two optimizer states each, and the outer momentum. */
function maxStateBytes(r: Replica): number {
  const elements = Object.values(r.trainer.model.stateDict()).reduce((n, t) => n + t.size, 0);
  return elements * 4 * 4 + (2 << 20);
}
