// The messages of a session. Replicas talk to each other through the hub (the coordinator), which
// relays a message to the member ids in its `to` list; every relayed message names the step and
// the attempt it belongs to, so that late ones are recognised and dropped. Attempts are numbered
// through the session (0, 1, 2, … whatever their step): the hub accepts a "begin" only with the
// next number, and messages of an attempt only once it has begun. A "step" of these messages is a
// sync of the session: one optimizer step in synchronous mode, a round of `every` local steps in
// low-communication mode.
// The ring's gradient messages go over a direct peer link (WebRTC) between two replicas when they
// have one, else through the hub like everything else; "signal" messages (WebRTC offers, answers
// and ICE candidates) are relayed by the hub between the members it introduced.
// `checkRelayed` is the schema: the hub runs it on every message it relays, and replicas on every
// message they receive, from the hub or a peer link.

import { ProtocolError } from './errors';
import { isIndex, type BucketPlan, type ModelLayout, type Segment } from './layout';
import { isWireFormat, type WireDType, type WireFormat } from './wire';

/** "I am at the start of `step`" (synced: I hold the session's state; if not, send it to me). */
export interface Ready { type: 'ready'; step: number; synced: boolean; samplesPerSecond: number }
/** From the leader: attempt `attempt` (the session's next) runs `step` with these participants (rank = index). */
export interface Begin { type: 'begin'; step: number; attempt: number; participants: number[]; syncTo: number[] }
/**
 * A participant's shard size (samples of the step, or of the round's local steps), so that everyone
 * knows the global batch; and how its ring messages go to the next rank in this attempt: over
 * their peer link, or through the hub.
 */
export interface Shard { type: 'shard'; step: number; attempt: number; samples: number; via: Route }
/** Gradient (or delta) values of one part of a ring chunk: reduce-scatter adds them, all-gather copies them. */
export interface Grad {
  type: 'grad'; step: number; attempt: number; phase: 'reduce' | 'gather';
  bucket: number; offset: number; count: number; tensors: Segment[]; dtype: WireDType;
}
/**
 * To the leader: "I hold the complete sums"; lossSum = my shard's mean loss × its samples; finite:
 * whether my loss and gradients were finite (if not, lossSum is 0).
 */
export interface Done { type: 'done'; step: number; attempt: number; lossSum: number; finite: boolean }
/**
 * From the leader, to all participants at once: apply the update; or, `skipped` (a participant's
 * loss or gradients were not finite, so the sums are not either), drop it on every replica alike.
 */
export interface Commit { type: 'commit'; step: number; attempt: number; loss: number; globalBatch: number; skipped: boolean }
/** From the leader: part of the session's state (a webgrad checkpoint) for replicas that join. */
export interface Sync { type: 'sync'; step: number; attempt: number; part: number; parts: number; bytes: number }

export type Relayed = Ready | Begin | Shard | Grad | Done | Commit | Sync;

/** How a participant's ring messages reach the next rank. */
export type Route = 'peer' | 'relay';

/** The messages that belong to one attempt once it has begun. */
export type AttemptMessage = Shard | Grad | Done | Commit | Sync;

/** What only the current leader may send (the hub enforces it). */
export const LEADER_ONLY: readonly Relayed['type'][] = ['begin', 'commit', 'sync'];

/** The first message of a member: who it is, which model it trains, and how the session syncs. */
export interface Join { type: 'join'; name: string; layout: ModelLayout; agreement: Record<string, unknown>; sync: SyncSettings }

/**
 * How the session syncs, which every replica must share: every `every` local steps; with an outer
 * optimizer over the averaged parameter deltas (DiLoCo) or, with `outer` null and `every` 1,
 * synchronous gradient all-reduce; values on the wire in `wire`.
 */
export interface SyncSettings {
  every: number;
  outer: { lr: number; momentum: number; nesterov: boolean } | null;
  wire: WireFormat;
}

/** The most local steps between syncs. */
export const MAX_EVERY = 1 << 20;

/** `v` as sync settings, or a ProtocolError naming what is wrong. */
export function checkSyncSettings(v: unknown): SyncSettings {
  const s = v as Partial<SyncSettings> | null;
  if (typeof s !== 'object' || s === null) throw new ProtocolError('the sync settings are not { every, outer, wire }');
  if (!Number.isSafeInteger(s.every) || s.every! < 1 || s.every! > MAX_EVERY) throw new ProtocolError(`the sync settings have every = ${JSON.stringify(s.every)}; expected an integer from 1 to ${MAX_EVERY}`);
  if (!isWireFormat(s.wire)) throw new ProtocolError(`the sync settings have wire = ${JSON.stringify(s.wire)}; expected "f32" or "f16"`);
  let outer: SyncSettings['outer'] = null;
  if (s.outer !== null) {
    const o = s.outer as Partial<NonNullable<SyncSettings['outer']>> | undefined;
    const ok = !!o && typeof o.lr === 'number' && Number.isFinite(o.lr) && o.lr >= 0 && typeof o.momentum === 'number' && o.momentum >= 0 && o.momentum < 1 && typeof o.nesterov === 'boolean';
    if (!ok) throw new ProtocolError(`the sync settings have outer = ${JSON.stringify(s.outer)}; expected null or { lr ≥ 0, momentum in [0, 1), nesterov }`);
    outer = { lr: o.lr!, momentum: o.momentum!, nesterov: o.nesterov! };
  }
  return { every: s.every!, outer, wire: s.wire };
}

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
export interface Members {
  type: 'members';
  members: Member[];
  leader: number;
  synced: number[];
  lastBegin: { step: number; attempt: number } | null;
  /** Pairs of members whose peer link failed or stalled: their ring messages go through the hub. */
  relayed: [number, number][];
  /** The latest attempt the hub gave up on because a peer link failed or stalled, and why. */
  abandoned: { attempt: number; why: string } | null;
}

/** To the hub: this member's peer link with `peer` failed or was refused, and why. */
export interface LinkDown { type: 'link'; peer: number; reason: string }

/**
 * A WebRTC signal, relayed by the hub to the one member in `to`: a session description (offer or
 * answer) or an ICE candidate.
 */
export interface Signal {
  type: 'signal';
  /** Which try at connecting the pair (0, 1, 2: the offerer tries again after a failure). */
  generation: number;
  description?: { type: 'offer' | 'answer'; sdp: string };
  candidate?: { candidate: string; sdpMid: string | null; sdpMLineIndex: number | null };
}

/** The most tries at connecting one pair. */
export const MAX_GENERATION = 7;

/** The most a session description and a candidate may take (an SDP is a few KiB). */
export const MAX_SDP_CHARS = 64 << 10;
export const MAX_CANDIDATE_CHARS = 1024;

/** `h` as a signal, or a ProtocolError naming what is wrong with it. */
export function checkSignal(h: Record<string, unknown>, payloadBytes: number): Signal {
  if (payloadBytes !== 0) throw new ProtocolError(`a "signal" message carries ${payloadBytes} bytes of payload; it has none`);
  const d = h.description as Partial<NonNullable<Signal['description']>> | undefined;
  const c = h.candidate as Partial<NonNullable<Signal['candidate']>> | undefined;
  const generation = h.generation ?? 0;
  if (!isIndex(generation) || generation > MAX_GENERATION) throw new ProtocolError(`a "signal" message has generation = ${JSON.stringify(h.generation)}; expected an integer from 0 to ${MAX_GENERATION}`);
  if ((d === undefined) === (c === undefined)) throw new ProtocolError('a "signal" message carries neither or both of a description and a candidate');
  if (d !== undefined) {
    if (typeof d !== 'object' || d === null || (d.type !== 'offer' && d.type !== 'answer') || typeof d.sdp !== 'string' || d.sdp.length > MAX_SDP_CHARS) {
      throw new ProtocolError(`a "signal" message's description is not an offer or answer with an SDP of at most ${MAX_SDP_CHARS} characters`);
    }
    return { type: 'signal', generation, description: { type: d.type, sdp: d.sdp } };
  }
  const index = c!.sdpMLineIndex;
  const ok =
    typeof c === 'object' && c !== null && typeof c.candidate === 'string' && c.candidate.length <= MAX_CANDIDATE_CHARS &&
    (c.sdpMid === null || (typeof c.sdpMid === 'string' && c.sdpMid.length <= 64)) && (index === null || (isIndex(index) && index < 64));
  if (!ok) throw new ProtocolError(`a "signal" message's candidate is not { candidate (at most ${MAX_CANDIDATE_CHARS} characters), sdpMid, sdpMLineIndex }`);
  return { type: 'signal', generation, candidate: { candidate: c!.candidate!, sdpMid: c!.sdpMid ?? null, sdpMLineIndex: index ?? null } };
}

/** The first message on a peer link, each way: who sends it, to whom. */
export interface Hello { type: 'hello'; from: number; to: number }

/** From the hub before it closes a connection: the full reason (close frames hold 123 bytes). */
export interface Closed { type: 'closed'; code: number; reason: string }

type FieldKind = 'index' | 'number' | 'rate' | 'bool' | 'ids' | 'phase' | 'route' | 'any';

const SCHEMA: Record<Relayed['type'], Record<string, FieldKind>> = {
  ready: { step: 'index', synced: 'bool', samplesPerSecond: 'rate' },
  begin: { step: 'index', attempt: 'index', participants: 'ids', syncTo: 'ids' },
  shard: { step: 'index', attempt: 'index', samples: 'index', via: 'route' },
  grad: { step: 'index', attempt: 'index', phase: 'phase', bucket: 'any', offset: 'any', count: 'any', tensors: 'any', dtype: 'any' },
  done: { step: 'index', attempt: 'index', lossSum: 'number', finite: 'bool' },
  commit: { step: 'index', attempt: 'index', loss: 'number', globalBatch: 'index', skipped: 'bool' },
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
    if (part >= parts || payloadBytes > plan.partBytes) {
      throw new ProtocolError(`a "sync" message is part ${part} of ${parts} with ${payloadBytes} bytes (at most ${plan.partBytes})`);
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
    case 'route':
      return v === 'peer' || v === 'relay';
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
    route: '"peer" or "relay"',
    any: 'a value',
  }[kind];
}
