// The benchmark page: runs the chosen engines on the chosen work, shows a table, relative-speed
// bars and the JSON. `window.runBench(options)` is what the Playwright driver (bench/run.ts)
// calls; a person can use the form, or open bench.html?quick&engines=webgrad&work=mlp-step&run.

import type { Engine } from './harness/engine';
import { runSuite } from './harness/suite';
import { workerEngine } from './harness/worker-engine';
import { comparisonLabel, comparisonsOf, ENGINE_LABELS, enginesOf, formatCell, formatProgress, formatSpeedup, formatTime, rows, speedup } from './harness/report';
import type { AdapterDescription, BenchReport, Progress, Result } from './harness/results';
import { ENGINES, selectEngines, selectWorks, workloads, type EngineName } from './harness/workloads';

export interface PageOptions {
  quick?: boolean;
  engines?: string[];
  works?: string[];
}

declare global {
  interface Window {
    runBench(opts?: PageOptions): Promise<BenchReport>;
    /** webgrad's per-kernel profile of each work item (the driver's --profile). */
    profileBench(opts?: PageOptions): Promise<import('./harness/profile').WorkProfile[]>;
    /** Set by the driver (page.exposeFunction) to follow the run. */
    benchProgress?: (p: Progress) => void;
  }
}

// Each engine's module (and its library) is loaded only when that engine runs.
const LOADERS: Record<EngineName, () => Promise<Engine>> = {
  webgrad: async () => (await import('./harness/webgrad')).createEngine('webgpu'),
  'tfjs-webgpu': async () => (await import('./harness/tfjs')).createEngine(),
  'jax-js-webgpu': async () => (await import('./harness/jax')).createEngine(),
  // The CPU engines, each in a Worker of its own (bench/harness/worker-engine.ts).
  'webgrad-wasm': () => workerEngine('webgrad-wasm'),
  'jax-js-wasm': () => workerEngine('jax-js-wasm'),
  'tfjs-wasm': () => workerEngine('tfjs-wasm'),
};

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
let running = false;

async function runBench(opts: PageOptions = {}): Promise<BenchReport> {
  if (running) throw new Error('a benchmark is already running in this page');
  running = true;
  $<HTMLButtonElement>('run').disabled = true;
  try {
    const quick = !!opts.quick;
    const works = selectWorks(quick, opts.works);
    const engines = selectEngines(opts.engines);
    const warmup = quick ? 1 : 2;
    const runs = quick ? 1 : 5;
    const adapter = await describeAdapter();
    $('adapter').textContent = adapter ? `Adapter: ${adapterText(adapter)}` : 'No WebGPU adapter in this browser.';
    $('log').textContent = '';
    const results: Result[] = [];
    const about: Partial<Record<EngineName, string>> = {};
    const started = performance.now();
    await runSuite(
      engines.map((name) => ({ name, load: LOADERS[name] })),
      works,
      {
        warmup,
        runs,
        // Quick runs check that everything runs; their times mean nothing, so no pauses.
        settleMs: quick ? 0 : undefined,
        onProgress: (p) => {
          log(formatProgress(p));
          window.benchProgress?.(p);
          if (p.type === 'engine' && p.about) about[p.engine] = p.about;
          if (p.type === 'result') {
            results.push(p.result);
            render(results);
            $('status').textContent = `${p.done}/${p.total} done, ${formatTime(performance.now() - started)}`;
          }
        },
      },
    );
    const report: BenchReport = { adapter, browser: navigator.userAgent, date: new Date().toISOString(), warmup, runs, engines: about, results };
    $('json').textContent = JSON.stringify(report, null, 2);
    console.log(JSON.stringify(report));
    return report;
  } finally {
    running = false;
    $<HTMLButtonElement>('run').disabled = false;
  }
}

async function describeAdapter(): Promise<AdapterDescription | null> {
  const adapter = await navigator.gpu?.requestAdapter();
  if (!adapter) return null;
  const i = adapter.info;
  return { vendor: i.vendor, architecture: i.architecture, device: i.device, description: i.description, isFallbackAdapter: i.isFallbackAdapter };
}

function adapterText(a: AdapterDescription): string {
  return `${[a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(' ')}${a.isFallbackAdapter ? ' (fallback adapter)' : ''}`;
}

function log(line: string): void {
  const el = $('log');
  el.textContent += `${line}\n`;
  el.scrollTop = el.scrollHeight;
}

function render(results: Result[]): void {
  const engines = enginesOf(results);
  const pairs = comparisonsOf(results);
  const table = $<HTMLTableElement>('table');
  table.replaceChildren();
  const head = table.createTHead().insertRow();
  for (const h of ['work', 'shape', ...engines.map((e) => ENGINE_LABELS[e]), ...pairs.map((c) => `speed-up ${comparisonLabel(c)}`)]) {
    head.appendChild(document.createElement('th')).textContent = h;
  }
  const body = table.createTBody();
  const bars = $('bars');
  bars.replaceChildren();
  for (const row of rows(results)) {
    const tr = body.insertRow();
    tr.insertCell().textContent = row.work;
    tr.insertCell().textContent = row.shape;
    for (const e of engines) {
      const cell = tr.insertCell();
      cell.textContent = formatCell(row.byEngine[e]);
      cell.className = row.byEngine[e]?.error !== undefined ? 'error' : 'num';
    }
    for (const [ours, peer] of pairs) {
      const cell = tr.insertCell();
      cell.textContent = formatSpeedup(speedup(row, peer, ours));
      cell.className = 'num';
    }
    // Bars: speed relative to the fastest engine on this work item (longer is faster).
    const timed = engines.flatMap((e) => (row.byEngine[e]?.median_ms !== undefined ? [[e, row.byEngine[e]!.median_ms!] as const] : []));
    if (!timed.length) continue;
    const best = Math.min(...timed.map(([, ms]) => ms));
    bars.appendChild(document.createElement('h3')).textContent = `${row.work} (relative speed, longer is faster)`;
    for (const [e, ms] of timed) {
      bars.appendChild(document.createElement('span')).textContent = ENGINE_LABELS[e];
      const bar = bars.appendChild(document.createElement('div'));
      bar.className = `bar ${e}`;
      bar.style.width = `${Math.max(0.5, (100 * best) / ms)}%`;
      bar.textContent = formatTime(ms);
    }
  }
}

/** Options in the form, built from the known engines and work items, set from `initial`. */
function buildForm(initial: PageOptions): void {
  const checkbox = (parent: HTMLElement, name: string, value: string, label: string, checked: boolean) => {
    const l = parent.appendChild(document.createElement('label'));
    const input = l.appendChild(document.createElement('input'));
    input.type = 'checkbox';
    input.name = name;
    input.value = value;
    input.checked = checked;
    l.append(` ${label}`);
  };
  for (const e of ENGINES) checkbox($('engines'), 'engine', e, ENGINE_LABELS[e], !initial.engines || initial.engines.includes(e));
  const quick = $<HTMLInputElement>('quick');
  quick.checked = !!initial.quick;
  const fillWorks = (names?: string[]) => {
    const fs = $('works');
    fs.querySelectorAll('label').forEach((l) => l.remove());
    for (const w of workloads(quick.checked)) checkbox(fs, 'work', w.name, w.name, !names || names.includes(w.name));
  };
  fillWorks(initial.works);
  quick.addEventListener('change', () => fillWorks());
  $<HTMLFormElement>('options').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const checked = (name: string) => [...document.querySelectorAll<HTMLInputElement>(`input[name=${name}]:checked`)].map((i) => i.value);
    runBench({ quick: quick.checked, engines: checked('engine'), works: checked('work') }).catch((e) => log(String(e)));
  });
}

window.runBench = runBench;
window.profileBench = async (o = {}) => (await import('./harness/profile')).profileWorks({ quick: o.quick, works: o.works });
const params = new URLSearchParams(location.search);
const list = (k: string) => params.get(k)?.split(',').filter(Boolean);
const fromUrl: PageOptions = { quick: params.has('quick'), engines: list('engines'), works: list('work') };
buildForm(fromUrl);
if (params.has('run')) runBench(fromUrl).catch((e) => log(String(e)));
