// The one wire format of every transport: a binary frame of
//   u32 header length (little-endian, a multiple of 4) | u32 sender id | JSON header | payload
// The sender id is written by the hub (coordinator) when it relays a frame, so a replica cannot
// pose as another; 0 is the hub itself. The header is padded with spaces so that the payload
// starts 4-byte aligned and can be read as float32 where the frame's buffer allows.

import { ProtocolError } from './errors';

/** The sender id of frames that come from the hub itself. */
export const HUB = 0;

const PREFIX = 8;
const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export interface Frame {
  from: number;
  header: Record<string, unknown> & { type: string };
  payload: Uint8Array;
}

export function encodeFrame<H extends { type: string }>(header: H, payload?: ArrayBufferView): Uint8Array {
  const json = encoder.encode(JSON.stringify(header));
  const headerBytes = Math.ceil(json.length / 4) * 4;
  const payloadBytes = payload?.byteLength ?? 0;
  const out = new Uint8Array(PREFIX + headerBytes + payloadBytes);
  new DataView(out.buffer).setUint32(0, headerBytes, true);
  out.set(json, PREFIX);
  out.fill(0x20, PREFIX + json.length, PREFIX + headerBytes);
  if (payload) out.set(new Uint8Array(payload.buffer, payload.byteOffset, payloadBytes), PREFIX + headerBytes);
  return out;
}

/** The frame in `bytes`, or a ProtocolError saying how it is malformed. */
export function decodeFrame(bytes: Uint8Array): Frame {
  if (bytes.byteLength < PREFIX) throw new ProtocolError(`a message of ${bytes.byteLength} bytes is shorter than the ${PREFIX}-byte frame prefix`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerBytes = view.getUint32(0, true);
  if (headerBytes % 4 !== 0 || PREFIX + headerBytes > bytes.byteLength) {
    throw new ProtocolError(`a message declares a ${headerBytes}-byte header, which does not fit its ${bytes.byteLength} bytes`);
  }
  let header: unknown;
  try {
    header = JSON.parse(decoder.decode(bytes.subarray(PREFIX, PREFIX + headerBytes)));
  } catch (e) {
    throw new ProtocolError(`a message header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header) || typeof (header as { type?: unknown }).type !== 'string') {
    throw new ProtocolError('a message header is not an object with a "type"');
  }
  return { from: view.getUint32(4, true), header: header as Frame['header'], payload: bytes.subarray(PREFIX + headerBytes) };
}

/** Write the sender id into a frame (the hub does this to every frame it relays). */
export function stampSender(bytes: Uint8Array, from: number): void {
  new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).setUint32(4, from, true);
}
