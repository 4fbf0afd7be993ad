// A replica's direct links to the other members of its session, for the ring's messages. It
// connects to every member the hub lists (the lower id offers, the other answers; the signals go
// through the hub, which relays them only between members), and:
//   - a link is used only once both sides have said hello over it (who they are, to whom), and
//     while the hub does not relay the pair (a link that failed or stalled once stays relayed);
//   - what arrives over a link is checked like what the hub relays (size, schema, layout, wire
//     dtype) and must be a ring message of the attempt under way from the previous rank; anything
//     else closes the link with the reason, which goes to the log and to the hub (which then relays
//     the pair and has the attempt run again): a peer cannot make this replica leave its session;
//   - a connection that fails is made again (up to three tries in all: WebRTC stacks can lose a
//     race while setting up under load); each try is a new generation, named in its signals, so
//     that the answering side starts afresh and signals of an old try are not mixed in;
//   - a pair that cannot connect within the connector's timeout and its tries, or whose link
//     closes, falls back to the relay, and the log says so.

import { ProtocolError } from './errors';
import { decodeFrame, encodeFrame, stampSender } from './frame';
import type { BucketPlan } from './layout';
import { checkRelayed, type Grad, type Hello, type LinkDown, type Members, type Route } from './messages';
import type { PeerConnection, PeerConnector, PeerLink, SignalBody } from './peer-link';

/** Tries at connecting a pair (each a generation). */
const TRIES = 3;

interface Peer {
  connection: PeerConnection;
  /** Which try this connection is (0, 1, …): the offerer's count, which its signals carry. */
  generation: number;
  link: PeerLink | null;
  /** Both hellos exchanged: the link carries ring messages. */
  greeted: boolean;
  /** The link failed, was refused or closed: the pair is relayed. */
  failed: boolean;
}

/** What the peer links need of their replica. */
export interface PeerLinksHost {
  readonly id: number;
  plan(): BucketPlan | null;
  maxMessageBytes(): number;
  /** A ring message from `from` over its link; throws a ProtocolError to refuse it. */
  deliver(from: number, msg: Grad, payload: Uint8Array): void;
  toHub(header: LinkDown | ({ type: 'signal'; to: number[]; generation: number } & SignalBody)): void;
  count(sent: number, received: number): void;
  log(line: string): void;
}

export class PeerLinks {
  private readonly peers = new Map<number, Peer>();
  /** Pairs the hub relays ("a-b", a < b). */
  private relayed = new Set<string>();
  private members = new Set<number>();
  private closed = false;

  constructor(
    private readonly host: PeerLinksHost,
    /** What makes links (null: none, every pair is relayed). Set before the replica joins. */
    public connector: PeerConnector | null,
  ) {}

  /** How this replica's ring messages to `peer` go now. */
  route(peer: number): Route {
    const p = this.peers.get(peer);
    return p?.greeted && !p.failed && !this.relayed.has(pairKey(this.host.id, peer)) ? 'peer' : 'relay';
  }

  /** Send a ring message to `peer` over its link (route() said 'peer'; a link that has closed since drops it: the hub's deadline sees to that). */
  send(peer: number, header: Omit<Grad, 'type'> & { type: 'grad' }, payload: Uint8Array): void {
    const p = this.peers.get(peer);
    if (!p?.link || p.failed) return;
    const frame = encodeFrame({ ...header, to: [peer] }, payload);
    this.host.count(frame.byteLength, 0);
    p.link.send(frame);
  }

  /** The hub's membership: connect to new members, close links to those gone, and to relayed pairs. */
  update(m: Members): void {
    if (this.closed) return;
    this.members = new Set(m.members.map((x) => x.id));
    this.relayed = new Set(m.relayed.map(([a, b]) => pairKey(a, b)));
    for (const [id, p] of this.peers) {
      if (!this.members.has(id)) this.forget(id, p);
      else if (this.relayed.has(pairKey(this.host.id, id)) && !p.failed) {
        p.failed = true;
        p.connection.close();
        p.link?.close();
      }
    }
    if (!this.connector) return;
    for (const id of this.members) {
      if (id === this.host.id || this.peers.has(id) || this.relayed.has(pairKey(this.host.id, id))) continue;
      // The lower id offers; the other starts waiting for the offer now (its timeout runs too).
      this.open(id);
    }
  }

  /** A signal from `from`, relayed by the hub (of the try `generation`). */
  signal(from: number, s: SignalBody, generation = 0): void {
    if (this.closed || !this.connector) return;
    if (!this.members.has(from) || from === this.host.id) {
      this.host.log(`refused a peer offer from member ${from}: it is not a member of the session as this replica knows it`);
      return;
    }
    let p = this.peers.get(from);
    if (p && generation < p.generation) return; // of a try given up
    if (!p || generation > p.generation) {
      // The offerer tries again (the answering side only follows): start afresh.
      if (p && (this.host.id < from || generation >= TRIES)) return;
      if (p) this.forget(from, p);
      p = this.open(from, generation);
    }
    p?.connection.signal(s);
  }

  /** Close every link (the replica leaves). */
  close(): void {
    this.closed = true;
    for (const [id, p] of this.peers) this.forget(id, p);
  }

  /** A short account of the links, for log lines and tests: peer id → route. */
  describe(): Record<number, Route | 'connecting'> {
    const out: Record<number, Route | 'connecting'> = {};
    for (const [id, p] of this.peers) out[id] = p.failed ? 'relay' : p.greeted ? this.route(id) : 'connecting';
    // Without a connector every pair is relayed (absent ids read as 'relay').
    return out;
  }

  private open(peer: number, generation = 0): Peer | undefined {
    if (!this.connector) return undefined;
    const offerer = this.host.id < peer;
    const connection = this.connector.connect(peer, offerer, (s) => this.host.toHub({ type: 'signal', to: [peer], generation, ...s }));
    const p: Peer = { connection, generation, link: null, greeted: false, failed: false };
    this.peers.set(peer, p);
    connection.opened.then(
      (link) => this.opened(peer, p, link),
      (e: Error) => {
        if (p.failed || this.closed || this.peers.get(peer) !== p) return;
        p.failed = true;
        if (offerer && generation + 1 < TRIES) {
          this.host.log(`${e.message} (try ${generation + 1} of ${TRIES}): trying again`);
          this.open(peer, generation + 1);
          return;
        }
        this.host.log(`${e.message}: the ring messages to and from member ${peer} go through the coordinator`);
      },
    );
    return p;
  }

  private opened(peer: number, p: Peer, link: PeerLink): void {
    if (p.failed || this.closed || this.peers.get(peer) !== p) {
      link.close();
      return;
    }
    p.link = link;
    let heard = false;
    link.onFrame = (bytes) => {
      if (p.failed) return;
      this.host.count(0, bytes.byteLength);
      try {
        if (!heard) {
          this.hello(peer, bytes);
          heard = true;
          p.greeted = true;
          this.host.log(`peer link with member ${peer} open (${this.connector!.description})`);
        } else this.receive(peer, bytes);
      } catch (e) {
        if (!(e instanceof ProtocolError)) throw e;
        this.refuse(peer, p, `refused a message from member ${peer} on its peer link: ${e.message}`);
      }
    };
    link.onClose = (why) => {
      if (p.failed || this.closed) return;
      this.refuse(peer, p, `the peer link with member ${peer} closed (${why})`);
    };
    const hello: Hello = { type: 'hello', from: this.host.id, to: peer };
    const frame = encodeFrame(hello);
    this.host.count(frame.byteLength, 0);
    link.send(frame);
  }

  private hello(peer: number, bytes: Uint8Array): void {
    const h = decodeFrame(bytes).header;
    if (h.type !== 'hello' || h.from !== peer || h.to !== this.host.id) {
      throw new ProtocolError(`the first message is ${JSON.stringify(h).slice(0, 120)}; expected a hello from member ${peer} to member ${this.host.id}`);
    }
  }

  private receive(peer: number, bytes: Uint8Array): void {
    const plan = this.host.plan();
    const max = this.host.maxMessageBytes();
    if (bytes.byteLength > max) throw new ProtocolError(`a message of ${bytes.byteLength.toLocaleString('en')} bytes; the session accepts at most ${max.toLocaleString('en')}`);
    const f = decodeFrame(bytes);
    if (!plan) throw new ProtocolError('a message before this replica was admitted');
    stampSender(bytes, peer);
    const msg = checkRelayed(f.header, f.payload.byteLength, plan);
    if (msg.type !== 'grad') throw new ProtocolError(`a "${msg.type}" message; peer links carry only the ring's "grad" messages`);
    this.host.deliver(peer, msg, f.payload);
  }

  /** Stop using the link with `peer`: say why in the log and to the hub, which relays the pair from now on. */
  private refuse(peer: number, p: Peer, why: string): void {
    p.failed = true;
    p.link?.close();
    p.connection.close();
    this.host.log(`${why}: its ring messages go through the coordinator from now on`);
    if (this.members.has(peer)) this.host.toHub({ type: 'link', peer, reason: why });
  }

  private forget(id: number, p: Peer): void {
    p.failed = true;
    p.link?.close();
    p.connection.close();
    this.peers.delete(id);
  }
}

function pairKey(a: number, b: number): string {
  return a < b ? `${a}-${b}` : `${b}-${a}`;
}
