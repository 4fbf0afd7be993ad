// `npm run coordinator -- [--host H] [--port P] [--timeout S] [--step-deadline S] [--max-message BYTES]`:
// start a coordinator for data-parallel training and print the join URL (with its secret token).
// It listens on 127.0.0.1 unless --host says otherwise (--host 0.0.0.0 opens it to the network).
// Every value is checked before the coordinator starts; a mistake prints what is wrong and the usage.

import * as wg from '../node';
import { integerIn, numberIn, parseOptions, UsageError } from './args';

const USAGE =
  'usage: npm run coordinator -- [--host 127.0.0.1] [--port 8765] [--session ID] [--timeout SECONDS] [--step-deadline SECONDS] [--max-message BYTES]\n' +
  '  --timeout: a replica not heard from for this long is dropped (default 30; 0.1 to 86,400)\n' +
  '  --step-deadline: the least time a step is given before whoever holds it up is dropped (default: twice the timeout;\n' +
  '                   a step may also take 4 times the slowest of the last 8; 0.1 to 86,400)\n' +
  '  --max-message: the largest message accepted, in bytes (default 1,048,576; 65,536 to 268,435,456)';

const OPTIONS = {
  host: { type: 'string', default: '127.0.0.1' },
  port: { type: 'string', default: '8765' },
  session: { type: 'string' },
  timeout: { type: 'string', default: '30' },
  'step-deadline': { type: 'string' },
  'max-message': { type: 'string' },
  help: { type: 'boolean', default: false },
} as const;

/** The coordinator's options from the command line, or null for --help; a UsageError says what is wrong. */
export function coordinatorOptions(argv: readonly string[]): wg.distributed.CoordinatorOptions | null {
  const a = parseOptions(argv, OPTIONS);
  if (a.help) return null;
  const day = 86_400;
  const stepDeadline = a['step-deadline'] === undefined ? undefined : numberIn('--step-deadline', a['step-deadline'], 0.1, day, ' seconds');
  return {
    host: a.host,
    port: integerIn('--port', a.port, 0, 65535),
    session: a.session,
    timeoutMs: numberIn('--timeout', a.timeout, 0.1, day, ' seconds') * 1000,
    minStepDeadlineMs: stepDeadline === undefined ? undefined : stepDeadline * 1000,
    maxMessageBytes: a['max-message'] === undefined ? undefined : integerIn('--max-message', a['max-message'], 1 << 16, 1 << 28, ' bytes'),
  };
}

export async function main(argv: string[]): Promise<void> {
  let opts: wg.distributed.CoordinatorOptions | null;
  try {
    opts = coordinatorOptions(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`${e.message}\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  if (!opts) {
    console.log(USAGE);
    return;
  }
  const c = await wg.distributed.startCoordinator({ ...opts, log: (line) => console.log(`${new Date().toLocaleTimeString()}  ${line}`) });
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
