// A replica's link to the hub: it joins the session over a transport, keeps the heartbeat going,
// sends frames (counting their bytes, and those of the peer links), checks what it receives (the
// hub's own messages here; peers' against the schema and the model's layout, then handed on;
// WebRTC signals to the peer links), and lets the replica wait for a condition that messages
// fulfil (`until`). The first error ends the link for good.

import { DistributedError, ProtocolError } from './errors';
import { decodeFrame, encodeFrame, HUB, type Frame } from './frame';
import { BucketPlan, type ModelLayout } from './layout';
import { checkRelayed, checkSignal, type Members, type Relayed, type SyncSettings, type Welcome } from './messages';
import type { SignalBody } from './peer-link';
import type { Transport } from './transport';

export class ReplicaLink {
  /** This replica's member id (0 until the hub admits it). */
  id = 0;
  /** How gradients are cut into messages (from the hub's welcome). */
  plan: BucketPlan | null = null;
  /** Why the link ended, once it has. */
  failure: DistributedError | null = null;
  bytesSent = 0;
  bytesReceived = 0;
  /** The largest message the session accepts (from the hub's welcome). */
  maxMessageBytes = 1 << 20;
  /** The hub's membership messages. */
  onMembers: (m: Members) => void = () => undefined;
  /** WebRTC signals from other members, relayed by the hub (of a try at connecting, `generation`). */
  onSignal: (from: number, s: SignalBody, generation: number) => void = () => undefined;
  /** The link ended (after `failure` is set). */
  onFail: () => void = () => undefined;
  /** Messages from peers, once checked; may throw a ProtocolError, which ends the link. */
  onPeer: (from: number, msg: Relayed, payload: Uint8Array) => void = () => undefined;

  private closedReason: string | null = null;
  private heartbeat: ReturnType<typeof setInterval> | null = null;
  /** How often to tell the hub this replica is alive (from its welcome). */
  private heartbeatMs: number | undefined;
  private readonly waiters = new Set<() => void>();

  constructor(
    private readonly transport: Transport,
    private readonly layout: ModelLayout,
    private readonly sync: SyncSettings,
  ) {}

  /** Connect, ask to join, and start the heartbeat once the hub has admitted this replica. */
  async join(name: string, agreement: Record<string, string | number | boolean>): Promise<void> {
    this.transport.onFrame = (bytes) => this.receive(bytes);
    this.transport.onClose = (why) => this.fail(new DistributedError(`${this.transport.description} ended the session for this replica: ${this.closedReason ?? why}`));
    try {
      await this.transport.open();
    } catch (e) {
      throw e instanceof DistributedError ? e : new DistributedError(`could not connect to ${this.transport.description}: ${(e as Error).message}`);
    }
    this.toHub({ type: 'join', name, layout: this.layout, agreement, sync: this.sync });
    const heartbeatMs = await this.until(() => this.heartbeatMs);
    this.heartbeat = setInterval(() => this.toHub({ type: 'beat' }), heartbeatMs);
  }

  toHub<H extends { type: string }>(header: H): void {
    this.sendFrame(encodeFrame(header));
  }

  /** A message to members `ids` (nothing is sent to nobody). */
  sendTo(ids: number[], header: Relayed, payload?: ArrayBufferView): void {
    if (ids.length) this.sendFrame(encodeFrame({ ...header, to: ids }, payload));
  }

  sendFrame(frame: Uint8Array): void {
    if (this.failure) return;
    this.bytesSent += frame.byteLength;
    this.transport.send(frame);
  }

  /** End the link (the first reason stands), and wake whoever waits so that they see it. */
  fail(e: DistributedError): void {
    if (this.failure) return;
    this.failure = e;
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.transport.close();
    this.onFail();
    this.changed();
  }

  /** Resolve with the first value `probe` returns, re-asking after every message; `probe` may throw. */
  until<T>(probe: () => T | undefined): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const check = () => {
        try {
          if (this.failure) throw this.failure;
          const v = probe();
          if (v === undefined) return;
          resolve(v);
        } catch (e) {
          reject(e);
        }
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  /** How many waits are pending, for debugging a stalled session. */
  get waiting(): number {
    return this.waiters.size;
  }

  /** Something that waits may be fulfilled (a message arrived here or over a peer link): ask again. */
  changed(): void {
    for (const w of [...this.waiters]) w();
  }

  private receive(bytes: Uint8Array): void {
    if (this.failure) return;
    this.bytesReceived += bytes.byteLength;
    try {
      const f = decodeFrame(bytes);
      if (f.from === HUB) this.fromHub(f);
      else this.fromPeer(f);
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e;
      this.fail(new ProtocolError(`this replica rejected a message and left the session: ${e.message}`));
    }
    this.changed();
  }

  private fromHub(f: Frame): void {
    const h = f.header;
    if (h.type === 'welcome') {
      const w = h as unknown as Welcome;
      this.id = w.id;
      this.heartbeatMs = w.heartbeatMs;
      this.maxMessageBytes = w.maxMessageBytes;
      this.plan = new BucketPlan(this.layout, w.bucketBytes, w.partBytes, this.sync.wire);
    } else if (h.type === 'members') {
      this.onMembers(h as unknown as Members);
    } else if (h.type === 'closed') {
      this.closedReason = String((h as { reason?: unknown }).reason);
    } else {
      throw new ProtocolError(`unknown message "${h.type}" from the hub`);
    }
  }

  private fromPeer(f: Frame): void {
    if (!this.plan) throw new ProtocolError(`a "${f.header.type}" message from member ${f.from} before this replica was admitted`);
    if (f.header.type === 'signal') {
      const { type: _, generation, ...body } = checkSignal(f.header, f.payload.byteLength);
      this.onSignal(f.from, body, generation);
      return;
    }
    this.onPeer(f.from, checkRelayed(f.header, f.payload.byteLength, this.plan), f.payload);
  }
}
