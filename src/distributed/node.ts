// wg.distributed in Node: everything of the browser entry, plus the coordinator server, and the
// `ws` package as the WebSocket client where Node has none built in (before Node 22).

import { DistributedError } from './errors';
import { setWebSocketProvider, type WebSocketClass } from './websocket-provider';

export * from './index';
export { startCoordinator, type Coordinator, type CoordinatorOptions } from './coordinator-server';

setWebSocketProvider(async () => {
  const builtIn = (globalThis as { WebSocket?: WebSocketClass }).WebSocket;
  if (builtIn) return builtIn;
  try {
    return (await import('ws')).WebSocket as unknown as WebSocketClass;
  } catch (e) {
    throw new DistributedError(`joining a session from Node ${process.version} needs the ws package (npm install ws): ${(e as Error).message}`);
  }
});
