// Where the WebSocket class comes from: browsers (pages and Workers) and Node 22+ have one;
// the Node entry (distributed/node.ts) falls back to the `ws` package on older Node.

import { DistributedError } from './errors';

export type WebSocketClass = typeof WebSocket;

let provider: () => Promise<WebSocketClass> = async () => {
  const ws = (globalThis as { WebSocket?: WebSocketClass }).WebSocket;
  if (!ws) throw new DistributedError('there is no WebSocket in this environment; in Node.js, import webgrad/node (it uses the ws package)');
  return ws;
};

export function setWebSocketProvider(p: () => Promise<WebSocketClass>): void {
  provider = p;
}

export function getWebSocket(): Promise<WebSocketClass> {
  return provider();
}
