// A network model, for measuring what real links do to a session on one machine: it wraps a
// transport to the hub, or the peer links a connector makes, and delivers every frame as a link
// with a round-trip time, a bandwidth and packet loss would (seeded: the same losses every run).
//   - bandwidth: frames leave one after the other, each taking its size × 8 / bitsPerSecond;
//   - latency: a frame arrives half the round trip after it has left;
//   - loss: each frame is cut into packets of `packetBytes`, each lost with probability `loss`.
//     'reliable' delivery (TCP, WebRTC's reliable data channels) sends a lost packet again one
//     round trip later, holding back the frames behind it (they arrive in order); 'lossy' delivery
//     loses the frame (a broken link or an unreliable channel: the protocol must cope).
// A transport to the hub is modelled whole at the replica's end (the hub's side is a data centre);
// a peer link is modelled at both ends, each adding half of the link: with the same model on every
// replica, a message between two of them sees the round trip and the bandwidth given. The model is
// read at every frame: changing its fields changes the link from then on (a benchmark reuses one
// session for several networks).

import type { FramePipe, PeerConnection, PeerConnector, PeerLink } from './peer-link';
import type { Transport } from './transport';

export interface NetworkModel {
  /** Round-trip time in ms (default 0). */
  rttMs?: number;
  /** Bandwidth each way in bits per second (default: unlimited). */
  bitsPerSecond?: number;
  /** Probability that a packet is lost (default 0). */
  loss?: number;
  /** Lost packets are sent again ('reliable', default) or lose their frame ('lossy'). */
  delivery?: 'reliable' | 'lossy';
  /** Bytes per packet (default 1200, WebRTC's usual). */
  packetBytes?: number;
  /** Seed of the losses (default 1). */
  seed?: number;
}

/** What a modelled pipe has done, for measurements and tests. */
export interface NetworkStats {
  framesSent: number;
  framesLost: number;
  packetsResent: number;
  bytesSent: number;
}

/** One direction of a link: frames leave in order at the bandwidth, arrive after the latency. */
class Direction {
  private busyUntil = 0;
  private lastArrival = 0;
  private readonly queue: { at: number; deliver: () => void }[] = [];
  private timer: ReturnType<typeof setTimeout> | null = null;
  private rng: () => number;

  constructor(
    private readonly model: NetworkModel,
    /** The share of the round trip this direction adds (½ for a whole link, ¼ at each end of a peer link). */
    private readonly share: number,
    /** Whether packets are lost here (a peer link loses them once, where they leave). */
    private readonly lossy: boolean,
    seed: number,
    /** Where to count what leaves (null: this direction's frames are counted where they left). */
    private readonly stats: NetworkStats | null,
  ) {
    this.rng = mulberry32(seed);
  }

  send(bytes: number, deliver: () => void): void {
    const m = complete(this.model);
    if (!this.lossy) m.loss = 0;
    const packets = Math.max(1, Math.ceil(bytes / m.packetBytes));
    let lost = 0;
    if (m.loss > 0) for (let i = 0; i < packets; i++) if (this.rng() < m.loss) lost++;
    const stats = this.stats ?? { framesSent: 0, framesLost: 0, packetsResent: 0, bytesSent: 0 };
    stats.framesSent++;
    stats.bytesSent += bytes;
    if (lost && m.delivery === 'lossy') {
      stats.framesLost++;
      return;
    }
    stats.packetsResent += lost;
    const t = performance.now();
    const tx = Number.isFinite(m.bitsPerSecond) ? ((bytes + lost * m.packetBytes) * 8 * 1000) / m.bitsPerSecond : 0;
    const left = Math.max(t, this.busyUntil) + tx;
    this.busyUntil = left;
    // A resent packet comes a round trip later, and the frames behind it wait (in-order delivery).
    const at = Math.max(this.lastArrival, left + m.rttMs * this.share + lost * m.rttMs);
    this.lastArrival = at;
    this.queue.push({ at, deliver });
    this.arm();
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.queue.length = 0;
  }

  private arm(): void {
    if (this.timer || !this.queue.length) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      const t = performance.now();
      while (this.queue.length && this.queue[0]!.at <= t + 0.5) this.queue.shift()!.deliver();
      this.arm();
    }, Math.max(0, this.queue[0]!.at - performance.now()));
  }
}

function complete(m: NetworkModel): Required<NetworkModel> {
  return {
    rttMs: m.rttMs ?? 0,
    bitsPerSecond: m.bitsPerSecond ?? Infinity,
    loss: m.loss ?? 0,
    delivery: m.delivery ?? 'reliable',
    packetBytes: m.packetBytes ?? 1200,
    seed: m.seed ?? 1,
  };
}

/** `inner` with both directions modelled: outgoing frames wait in `out`, incoming in `incoming`. */
function modelPipe(inner: FramePipe, out: Direction, incoming: Direction): FramePipe {
  const outer: FramePipe = {
    onFrame: null,
    onClose: null,
    send: (frame) => out.send(frame.byteLength, () => inner.send(frame)),
    close: () => {
      out.close();
      incoming.close();
      inner.close();
    },
  };
  inner.onFrame = (frame) => incoming.send(frame.byteLength, () => outer.onFrame?.(frame));
  inner.onClose = (why) => outer.onClose?.(why);
  return outer;
}

/** A transport to the hub over a modelled link (both directions, at this end). */
export function modelTransport(t: Transport, model: NetworkModel, stats: NetworkStats = newStats()): Transport {
  const seed = model.seed ?? 1;
  const pipe = modelPipe(t, new Direction(model, 1 / 2, true, seed, stats), new Direction(model, 1 / 2, true, seed + 1, null));
  return {
    get description() {
      return `${t.description} under a network model (${describeModel(model)})`;
    },
    open: () => t.open(),
    send: (frame) => pipe.send(frame),
    close: () => pipe.close(),
    get onFrame() {
      return pipe.onFrame;
    },
    set onFrame(f) {
      pipe.onFrame = f;
    },
    get onClose() {
      return pipe.onClose;
    },
    set onClose(f) {
      pipe.onClose = f;
    },
  };
}

/** Peer links over modelled links: this end adds a quarter of the round trip each way (the other end adds as much). */
export function modelConnector(c: PeerConnector, model: NetworkModel, stats: NetworkStats = newStats()): PeerConnector {
  return {
    get description() {
      return `${c.description} under a network model (${describeModel(model)})`;
    },
    connect(peer, offerer, send): PeerConnection {
      const inner = c.connect(peer, offerer, send);
      const seed = (model.seed ?? 1) * 104729 + peer * 31;
      return {
        signal: (s) => inner.signal(s),
        close: () => inner.close(),
        // Losses happen once per traversal: at the sending end.
        opened: inner.opened.then((link: PeerLink) => modelPipe(link, new Direction(model, 1 / 4, true, seed, stats), new Direction(model, 1 / 4, false, seed + 1, null))),
      };
    },
  };
}

export function newStats(): NetworkStats {
  return { framesSent: 0, framesLost: 0, packetsResent: 0, bytesSent: 0 };
}

/** "20 ms RTT, 50 Mbit/s, 1% loss". */
export function describeModel(m: NetworkModel): string {
  const parts = [`${m.rttMs ?? 0} ms RTT`];
  if (m.bitsPerSecond !== undefined && Number.isFinite(m.bitsPerSecond)) {
    const b = m.bitsPerSecond;
    parts.push(b >= 1e9 ? `${b / 1e9} Gbit/s` : `${b / 1e6} Mbit/s`);
  }
  if (m.loss) parts.push(`${m.loss * 100}% ${m.delivery === 'lossy' ? 'frames lost' : 'packets resent'}`);
  return parts.join(', ');
}

/** A small seeded generator (mulberry32). */
function mulberry32(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
