// wg.distributed in Node: everything of the browser entry, plus the coordinator server, the `ws`
// package as the WebSocket client where Node has none built in (before Node 22), and the
// `node-datachannel` package (libdatachannel: WebRTC data channels, prebuilt per platform) for the
// peer links between replicas.

import { DistributedError } from './errors';
import { setRTCPeerConnectionProvider } from './webrtc';
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

setRTCPeerConnectionProvider(async () => {
  const builtIn = (globalThis as { RTCPeerConnection?: typeof RTCPeerConnection }).RTCPeerConnection;
  if (builtIn) return builtIn;
  try {
    return (await import('node-datachannel/polyfill')).RTCPeerConnection as unknown as typeof RTCPeerConnection;
  } catch (e) {
    throw new DistributedError(`peer links from Node ${process.version} need the node-datachannel package (npm install node-datachannel): ${(e as Error).message}`);
  }
});
