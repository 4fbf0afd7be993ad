// Peer links over WebRTC: one RTCPeerConnection per pair of replicas, with one ordered, reliable
// RTCDataChannel. Browsers have RTCPeerConnection built in; in Node the entry point (node.ts)
// provides the `node-datachannel` package's (libdatachannel, the same protocols: ICE, DTLS, SCTP).
//
// Who may connect: the offer and the answer travel through the hub, which relays signals only
// between members it admitted (with the session token). Each description carries the DTLS
// certificate fingerprint of its side, and the data channel's DTLS handshake must match it: a
// link is therefore with the member the hub introduced, whoever else learns the addresses.
//
// No STUN or TURN server is used unless given (`iceServers`): host candidates connect replicas on
// one machine or one network; across NATs pass a STUN server (and a TURN relay for strict NATs).

import { DistributedError } from './errors';
import type { PeerConnection, PeerConnector, PeerLink, SignalBody } from './peer-link';

type RTCPeerConnectionClass = typeof RTCPeerConnection;

let provider: () => Promise<RTCPeerConnectionClass> = async () => {
  const rtc = (globalThis as { RTCPeerConnection?: RTCPeerConnectionClass }).RTCPeerConnection;
  if (!rtc) throw new DistributedError('there is no RTCPeerConnection in this environment; in Node.js, import webgrad/node (it uses the node-datachannel package)');
  return rtc;
};

/** Where RTCPeerConnection comes from (the Node entry sets node-datachannel's). */
export function setRTCPeerConnectionProvider(p: () => Promise<RTCPeerConnectionClass>): void {
  provider = p;
}

/** RTCPeerConnection, or an error that says why there is none. */
export function getRTCPeerConnection(): Promise<RTCPeerConnectionClass> {
  return provider();
}

export interface WebRTCOptions {
  /** STUN/TURN servers for crossing NATs (default none: host candidates only). */
  iceServers?: RTCIceServer[];
  /** Give up on a link that is not open after this long (default 15 s); the pair is then relayed. */
  connectTimeoutMs?: number;
  /** The RTCPeerConnection class to use (default: the environment's). */
  RTCPeerConnection?: RTCPeerConnectionClass;
}

/** Frames queued above this many bytes wait for the data channel's buffer to drain. */
const HIGH_WATER = 4 << 20;
const LOW_WATER = 1 << 20;

export class WebRTCConnector implements PeerConnector {
  readonly description = 'WebRTC data channels';
  private readonly connectTimeoutMs: number;

  constructor(private readonly opts: WebRTCOptions = {}) {
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 15_000;
  }

  connect(peer: number, offerer: boolean, send: (s: SignalBody) => void): PeerConnection {
    let pc: RTCPeerConnection | null = null;
    let closed = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    /** Candidates that came before the remote description. */
    const early: NonNullable<SignalBody['candidate']>[] = [];
    let described = false;
    let resolveOpen: (link: PeerLink) => void = () => undefined;
    let rejectOpen: (e: Error) => void = () => undefined;
    const opened = new Promise<PeerLink>((resolve, reject) => {
      resolveOpen = resolve;
      rejectOpen = reject;
    });
    opened.catch(() => undefined); // the caller handles it

    const shut = () => {
      if (closed) return;
      closed = true;
      clearTimeout(timer);
      try {
        pc?.close();
      } catch {
        // already closed
      }
    };
    const fail = (e: Error) => {
      shut();
      rejectOpen(e);
    };
    timer = setTimeout(
      () => fail(new DistributedError(`no WebRTC link to member ${peer} within ${(this.connectTimeoutMs / 1000).toFixed(1)} s (ICE state ${pc?.iceConnectionState ?? 'new'})`)),
      this.connectTimeoutMs,
    );
    const onChannel = (ch: RTCDataChannel) => {
      ch.binaryType = 'arraybuffer';
      ch.onopen = () => {
        clearTimeout(timer);
        resolveOpen(channelLink(ch, shut));
      };
    };

    const setUp = async () => {
      const RTC = this.opts.RTCPeerConnection ?? (await getRTCPeerConnection());
      if (closed) return;
      pc = new RTC({ iceServers: this.opts.iceServers ?? [] });
      pc.onicecandidate = (e) => {
        if (e.candidate?.candidate) send({ candidate: { candidate: e.candidate.candidate, sdpMid: e.candidate.sdpMid, sdpMLineIndex: e.candidate.sdpMLineIndex } });
      };
      pc.onconnectionstatechange = () => {
        if (pc?.connectionState === 'failed') fail(new DistributedError(`the WebRTC connection to member ${peer} failed (ICE found no path)`));
      };
      if (offerer) {
        onChannel(pc.createDataChannel('webgrad', { ordered: true }));
        // Implicit setLocalDescription(): a browser makes the offer there; node-datachannel has made
        // it already (createOffer waits for it), and setting it a second time races its ICE set-up.
        const offer = await pc.createOffer();
        await pc.setLocalDescription();
        send({ description: { type: 'offer', sdp: pc.localDescription?.sdp || offer.sdp! } });
      } else {
        pc.ondatachannel = (e) => onChannel(e.channel);
      }
    };

    const apply = async (s: SignalBody): Promise<void> => {
      if (!pc || closed) return;
      if (s.description) {
        const expected = offerer ? 'answer' : 'offer';
        if (s.description.type !== expected || described) throw new DistributedError(`member ${peer} sent an unexpected ${s.description.type}`);
        described = true;
        await pc.setRemoteDescription(s.description);
        if (!offerer) {
          await pc.setLocalDescription(await pc.createAnswer());
          send({ description: { type: 'answer', sdp: pc.localDescription!.sdp } });
        }
        for (const c of early.splice(0)) await pc.addIceCandidate(c);
      } else if (s.candidate) {
        if (!described) early.push(s.candidate);
        else await pc.addIceCandidate(s.candidate);
      }
    };

    // The set-up, then each signal in the order it came, one at a time: a candidate must not race
    // the description before it.
    let chain = setUp().catch((e: Error) => fail(new DistributedError(`WebRTC to member ${peer}: ${e.message}`)));
    return {
      opened,
      signal: (s) => {
        chain = chain.then(() => apply(s)).catch((e: Error) => fail(new DistributedError(`WebRTC signal from member ${peer}: ${e.message}`)));
      },
      close: () => fail(new DistributedError('closed')),
    };
  }
}

/** A data channel as a peer link, with a send queue that respects the channel's buffer. */
function channelLink(ch: RTCDataChannel, shut: () => void): PeerLink {
  const queue: Uint8Array[] = [];
  let ended = false;
  const link: PeerLink = {
    onFrame: null,
    onClose: null,
    send(frame) {
      if (ended) return;
      if (queue.length || ch.bufferedAmount > HIGH_WATER) queue.push(frame);
      else sendNow(frame);
    },
    close() {
      end('closed by this replica');
    },
  };
  const sendNow = (frame: Uint8Array) => {
    try {
      ch.send(frame as Uint8Array<ArrayBuffer>);
    } catch (e) {
      end(`sending failed: ${(e as Error).message}`);
    }
  };
  const end = (why: string) => {
    if (ended) return;
    ended = true;
    queue.length = 0;
    try {
      ch.close();
    } catch {
      // already closed
    }
    shut();
    link.onClose?.(why);
  };
  ch.bufferedAmountLowThreshold = LOW_WATER;
  ch.onbufferedamountlow = () => {
    while (queue.length && ch.bufferedAmount <= HIGH_WATER) sendNow(queue.shift()!);
  };
  ch.onmessage = (ev: MessageEvent) => {
    if (ev.data instanceof ArrayBuffer) link.onFrame?.(new Uint8Array(ev.data));
    else link.onFrame?.(new Uint8Array(0)); // text: malformed, the receiver says so
  };
  ch.onclose = () => end('the data channel closed');
  ch.onerror = (ev) => end(`the data channel failed: ${(ev as { error?: { message?: string } }).error?.message ?? 'error'}`);
  return link;
}
