// What DataParallel needs from a connection to the hub: send frames, receive frames, learn when it
// ends. WebSocketTransport (a coordinator anywhere on the network) and MessagePortTransport
// (a hub in the same page, Worker or Node process) implement it.

export interface Transport {
  /** Where it connects, for messages (never includes the session token). */
  readonly description: string;
  /** Connect; resolves once frames can be sent. */
  open(): Promise<void>;
  send(frame: Uint8Array): void;
  /** End the connection. */
  close(): void;
  /** Set by DataParallel: a frame from the hub. */
  onFrame: ((frame: Uint8Array) => void) | null;
  /** Set by DataParallel: the connection ended, and why (as far as the transport knows). */
  onClose: ((why: string) => void) | null;
}
