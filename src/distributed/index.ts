// wg.distributed: data-parallel training across Workers, tabs, machines and Node processes.

export {
  DataParallel,
  type DataParallelOptions,
  type DataParallelStepResult,
  type Membership,
  type PeerInfo,
  type ShardFn,
  type ShardPlace,
  type SyncOptions,
} from './data-parallel';
export { DistributedError, ProtocolError } from './errors';
export { Hub, CloseCode, type HubOptions, type HubLink, type HubConnection } from './hub';
export { MessagePortTransport, servePort } from './message-port';
export {
  BroadcastChannelTransport,
  serveBroadcastChannel,
  type BroadcastChannelServer,
  type BroadcastChannelTransportOptions,
  type ServeBroadcastChannelOptions,
} from './broadcast-channel';
export { WebSocketTransport } from './websocket-transport';
export type { Transport } from './transport';
export type { FramePipe, PeerConnector, PeerConnection, PeerLink, SignalBody } from './peer-link';
export { WebRTCConnector, type WebRTCOptions } from './webrtc';
export type { WireFormat } from './wire';
export type { Reduction } from './sums';
export { shardRange } from './shard';
export { modelTransport, modelConnector, describeModel, type NetworkModel, type NetworkStats } from './network-model';
