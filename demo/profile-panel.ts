// "Where a step's time goes": a button that asks the worker to profile one training step
// (profile-step.ts) and a table of its kernels — GPU time from timestamp queries where the
// adapter has them (on the CPU backend, each kernel's own time), calls, and bytes bound.

import { formatBytes } from '../src/runtime/limits';
import type { StepProfile } from './protocol';

export class ProfilePanel {
  constructor(
    private readonly button: HTMLButtonElement,
    private readonly table: HTMLTableElement,
    private readonly note: HTMLElement,
    request: () => void,
  ) {
    button.onclick = () => {
      button.disabled = true;
      this.note.textContent = 'Profiling the next step…';
      request();
    };
  }

  /** The button works while training or idle with a model. */
  setEnabled(enabled: boolean): void {
    this.button.disabled = !enabled;
  }

  show(p: StepProfile): void {
    const ms = (v: number) => (v >= 1 ? `${v.toFixed(2)} ms` : `${(v * 1000).toFixed(0)} µs`);
    const cpu = p.backend === 'wasm';
    this.note.textContent = cpu
      ? `Step ${p.step}: ${p.dispatches} kernel runs, ${ms(p.totalGpuMs!)} on the CPU, ${ms(p.wallMs)} in all.`
      : p.timestamps
      ? `Step ${p.step}: ${p.dispatches} kernel runs, ${ms(p.totalGpuMs!)} on the GPU, ${ms(p.wallMs)} in all. ` +
        'While profiling, each kernel runs in a compute pass of its own, so the step is a little slower than usual.'
      : `Step ${p.step}: ${p.dispatches} kernel runs in ${p.submissions} submissions, ${ms(p.wallMs)} in all. ` +
        'This GPU has no timestamp queries, so there is no time per kernel.';
    const head = this.table.createTHead();
    head.replaceChildren();
    const hr = head.insertRow();
    for (const h of ['kernel', 'runs', cpu ? 'CPU time' : 'GPU time', 'share', 'bytes bound']) {
      const th = document.createElement('th');
      th.textContent = h;
      hr.append(th);
    }
    const body = this.table.tBodies[0] ?? this.table.createTBody();
    body.replaceChildren();
    for (const k of p.kernels) {
      const share = p.totalGpuMs && k.gpuMs !== null ? `${((100 * k.gpuMs) / p.totalGpuMs).toFixed(1)}%` : '—';
      const row = body.insertRow();
      for (const v of [k.kernel, String(k.calls), k.gpuMs === null ? '—' : ms(k.gpuMs), share, formatBytes(k.bytes)]) {
        row.insertCell().textContent = v;
      }
    }
    this.table.hidden = false;
  }
}
