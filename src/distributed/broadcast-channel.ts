// Sessions among the tabs and Workers of one browser (one origin) without a server: the hub runs in
// one of them and the others reach it over a BroadcastChannel of a name they agree on.
//
//   // the hub's tab or Worker:
//   const served = wg.distributed.serveBroadcastChannel(new wg.distributed.Hub(), 'mnist');
//   // every replica (the hub's tab too, if it trains):
//   new wg.distributed.DataParallel({ trainer, transport: new wg.distributed.BroadcastChannelTransport('mnist') });
//
// A channel delivers every message to every other listener, so each message names its hub and
// client (both random ids) and everyone drops what is not theirs (each replica thus also receives
// what the hub relays to the others: fine for the few tabs of one machine). Naming the hub makes a replica
// of a closed hub ignore a new hub on the same name instead of talking past it. Serve one hub per
// channel name: a second one would compete for the replicas.
//
// A closing tab sends nothing, so the hub pings every client; a replica that stops hearing from its
// hub ends its session. The hub drops replicas that go silent with its own heartbeat timeout.

import { DistributedError } from './errors';
import type { Hub, HubConnection } from './hub';
import type { Transport } from './transport';

/** A replica ends its session after this many ping intervals without a word from its hub. */
const MISSED_PINGS = 4;

type Envelope =
  | { kind: 'connect'; client: string }
  | { kind: 'accept'; hub: string; client: string; pingMs: number }
  | { kind: 'ping'; hub: string }
  | { kind: 'to-hub' | 'to-client'; hub: string; client: string; frame: Uint8Array }
  | { kind: 'leave'; hub: string; client: string }
  | { kind: 'close'; hub: string; client: string; reason: string };

export interface ServeBroadcastChannelOptions {
  /** How often the hub says it is still there (default: the hub's heartbeat, a quarter of its timeout). */
  pingMs?: number;
}

/** What serveBroadcastChannel returns: close() stops serving and drops the channel's replicas from the hub. */
export interface BroadcastChannelServer {
  close(): void;
}

/** Serve `hub` to the replicas that connect over the BroadcastChannel `name`. */
export function serveBroadcastChannel(hub: Hub, name: string, opts: ServeBroadcastChannelOptions = {}): BroadcastChannelServer {
  const id = randomId();
  const pingMs = opts.pingMs ?? Math.max(25, Math.floor(hub.timeoutMs / 4));
  const channel = new BroadcastChannel(name);
  const clients = new Map<string, HubConnection>();
  let closed = false;
  // The hub may still write to its links while this channel winds down.
  const post = (m: Envelope) => {
    if (!closed) channel.postMessage(m);
  };
  const connectClient = (client: string): HubConnection =>
    hub.connect({
      send: (frame) => post({ kind: 'to-client', hub: id, client, frame: cloneable(frame) }),
      close: (_code, reason) => {
        clients.delete(client);
        post({ kind: 'close', hub: id, client, reason });
      },
    });

  channel.onmessage = (ev: MessageEvent) => {
    const m = envelope(ev.data);
    if (m?.kind === 'connect') {
      // A replica announces itself again on every ping until it hears back: answer each time.
      if (!clients.has(m.client)) clients.set(m.client, connectClient(m.client));
      post({ kind: 'accept', hub: id, client: m.client, pingMs });
      return;
    }
    if (!m || !('client' in m) || m.hub !== id) return;
    const conn = clients.get(m.client);
    if (m.kind === 'to-hub') conn?.receive(m.frame);
    else if (m.kind === 'leave' && conn) {
      clients.delete(m.client);
      conn.closed();
    }
  };

  const pinger = setInterval(() => post({ kind: 'ping', hub: id }), pingMs);
  // Replicas that started first are waiting for a ping to announce themselves again.
  post({ kind: 'ping', hub: id });

  return {
    close() {
      if (closed) return;
      closed = true;
      clearInterval(pinger);
      channel.close();
      for (const conn of clients.values()) conn.closed();
      clients.clear();
    },
  };
}

export interface BroadcastChannelTransportOptions {
  /** open() fails if no hub answers within this long (default 5 s). */
  openTimeoutMs?: number;
}

export class BroadcastChannelTransport implements Transport {
  readonly description: string;
  onFrame: ((frame: Uint8Array) => void) | null = null;
  onClose: ((why: string) => void) | null = null;
  private readonly id = randomId();
  private readonly openTimeoutMs: number;
  private channel: BroadcastChannel | null = null;
  private hub: string | null = null;
  private heard = false;
  private watch: ReturnType<typeof setInterval> | null = null;
  /** Settles a pending open() when close() comes first. */
  private abandon: ((e: DistributedError) => void) | null = null;

  constructor(
    private readonly name: string,
    opts: BroadcastChannelTransportOptions = {},
  ) {
    this.description = `the hub on BroadcastChannel "${name}"`;
    this.openTimeoutMs = opts.openTimeoutMs ?? 5000;
  }

  open(): Promise<void> {
    const channel = new BroadcastChannel(this.name);
    this.channel = channel;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        const s = (this.openTimeoutMs / 1000).toFixed(1);
        fail(new DistributedError(`no hub answered on BroadcastChannel "${this.name}" within ${s} s: serve one with serveBroadcastChannel(hub, "${this.name}") in a tab or Worker of this origin`));
      }, this.openTimeoutMs);
      const fail = (e: DistributedError) => {
        clearTimeout(timer);
        this.abandon = null;
        this.shut();
        reject(e);
      };
      this.abandon = fail;
      channel.onmessage = (ev: MessageEvent) => {
        const m = envelope(ev.data);
        if (!m || !('hub' in m)) return;
        if (this.hub === null) {
          if (m.kind === 'ping') this.announce();
          if (m.kind !== 'accept' || m.client !== this.id) return;
          clearTimeout(timer);
          this.abandon = null;
          this.hub = m.hub;
          this.watchHub(m.pingMs);
          resolve();
        }
        if (m.hub !== this.hub || ('client' in m && m.client !== this.id)) return;
        this.heard = true;
        if (m.kind === 'to-client') this.onFrame?.(m.frame);
        else if (m.kind === 'close') this.lose(m.reason);
      };
      this.announce();
    });
  }

  send(frame: Uint8Array): void {
    if (this.hub) this.post({ kind: 'to-hub', hub: this.hub, client: this.id, frame: cloneable(frame) });
  }

  close(): void {
    if (this.hub) this.post({ kind: 'leave', hub: this.hub, client: this.id });
    this.abandon?.(new DistributedError(`${this.description}: the transport was closed before the hub answered`));
    this.shut();
  }

  private announce(): void {
    this.post({ kind: 'connect', client: this.id });
  }

  private post(m: Envelope): void {
    this.channel?.postMessage(m);
  }

  /** Count the ping intervals without a message from the hub; a blocked event loop only costs one. */
  private watchHub(pingMs: number): void {
    let missed = 0;
    this.watch = setInterval(() => {
      missed = this.heard ? 0 : missed + 1;
      this.heard = false;
      if (missed >= MISSED_PINGS) this.lose(`no word from it for ${((missed * pingMs) / 1000).toFixed(1)} s (its tab or Worker is gone)`);
    }, pingMs);
  }

  private lose(why: string): void {
    this.shut();
    this.onClose?.(why);
  }

  private shut(): void {
    if (this.watch) clearInterval(this.watch);
    this.watch = null;
    this.channel?.close();
    this.channel = null;
    this.hub = null;
  }
}

/** The message if it is one of this protocol's envelopes (anyone of the origin may post on the channel). */
function envelope(data: unknown): Envelope | null {
  if (typeof data !== 'object' || data === null) return null;
  const m = data as Record<string, unknown>;
  const ids = (...keys: string[]) => keys.every((k) => typeof m[k] === 'string');
  switch (m.kind) {
    case 'connect':
      return ids('client') ? (m as Envelope) : null;
    case 'accept':
      return ids('hub', 'client') && typeof m.pingMs === 'number' && m.pingMs > 0 && Number.isFinite(m.pingMs) ? (m as Envelope) : null;
    case 'ping':
      return ids('hub') ? (m as Envelope) : null;
    case 'to-hub':
    case 'to-client':
      return ids('hub', 'client') && m.frame instanceof Uint8Array ? (m as Envelope) : null;
    case 'leave':
      return ids('hub', 'client') ? (m as Envelope) : null;
    case 'close':
      return ids('hub', 'client') && typeof m.reason === 'string' ? (m as Envelope) : null;
    default:
      return null;
  }
}

/**
 * The frame as a Uint8Array that owns its whole ArrayBuffer: posting clones the underlying buffer,
 * so a view into a larger (or shared) one is copied out first.
 */
function cloneable(frame: Uint8Array): Uint8Array {
  const whole = frame.byteOffset === 0 && frame.byteLength === frame.buffer.byteLength && frame.buffer instanceof ArrayBuffer;
  return whole ? frame : frame.slice();
}

function randomId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
