// A replica's mailbox: the messages of attempts it has received and not yet used (shard sizes,
// gradient parts, "done", the commit, state parts), each under the attempt it belongs to and its
// sender or place, so that an attempt finds what it waits for whatever order messages arrived in.

import { ProtocolError } from './errors';
import type { Phase } from './ring';
import type { AttemptMessage, Begin } from './messages';

export interface Held<M extends AttemptMessage = AttemptMessage> {
  step: number;
  attempt: number;
  from: number;
  msg: M;
  payload: Uint8Array;
}

type Of<T extends AttemptMessage['type']> = Held<Extract<AttemptMessage, { type: T }>>;

export class Mailbox {
  private readonly held = new Map<string, Held>();

  /** Keep a message; a ProtocolError if its sender sent the same one before. */
  put(from: number, msg: AttemptMessage, payload: Uint8Array): void {
    const key = keyOf(msg, from);
    if (this.held.has(key)) throw new ProtocolError(`member ${from} sent ${describe(msg)} twice`);
    this.held.set(key, { step: msg.step, attempt: msg.attempt, from, msg, payload });
  }

  shard(b: Begin, from: number): Of<'shard'> | undefined {
    return this.held.get(`shard:${b.step}:${b.attempt}:${from}`) as Of<'shard'> | undefined;
  }

  done(b: Begin, from: number): Of<'done'> | undefined {
    return this.held.get(`done:${b.step}:${b.attempt}:${from}`) as Of<'done'> | undefined;
  }

  commit(b: Begin): Of<'commit'> | undefined {
    return this.held.get(`commit:${b.step}:${b.attempt}:`) as Of<'commit'> | undefined;
  }

  grad(b: Begin, phase: Phase, bucket: number, offset: number): Of<'grad'> | undefined {
    return this.held.get(`grad:${b.step}:${b.attempt}:${phase}:${bucket}:${offset}`) as Of<'grad'> | undefined;
  }

  sync(b: Begin, part: number): Of<'sync'> | undefined {
    return this.held.get(`sync:${b.step}:${b.attempt}:${part}`) as Of<'sync'> | undefined;
  }

  /** Forget the messages of attempts before `attempt` (they can no longer be used). */
  dropBefore(attempt: number): void {
    for (const [k, m] of this.held) if (m.attempt < attempt) this.held.delete(k);
  }

  /** What it holds, for debugging a stalled session. */
  keys(): string[] {
    return [...this.held.keys()];
  }
}

function keyOf(m: AttemptMessage, from: number): string {
  const at = `${m.type}:${m.step}:${m.attempt}:`;
  switch (m.type) {
    case 'grad':
      return `${at}${m.phase}:${m.bucket}:${m.offset}`;
    case 'sync':
      return `${at}${m.part}`;
    case 'commit':
      return at;
    default:
      return `${at}${from}`;
  }
}

/** A message, for a reason: its type, place and attempt. */
function describe(m: AttemptMessage): string {
  const where = m.type === 'grad' ? ` (${m.phase} bucket ${m.bucket} [${m.offset}, +${m.count}))` : m.type === 'sync' ? ` (part ${m.part})` : '';
  return `the "${m.type}"${where} of step ${m.step} attempt ${m.attempt}`;
}
