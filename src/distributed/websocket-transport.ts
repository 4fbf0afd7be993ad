// A connection to a coordinator over WebSocket: `new WebSocketTransport('ws://host:port/SESSION?token=…')`.
// Works in pages, Workers and Node. Frames are binary WebSocket messages.

import { DistributedError } from './errors';
import type { Transport } from './transport';
import { getWebSocket } from './websocket-provider';

/** What a close code means, for codes the coordinator does not explain in a message of its own. */
const CLOSE_MEANINGS: Record<number, string> = {
  1000: 'closed normally',
  1001: 'the coordinator went away',
  1006: 'the connection was lost',
  1009: 'a message was larger than the coordinator accepts',
};

export class WebSocketTransport implements Transport {
  readonly description: string;
  onFrame: ((frame: Uint8Array) => void) | null = null;
  onClose: ((why: string) => void) | null = null;
  private socket: WebSocket | null = null;

  constructor(private readonly url: string) {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw new DistributedError(`WebSocketTransport: "${url}" is not a URL; expected ws://HOST:PORT/SESSION?token=…`);
    }
    if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new DistributedError(`WebSocketTransport: "${u.protocol}" URL; expected ws:// or wss://`);
    this.description = `the coordinator at ${u.protocol}//${u.host}${u.pathname}`;
  }

  async open(): Promise<void> {
    const WS = await getWebSocket();
    await new Promise<void>((resolve, reject) => {
      let opened = false;
      const ws = new WS(this.url);
      ws.binaryType = 'arraybuffer';
      this.socket = ws;
      ws.onopen = () => {
        opened = true;
        resolve();
      };
      ws.onmessage = (ev: MessageEvent) => {
        if (ev.data instanceof ArrayBuffer) this.onFrame?.(new Uint8Array(ev.data));
        else this.onFrame?.(new Uint8Array(0)); // text: malformed, DataParallel says so
      };
      ws.onclose = (ev: CloseEvent) => {
        const why = `${ev.reason || CLOSE_MEANINGS[ev.code] || 'closed'} (code ${ev.code})`;
        if (opened) this.onClose?.(why);
        else reject(new DistributedError(`could not connect to ${this.description}: ${why}`));
      };
      // A failed connection also closes (with 1006); the close handler reports it.
      ws.onerror = () => undefined;
    });
  }

  send(frame: Uint8Array): void {
    if (this.socket?.readyState === 1) this.socket.send(frame);
  }

  close(): void {
    this.socket?.close(1000);
  }
}
