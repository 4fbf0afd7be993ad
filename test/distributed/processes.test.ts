// Data parallelism across Node processes: a coordinator in this process, replicas as child
// processes (test/distributed/replica.ts) joining it over WebSocket on loopback and running the
// ring over WebRTC data channels between them. Their parameters must be bit-identical to each
// other and equal (1e-5) to one device training on the same global batches — also when a replica
// is killed mid-step, or hangs until the coordinator times it out.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { decodeParams, singleDevice } from './fixture';
import { gpu, relErr, wg } from '../helpers';

const repo = resolve(import.meta.dirname, '../..');
const STEPS = 5;
const BATCH = 96;
/** Buckets and parts small enough that the 276-parameter MLP spans several of each. */
const SESSION = { bucketBytes: 512, partBytes: 128 };

let dir: string;
const children = new Set<ChildProcess>();
const coordinators: wg.distributed.Coordinator[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'webgrad-dp-'));
  await gpu();
});

afterEach(async () => {
  for (const c of children) c.kill('SIGKILL');
  children.clear();
  for (const c of coordinators.splice(0)) await c.close();
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * A replica still running after this long is killed, so that a stuck session fails with what each
 * replica printed instead of a bare test timeout.
 */
const DEADLINE_MS = 100_000;

interface Run {
  name: string;
  /** Killed at DEADLINE_MS. */
  overdue: boolean;
  code: number | null;
  signal: NodeJS.Signals | null;
  steps: (wg.distributed.DataParallelStepResult & { seed: number })[];
  stderr: string;
  params: Float32Array[] | null;
}

function replica(name: string, url: string, extra: string[] = []): Promise<Run> {
  const out = join(dir, `${name}.json`);
  const child = spawn(
    process.execPath,
    ['scripts/run.mjs', 'test/distributed/replica.ts', '--url', url, '--steps', String(STEPS), '--batch', String(BATCH), '--name', name, '--out', out, ...extra],
    { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.add(child);
  let overdue = false;
  const deadline = setTimeout(() => {
    overdue = true;
    // Ask it for its protocol state first (test/distributed/replica.ts prints it to stderr).
    child.kill('SIGUSR2');
    setTimeout(() => child.kill('SIGKILL'), 1000);
  }, DEADLINE_MS);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  return new Promise((done) =>
    child.on('exit', (code, signal) => {
      clearTimeout(deadline);
      children.delete(child);
      let params: Float32Array[] | null = null;
      try {
        params = decodeParams(JSON.parse(readFileSync(out, 'utf8')));
      } catch {
        // no parameters written: the replica did not finish
      }
      const steps = stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
      done({ name, overdue, code, signal, steps, stderr, params });
    }),
  );
}

async function coordinator(opts: wg.distributed.CoordinatorOptions = {}): Promise<wg.distributed.Coordinator> {
  const c = await wg.distributed.startCoordinator({ ...SESSION, ...opts });
  coordinators.push(c);
  return c;
}

/** What a replica did, for failure messages. */
function describeRun(r: Run): string {
  const steps = r.steps.map((s) => `step ${s.step} (world ${s.worldSize}, attempt ${s.attempts})`).join(', ');
  return `${r.name}: ${r.overdue ? `still running after ${DEADLINE_MS / 1000} s, killed; ` : ''}exit ${r.code ?? r.signal}; ${steps || 'no steps'}; stderr:\n${r.stderr.slice(-6000)}`;
}

/** Fail with every replica's story, and the hub's view, if any of them had to be killed at the deadline. */
function expectNoneOverdue(runs: Run[], hub: wg.distributed.Hub): void {
  const story = `${runs.map(describeRun).join('\n')}\nhub: members ${JSON.stringify(hub.memberList)}`;
  expect(runs.filter((r) => r.overdue).map((r) => r.name), story).toEqual([]);
}

function expectBitIdentical(a: Float32Array[], b: Float32Array[], what: string): void {
  a.forEach((t, i) => expect(Buffer.from(t.buffer).equals(Buffer.from(b[i]!.buffer)), `${what}: parameter ${i}`).toBe(true));
}

/** Compare with one device starting from rank 0's weights (whichever replica joined first). */
async function expectReference(runs: Run[], params: Float32Array[], what: string): Promise<void> {
  const seed = runs.find((r) => r.steps[0]?.rank === 0)!.steps[0]!.seed;
  const reference = await singleDevice(wg, STEPS, BATCH, seed);
  reference.forEach((p, i) => expect(relErr(params[i]!, p), `${what}: parameter ${i} vs one device`).toBeLessThan(1e-5));
}

describe('replicas in separate Node processes', { timeout: DEADLINE_MS + 60_000 }, () => {
  it('three processes train 5 steps of global batch 96: bit-identical parameters, equal to one device', async () => {
    const c = await coordinator();
    // Different initial weights: rank 0's are sent to the others before the first step.
    // Once their WebRTC links are open: then the ring runs over them.
    const runs = await Promise.all(['a', 'b', 'c'].map((n, i) => replica(n, c.url, ['--seed', String(i + 1), '--min-replicas', '3', '--wait-links'])));
    expectNoneOverdue(runs, c.hub);
    for (const r of runs) {
      expect(r.code, describeRun(r)).toBe(0);
      expect(r.steps.map((s) => [s.step, s.worldSize, s.globalBatch, s.attempts])).toEqual(
        Array.from({ length: STEPS }, (_, i) => [i, 3, BATCH, 1]),
      );
    }
    expect(runs.map((r) => r.steps[0]!.samples)).toEqual([32, 32, 32]);
    expect(runs.flatMap((r) => r.steps.map((s) => s.route))).toEqual(new Array(3 * STEPS).fill('peer'));
    expect(new Set(runs.map((r) => r.steps[0]!.rank))).toEqual(new Set([0, 1, 2]));
    expectBitIdentical(runs[1]!.params!, runs[0]!.params!, 'b vs a');
    expectBitIdentical(runs[2]!.params!, runs[0]!.params!, 'c vs a');
    await expectReference(runs, runs[0]!.params!, 'a');
  });

  it('one killed mid-step, another timed out while hung: the survivors re-run those steps and match one device', async () => {
    // The timeout leaves room for a loaded machine (a replica compiling pipelines sends no
    // heartbeats); the hung replica stays silent for well over it.
    const c = await coordinator({ timeoutMs: 8000 });
    // Whoever joins first leads, and the leader's --min-replicas holds the first step for all four.
    const [a, b, killed, hung] = await Promise.all([
      replica('a', c.url, ['--min-replicas', '4']),
      replica('b', c.url, ['--seed', '2', '--min-replicas', '4']),
      // SIGKILL right after its first gradient message of step 1: the others hold part of its data.
      replica('killed', c.url, ['--seed', '3', '--min-replicas', '4', '--die-at-step', '1']),
      // Blocks its event loop at step 3 (no heartbeats) for longer than the coordinator waits.
      replica('hung', c.url, ['--seed', '4', '--min-replicas', '4', '--hang-at-step', '3', '--hang-ms', '16000']),
    ]);
    const runs = [a, b, killed, hung];
    expectNoneOverdue(runs, c.hub);
    const story = runs.map(describeRun).join('\n');
    expect(killed.signal, story).toBe('SIGKILL');
    expect(killed.steps.map((s) => s.step), story).toEqual([0]);
    expect(hung.code, story).toBe(3);
    expect(hung.stderr).toMatch(/DistributedError: .*timed out: nothing heard from it for 8\.0 s/);
    expect(hung.steps.map((s) => s.step), story).toEqual([0, 1, 2]);
    for (const r of [a, b]) {
      expect(r.code, story).toBe(0);
      expect(r.steps.map((s) => [s.step, s.worldSize, s.attempts]), story).toEqual([
        [0, 4, 1],
        [1, 3, 2],
        [2, 3, 1],
        [3, 2, 2],
        [4, 2, 1],
      ]);
      expect(r.steps.every((s) => s.globalBatch === BATCH)).toBe(true);
    }
    expectBitIdentical(b.params!, a.params!, 'b vs a');
    // Each step was applied once, on the whole global batch, whoever computed it.
    await expectReference(runs, a.params!, 'a');
  });
});
