// The page of bench/cpu-time.ts: each CPU engine in its own Worker (as on the benchmark page),
// runs timed by the CPU time of the browser's processes (window.cpuMs, from the driver).
import { workerEngine } from './harness/worker-engine';
import { selectWorks, workData, type WasmEngineName } from './harness/workloads';

export interface CpuTimeOptions {
  engines: WasmEngineName[];
  works: string[];
  /** Runs per turn. */
  reps: number;
}

const ROUNDS = 3;

async function runCpuTime(o: CpuTimeOptions): Promise<string[]> {
  const cpuMs = (window as unknown as { cpuMs(): Promise<number> }).cpuMs;
  const engines = await Promise.all(o.engines.map((e) => workerEngine(e)));
  const lines: string[] = [];
  for (const work of selectWorks(false, o.works)) {
    const runs = await Promise.all(engines.map((e) => e.prepare(work, workData(work))));
    for (const r of runs) for (let i = 0; i < 2; i++) await r.run();
    const cpu = runs.map(() => 0);
    const wall = runs.map(() => 0);
    for (let round = 0; round < ROUNDS; round++) {
      for (let e = 0; e < runs.length; e++) {
        const c0 = await cpuMs();
        const t0 = performance.now();
        for (let i = 0; i < o.reps; i++) await runs[e]!.run();
        wall[e]! += performance.now() - t0;
        cpu[e]! += (await cpuMs()) - c0;
      }
    }
    const n = ROUNDS * o.reps;
    const cells = o.engines.map((e, i) => `${e} ${(cpu[i]! / n).toFixed(1)} ms CPU (wall ${(wall[i]! / n).toFixed(1)} ms)`);
    const ratios = o.engines.slice(1).map((e, i) => `${o.engines[0]} uses ${(cpu[i + 1]! / cpu[0]!).toFixed(2)}× less CPU than ${e}`);
    lines.push(`${work.name}: ${cells.join(', ')}${ratios.length ? `; ${ratios.join(', ')}` : ''}`);
    runs.forEach((r) => r.dispose());
  }
  return lines;
}

(window as unknown as { runCpuTime: typeof runCpuTime }).runCpuTime = runCpuTime;
