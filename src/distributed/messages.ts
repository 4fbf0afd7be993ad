// The messages of a session. Replicas talk to each other through the hub (the coordinator), which
// relays a message to the member ids in its `to` list; every relayed message names the step and
// the attempt it belongs to, so that late ones are recognised and dropped. Attempts are numbered
// through the session (0, 1, 2, … whatever their step): the hub accepts a "begin" only with the
// next number, and messages of an attempt only once it has begun.
// `checkRelayed` is the schema: the hub runs it on every message it relays, and replicas on every
// message they receive.

import { ProtocolError } from './errors';
import { isIndex, type BucketPlan, type ModelLayout, type Segment } from './layout';

/** "I am at the start of `step`" (synced: I hold the session's state; if not, send it to me). */
export interface Ready { type: 'ready'; step: number; synced: boolean; samplesPerSecond: number }
/** From the leader: attempt `attempt` (the session's next) runs `step` with these participants (rank = index). */
export interface Begin { type: 'begin'; step: number; attempt: number; participants: number[]; syncTo: number[] }
/** A participant's shard size, so that everyone knows the global batch. */
export interface Shard { type: 'shard'; step: number; attempt: number; samples: number }
/** Gradient values of one part of a ring chunk: reduce-scatter adds them, all-gather copies them. */
export interface Grad {
  type: 'grad'; step: number; attempt: number; phase: 'reduce' | 'gather';
  bucket: number; offset: number; count: number; tensors: Segment[];
}
/** To the leader: "I hold the complete sums"; lossSum = my shard's mean loss × its samples. */
export interface Done { type: 'done'; step: number; attempt: number; lossSum: number }
/** From the leader, to all participants at once: apply the update. */
export interface Commit { type: 'commit'; step: number; attempt: number; loss: number; globalBatch: number }
/** From the leader: part of the session's state (a webgrad checkpoint) for replicas that join. */
export interface Sync { type: 'sync'; step: number; attempt: number; part: number; parts: number; bytes: number }

export type Relayed = Ready | Begin | Shard | Grad | Done | Commit | Sync;

/** The messages that belong to one attempt once it has begun. */
export type AttemptMessage = Shard | Grad | Done | Commit | Sync;

/** What only the current leader may send (the hub enforces it). */
export const LEADER_ONLY: readonly Relayed['type'][] = ['begin', 'commit', 'sync'];

/** The first message of a member: who it is and which model it trains. */
export interface Join { type: 'join'; name: string; layout: ModelLayout; agreement: Record<string, unknown> }

export interface Welcome {
  type: 'welcome';
  /** This member's id in the session (1, 2, …; 0 is the hub). */
  id: number;
  bucketBytes: number;
  partBytes: number;
  maxMessageBytes: number;
  /** Send something at least this often, or be dropped after the session's timeout. */
  heartbeatMs: number;
}

export interface Member { id: number; name: string }

/**
 * The membership, after every change: members in join order, the leader, who holds the state, and
 * the latest attempt any leader began (a new leader numbers its first attempt past it).
 */
export interface Members { type: 'members'; members: Member[]; leader: number; synced: number[]; lastBegin: { step: number; attempt: number } | null }

/** From the hub before it closes a connection: the full reason (close frames hold 123 bytes). */
export interface Closed { type: 'closed'; code: number; reason: string }

type FieldKind = 'index' | 'number' | 'rate' | 'bool' | 'ids' | 'phase' | 'any';

const SCHEMA: Record<Relayed['type'], Record<string, FieldKind>> = {
  ready: { step: 'index', synced: 'bool', samplesPerSecond: 'rate' },
  begin: { step: 'index', attempt: 'index', participants: 'ids', syncTo: 'ids' },
  shard: { step: 'index', attempt: 'index', samples: 'index' },
  grad: { step: 'index', attempt: 'index', phase: 'phase', bucket: 'any', offset: 'any', count: 'any', tensors: 'any' },
  done: { step: 'index', attempt: 'index', lossSum: 'number' },
  commit: { step: 'index', attempt: 'index', loss: 'number', globalBatch: 'index' },
  sync: { step: 'index', attempt: 'index', part: 'index', parts: 'index', bytes: 'index' },
};

/** Message types with a payload (and the most a sync part may carry is checked by its size). */
const WITH_PAYLOAD = new Set(['grad', 'sync']);

export function isRelayedType(type: string): type is Relayed['type'] {
  return Object.hasOwn(SCHEMA, type);
}

/**
 * `header` as a relayed message, or a ProtocolError naming the first thing wrong with it: an
 * unknown type, a missing or mistyped field, a payload where none belongs, or (gradients) a
 * declared layout that does not match the model's.
 */
export function checkRelayed(header: Record<string, unknown> & { type: string }, payloadBytes: number, plan: BucketPlan): Relayed {
  const { type } = header;
  if (!isRelayedType(type)) throw new ProtocolError(`unknown message type "${type}"`);
  for (const [field, kind] of Object.entries(SCHEMA[type])) {
    if (!fits(header[field], kind)) throw new ProtocolError(`a "${type}" message has ${field} = ${JSON.stringify(header[field])}; expected ${describe(kind)}`);
  }
  if (!WITH_PAYLOAD.has(type) && payloadBytes !== 0) throw new ProtocolError(`a "${type}" message carries ${payloadBytes} bytes of payload; it has none`);
  if (type === 'grad') plan.checkGradientPart(header as never, payloadBytes);
  if (type === 'sync') {
    const { part, parts } = header as unknown as Sync;
    if (part >= parts || payloadBytes > plan.partElements * 4) {
      throw new ProtocolError(`a "sync" message is part ${part} of ${parts} with ${payloadBytes} bytes (at most ${plan.partElements * 4})`);
    }
  }
  return header as unknown as Relayed;
}

function fits(v: unknown, kind: FieldKind): boolean {
  switch (kind) {
    case 'index':
      return isIndex(v);
    case 'number':
      return typeof v === 'number' && Number.isFinite(v);
    case 'rate':
      return typeof v === 'number' && Number.isFinite(v) && v >= 0;
    case 'bool':
      return typeof v === 'boolean';
    case 'ids':
      return Array.isArray(v) && v.every((id) => isIndex(id) && id > 0) && new Set(v).size === v.length;
    case 'phase':
      return v === 'reduce' || v === 'gather';
    case 'any':
      return true;
  }
}

function describe(kind: FieldKind): string {
  return {
    index: 'a non-negative integer',
    number: 'a finite number',
    rate: 'a finite number ≥ 0',
    bool: 'true or false',
    ids: 'a list of distinct member ids',
    phase: '"reduce" or "gather"',
    any: 'a value',
  }[kind];
}
