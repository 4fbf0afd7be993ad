// `npm run coordinator -- [--host H] [--port P] [--timeout S] [--step-deadline S] [--max-message BYTES]`:
// start a coordinator for data-parallel training and print the join URL (with its secret token).
// It listens on 127.0.0.1 unless --host says otherwise (--host 0.0.0.0 opens it to the network).

import { parseArgs } from 'node:util';
import * as wg from '../node';

const USAGE =
  'usage: npm run coordinator -- [--host 127.0.0.1] [--port 8765] [--session ID] [--timeout SECONDS] [--step-deadline SECONDS] [--max-message BYTES]\n' +
  '  --timeout: a replica not heard from for this long is dropped (default 30)\n' +
  '  --step-deadline: the least time a step is given before whoever holds it up is dropped (default: twice the timeout;\n' +
  '                   a step may also take 4 times the slowest of the last 8)';

export async function main(argv: string[]): Promise<void> {
  const { values: a } = parseArgs({
    args: argv,
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '8765' },
      session: { type: 'string' },
      timeout: { type: 'string', default: '30' },
      'step-deadline': { type: 'string' },
      'max-message': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (a.help) {
    console.log(USAGE);
    return;
  }
  const port = Number(a.port);
  const timeout = Number(a.timeout);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be a port number, got ${a.port}\n${USAGE}`);
  if (!(timeout > 0)) throw new Error(`--timeout must be a positive number of seconds, got ${a.timeout}\n${USAGE}`);
  const stepDeadline = a['step-deadline'] === undefined ? undefined : Number(a['step-deadline']);
  if (stepDeadline !== undefined && !(stepDeadline > 0)) throw new Error(`--step-deadline must be a positive number of seconds, got ${a['step-deadline']}\n${USAGE}`);
  const c = await wg.distributed.startCoordinator({
    host: a.host,
    port,
    session: a.session,
    timeoutMs: timeout * 1000,
    minStepDeadlineMs: stepDeadline === undefined ? undefined : stepDeadline * 1000,
    maxMessageBytes: a['max-message'] ? Number(a['max-message']) : undefined,
    log: (line) => console.log(`${new Date().toLocaleTimeString()}  ${line}`),
  });
  console.log(`webgrad coordinator listening on ${c.host}:${c.port}${c.host === '127.0.0.1' ? ' (this machine only; --host 0.0.0.0 opens it to the network)' : ''}`);
  console.log('\nJoin URL (it holds the session token: share it only with replicas you trust):');
  console.log(`  ${c.url}\n`);
  console.log(`From Node:      npm run train -- --join '${c.url}'`);
  console.log(`From a browser: the demo's "Train together" panel (npm start), or open`);
  console.log(`                http://localhost:5173/demo/?join=${encodeURIComponent(c.url)}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  console.log('shutting down');
  await c.close();
}
