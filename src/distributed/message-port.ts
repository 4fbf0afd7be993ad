// Sessions inside one browser (a page and its Workers) or one Node process: the hub runs next to
// whoever creates the MessageChannels, and each replica talks to it over a MessagePort.
//
//   const hub = new wg.distributed.Hub();
//   const { port1, port2 } = new MessageChannel();
//   wg.distributed.servePort(hub, port1);
//   worker.postMessage({ port: port2 }, [port2]);  // the Worker: new MessagePortTransport(port)
//
// A port has no close code: the hub sends its "closed" message before closing, and a replica
// that disappears without a word is dropped by the heartbeat timeout.

import type { Hub } from './hub';
import type { Transport } from './transport';

/** Connect the hub end of a MessageChannel. */
export function servePort(hub: Hub, port: MessagePort): void {
  const conn = hub.connect({
    send: (frame) => port.postMessage(frame),
    close: () => port.close(),
  });
  port.onmessage = (ev: MessageEvent) => conn.receive(asBytes(ev.data));
  // Node's ports (and recent browsers') say when the other end closed.
  port.addEventListener('close', () => conn.closed());
  port.start();
}

export class MessagePortTransport implements Transport {
  readonly description = 'the hub behind a MessagePort';
  onFrame: ((frame: Uint8Array) => void) | null = null;
  onClose: ((why: string) => void) | null = null;

  constructor(private readonly port: MessagePort) {}

  async open(): Promise<void> {
    this.port.onmessage = (ev: MessageEvent) => this.onFrame?.(asBytes(ev.data));
    this.port.addEventListener('close', () => this.onClose?.('the port was closed'));
    this.port.start();
  }

  send(frame: Uint8Array): void {
    // Frames are built for sending: hand the buffer over instead of copying it.
    const whole = frame.byteOffset === 0 && frame.byteLength === frame.buffer.byteLength && frame.buffer instanceof ArrayBuffer;
    this.port.postMessage(frame, whole ? [frame.buffer as ArrayBuffer] : []);
  }

  close(): void {
    this.port.close();
  }
}

function asBytes(data: unknown): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return new Uint8Array(0); // not a frame: the receiver reports it as malformed
}
