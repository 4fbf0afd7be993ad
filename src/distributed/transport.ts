// What DataParallel needs from a connection to the hub: send frames, receive frames, learn when it
// ends. WebSocketTransport (a coordinator anywhere on the network), MessagePortTransport (a hub in
// the same page, Worker or Node process) and BroadcastChannelTransport implement it.

import type { FramePipe } from './peer-link';

export interface Transport extends FramePipe {
  /** Where it connects, for messages (never includes the session token). */
  readonly description: string;
  /** Connect; resolves once frames can be sent. */
  open(): Promise<void>;
}
