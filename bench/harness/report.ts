// Turning results into words: the comparison table (webgrad's speed-up over each peer: on WebGPU,
// webgrad against TF.js and jax-js; on the CPU, webgrad's CPU backend against jax-js's and TF.js's
// wasm backends and against webgrad on the WebGPU adapter), the cross-engine agreement check, and
// one line per progress event.

import type { BenchReport, Progress, Result } from './results';
import { ENGINES, type EngineName } from './workloads';

export const ENGINE_LABELS: Record<EngineName, string> = {
  webgrad: 'webgrad',
  'tfjs-webgpu': 'TF.js 4.22 webgpu',
  'jax-js-webgpu': 'jax-js 0.1.25 webgpu',
  'webgrad-wasm': 'webgrad wasm',
  'jax-js-wasm': 'jax-js 0.1.25 wasm',
  'tfjs-wasm': 'TF.js 4.22 wasm',
};

/** The speed-ups reported, [ours, peer]: each of webgrad's backends against the peers on its kind of device, and the CPU backend against webgrad on the WebGPU adapter. */
export const COMPARISONS: readonly (readonly [EngineName, EngineName])[] = [
  ['webgrad', 'tfjs-webgpu'],
  ['webgrad', 'jax-js-webgpu'],
  ['webgrad-wasm', 'jax-js-wasm'],
  ['webgrad-wasm', 'tfjs-wasm'],
  ['webgrad-wasm', 'webgrad'],
];

/** The comparisons whose two engines both appear in the results. */
export function comparisonsOf(results: readonly Result[]): (readonly [EngineName, EngineName])[] {
  const engines = enginesOf(results);
  return COMPARISONS.filter(([a, b]) => engines.includes(a) && engines.includes(b));
}

export function comparisonLabel([ours, peer]: readonly [EngineName, EngineName]): string {
  return `${ENGINE_LABELS[ours]} vs ${ENGINE_LABELS[peer]}`;
}

export interface Row {
  work: string;
  shape: string;
  byEngine: Partial<Record<EngineName, Result>>;
}

/** One row per work item, in the order the work ran. */
export function rows(results: readonly Result[]): Row[] {
  const out = new Map<string, Row>();
  for (const r of results) {
    const row = out.get(r.work) ?? { work: r.work, shape: r.shape, byEngine: {} };
    row.byEngine[r.engine] = r;
    out.set(r.work, row);
  }
  return [...out.values()];
}

/** The engines that appear in the results, in the canonical order. */
export function enginesOf(results: readonly Result[]): EngineName[] {
  return ENGINES.filter((e) => results.some((r) => r.engine === e));
}

/** How many times faster `engine` (webgrad by default) is than `peer` on this row: peer time ÷ its time. */
export function speedup(row: Row, peer: EngineName, engine: EngineName = 'webgrad'): number | undefined {
  const ours = row.byEngine[engine]?.median_ms;
  const theirs = row.byEngine[peer]?.median_ms;
  return ours !== undefined && theirs !== undefined ? theirs / ours : undefined;
}

export function formatTime(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : ms >= 10 ? `${ms.toFixed(1)} ms` : `${ms.toFixed(2)} ms`;
}

export function formatCell(r: Result | undefined): string {
  if (!r) return '—';
  if (r.error !== undefined) return `error: ${r.error}`;
  const time = formatTime(r.median_ms!);
  return r.gflops !== undefined ? `${time} (${r.gflops.toFixed(2)} GFLOP/s)` : time;
}

export function formatSpeedup(x: number | undefined): string {
  return x === undefined ? '—' : `${x >= 10 ? x.toFixed(1) : x.toFixed(2)}×`;
}

/**
 * Work items where an engine's check value (first loss, or first element of the result)
 * differs from webgrad's (or, without it, webgrad wasm's) by more than float32 reordering
 * explains: then they did not do the same math, and the times do not compare.
 */
export function disagreements(results: readonly Result[], tolerance = 1e-3): string[] {
  const out: string[] = [];
  for (const row of rows(results)) {
    const reference = (['webgrad', 'webgrad-wasm'] as const).find((e) => row.byEngine[e]?.check !== undefined);
    if (!reference) continue;
    const ours = row.byEngine[reference]!.check!;
    for (const [engine, r] of Object.entries(row.byEngine)) {
      if (engine === reference || r?.check === undefined) continue;
      if (Math.abs(r.check - ours) > tolerance * Math.max(1, Math.abs(ours), Math.abs(r.check))) {
        out.push(`${row.work}: ${engine} got ${r.check}, ${reference} ${ours}`);
      }
    }
  }
  return out;
}

export function markdown(report: BenchReport): string {
  const engines = enginesOf(report.results);
  const pairs = comparisonsOf(report.results);
  const a = report.adapter;
  const lines = [
    '# webgrad benchmark',
    '',
    `- adapter: ${a ? `${[a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(' ')}${a.isFallbackAdapter ? ' (fallback adapter)' : ''}` : 'unknown'}`,
    `- browser: ${report.browser}`,
    `- date: ${report.date}`,
    `- median of ${report.runs} timed run${report.runs === 1 ? '' : 's'} after ${report.warmup} warm-up${report.warmup === 1 ? '' : 's'}; ` +
      `${engines.length > 1 ? 'the engines take turns run by run, each round starting with the next; ' : ''}each run ends with a read-back that waits for all its work` +
      (engines.some((e) => e.endsWith('-wasm')) ? '; the CPU (wasm) engines run in Web Workers of their own and time their runs there' : ''),
  ];
  for (const [e, about] of Object.entries(report.engines ?? {})) lines.push(`- ${ENGINE_LABELS[e as EngineName]}: ${about}`);
  if (report.load) {
    const f = (l: number[]) => l.map((x) => x.toFixed(2)).join(' ');
    lines.push(`- load average (1, 5, 15 min) on ${report.load.cores} cores: before ${f(report.load.before)}, after ${f(report.load.after)}`);
  }
  lines.push(
    '',
    `| work | shape | ${engines.map((e) => ENGINE_LABELS[e]).join(' | ')}${pairs.map((c) => ` | ${comparisonLabel(c)}`).join('')} |`,
    `|${' --- |'.repeat(2 + engines.length + pairs.length)}`,
  );
  for (const row of rows(report.results)) {
    const cells = engines.map((e) => formatCell(row.byEngine[e]).replace(/\|/g, '\\|').replace(/\n/g, ' '));
    const ratios = pairs.map(([ours, peer]) => formatSpeedup(speedup(row, peer, ours)));
    lines.push(`| ${row.work} | ${row.shape} | ${[...cells, ...ratios].join(' | ')} |`);
  }
  if (engines.length > 1) {
    const bad = disagreements(report.results);
    lines.push(
      '',
      'Speed-up "A vs B": B\'s median time ÷ A\'s (above 1: A is faster).',
      '',
      bad.length
        ? `**The engines disagree** (not the same math; these times do not compare):\n${bad.map((b) => `- ${b}`).join('\n')}`
        : 'Every engine\'s first loss (or first result element) agrees with webgrad\'s: they did the same math.',
    );
  }
  return lines.join('\n') + '\n';
}

export function formatProgress(p: Progress): string {
  switch (p.type) {
    case 'engine':
      return p.error ? `${p.engine}: could not start: ${p.error}` : `${p.engine}: started in ${formatTime(p.ms)}${p.about ? ` (${p.about})` : ''}`;
    case 'run':
      return `  ${p.work} ${p.engine} ${p.warmup ? 'warm-up' : 'run'} ${p.index}/${p.of}: ${formatTime(p.ms)}`;
    case 'result':
      return `[${p.done}/${p.total}] ${p.result.work} ${p.result.engine}: ${formatCell(p.result)}`;
  }
}
