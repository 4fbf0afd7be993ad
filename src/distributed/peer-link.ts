// Direct links between two replicas, for the ring's messages: what DataParallel needs from one
// (send frames, receive frames, learn that it closed) and from whatever makes them (a
// PeerConnector: WebRTC data channels in browsers and in Node, webrtc.ts). Connecting takes
// signals (offers, answers, ICE candidates) that the hub relays between the two members it
// introduced; the connector never talks to the network by itself otherwise.

import type { Signal } from './messages';

/** Frames both ways over an ordered, reliable connection: a transport to the hub or a peer link. */
export interface FramePipe {
  send(frame: Uint8Array): void;
  close(): void;
  /** Set by the user of the pipe: a frame arrived. */
  onFrame: ((frame: Uint8Array) => void) | null;
  /** Set by the user of the pipe: it closed, and why (as far as it knows). */
  onClose: ((why: string) => void) | null;
}

/** An open link to one peer. */
export type PeerLink = FramePipe;

/** A signal as the connector sees it (the peer links add the type and the try, the hub the sender). */
export type SignalBody = Omit<Signal, 'type' | 'generation'>;

/** One connection being made to a peer. */
export interface PeerConnection {
  /** A signal from the peer, relayed by the hub. */
  signal(s: SignalBody): void;
  /** Resolves with the open link; rejects with the reason it cannot connect. */
  readonly opened: Promise<PeerLink>;
  /** Give up (or close the open link). */
  close(): void;
}

/** Makes peer links. The member with the lower id offers; the other answers. */
export interface PeerConnector {
  /** What kind of links, for log lines ("WebRTC data channels"). */
  readonly description: string;
  /** Start a connection to member `peer`; `send` passes this side's signals to the hub. */
  connect(peer: number, offerer: boolean, send: (s: SignalBody) => void): PeerConnection;
}
