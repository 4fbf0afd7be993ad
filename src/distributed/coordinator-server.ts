// The coordinator: a Hub behind a WebSocket server (the `ws` package), for replicas in browsers
// and Node processes anywhere on the network. One coordinator hosts one session, joined at
//   ws://HOST:PORT/SESSION?token=TOKEN
// The session id and token are random unless given. A connection with another path or token is
// refused with a close code and a reason before it can send anything. It listens on the loopback
// interface unless told otherwise (host: '0.0.0.0' opens it to the network).

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import { networkInterfaces } from 'node:os';
import type { Duplex } from 'node:stream';
import { DistributedError } from './errors';
import { encodeFrame } from './frame';
import { CloseCode, Hub, type HubOptions } from './hub';
import type { Closed } from './messages';

export interface CoordinatorOptions extends HubOptions {
  /** The interface to listen on (default 127.0.0.1: this machine only). */
  host?: string;
  /** The port (default 0: any free one). */
  port?: number;
  /** The session id in the join URL (default: random). */
  session?: string;
  /** The secret replicas must present (default: 128 random bits). */
  token?: string;
}

export interface Coordinator {
  /** The join URL, token included: give it only to replicas you trust. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly session: string;
  readonly hub: Hub;
  close(): Promise<void>;
}

export async function startCoordinator(opts: CoordinatorOptions = {}): Promise<Coordinator> {
  let ws: typeof import('ws');
  try {
    ws = await import('ws');
  } catch (e) {
    throw new DistributedError(`the coordinator needs the ws package (npm install ws): ${(e as Error).message}`);
  }
  const host = opts.host ?? '127.0.0.1';
  const session = opts.session ?? randomBytes(6).toString('hex');
  const token = opts.token ?? randomBytes(16).toString('base64url');
  if (!/^[\w-]+$/.test(session)) throw new DistributedError(`startCoordinator: session "${session}" may only use letters, digits, _ and -`);
  const log = opts.log ?? (() => undefined);
  const hub = new Hub(opts);
  const wss = new ws.WebSocketServer({ noServer: true, maxPayload: hub.maxMessageBytes * 4 });
  const http = createServer((_req, res) => {
    res.writeHead(426, { 'content-type': 'text/plain; charset=utf-8' });
    res.end('A webgrad coordinator: replicas join over WebSocket at ws://HOST:PORT/SESSION?token=…\n');
  });

  http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    wss.handleUpgrade(req, socket, head, (conn) => {
      conn.on('error', () => undefined); // followed by 'close'
      const url = new URL(req.url ?? '/', 'ws://coordinator');
      const refusal =
        url.pathname !== `/${session}`
          ? { code: CloseCode.notFound, reason: `there is no session "${url.pathname.slice(1)}" at this coordinator` }
          : !sameSecret(url.searchParams.get('token') ?? '', token)
            ? { code: CloseCode.unauthorized, reason: `wrong token for session ${session}` }
            : null;
      if (refusal) {
        log(`refused a connection from ${req.socket.remoteAddress}: ${refusal.reason}`);
        const closed: Closed = { type: 'closed', ...refusal };
        conn.send(encodeFrame(closed));
        conn.close(refusal.code, refusal.reason);
        return;
      }
      const member = hub.connect({ send: (frame) => conn.send(frame), close: (code, reason) => conn.close(code, reason) });
      conn.on('message', (data: Buffer, isBinary: boolean) => {
        member.receive(isBinary ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(0));
      });
      conn.on('close', () => member.closed());
    });
  });

  await new Promise<void>((resolve, reject) => {
    http.once('error', (e) => reject(new DistributedError(`the coordinator could not listen on ${host}:${opts.port ?? 0}: ${e.message}`)));
    http.listen(opts.port ?? 0, host, resolve);
  });
  const port = (http.address() as { port: number }).port;
  return {
    url: `ws://${urlHost(host)}:${port}/${session}?token=${encodeURIComponent(token)}`,
    host,
    port,
    session,
    hub,
    close: async () => {
      hub.close();
      for (const c of wss.clients) c.terminate();
      wss.close();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}

/** Compare secrets in constant time (hashed first, so lengths do not leak either). */
function sameSecret(given: string, expected: string): boolean {
  const h = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(h(given), h(expected));
}

/** The host to put in the join URL: a listening-on-everything address becomes one others can reach. */
function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') {
    const external = Object.values(networkInterfaces())
      .flat()
      .find((a) => a && a.family === 'IPv4' && !a.internal);
    return external?.address ?? 'localhost';
  }
  return host.includes(':') ? `[${host}]` : host;
}
