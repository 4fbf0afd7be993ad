// Live charts of the training loss (every step, and a smoothed line) and the test accuracy (the
// quick checks on a subset, and the full test set at epoch ends), drawn with uPlot. New points
// are collected as they arrive and drawn once per animation frame.

import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { HELD_OUT_DIGITS, QUICK_EVAL_DIGITS, type EvalPoint, type History } from './protocol';

/** Weight of the past in the smoothed loss (an exponential moving average, as TensorBoard's slider). */
const SMOOTHING = 0.9;
const HEIGHT = 200;

export class TrainingCharts {
  private readonly loss: uPlot;
  private readonly accuracy: uPlot;
  private lossData: [number[], number[], number[]] = [[], [], []];
  /** x: step; then accuracy in % on the subset and on the whole test set (null where not measured). */
  private accData: [number[], (number | null)[], (number | null)[]] = [[], [], []];
  private smoothed = 0;
  private drawScheduled = false;

  constructor(
    private readonly lossBox: HTMLElement,
    private readonly accuracyBox: HTMLElement,
  ) {
    const axes = (y: string): uPlot.Axis[] => [
      { label: 'step' },
      // Short tick labels (a diverging loss reaches millions), and room for the longest one.
      { label: y, values: (_u, ticks) => ticks.map(compact), size: (_u, values) => 36 + 7 * Math.max(2, ...(values ?? []).map((v) => v.length)) },
    ];
    this.loss = new uPlot(
      {
        width: lossBox.clientWidth || 320,
        height: HEIGHT,
        scales: { x: { time: false } },
        axes: axes('loss'),
        series: [
          { label: 'step' },
          { label: 'loss', stroke: 'rgba(37, 99, 235, 0.35)', width: 1, points: { show: false } },
          { label: 'smoothed', stroke: '#1d4ed8', width: 2, points: { show: false } },
        ],
        legend: { live: false },
      },
      this.lossData,
      lossBox,
    );
    this.accuracy = new uPlot(
      {
        width: accuracyBox.clientWidth || 320,
        height: HEIGHT,
        scales: { x: { time: false }, y: { range: [0, 100] } },
        axes: axes('test accuracy %'),
        series: [
          { label: 'step' },
          { label: `${QUICK_EVAL_DIGITS} digits`, stroke: '#b45309', width: 2, spanGaps: true, points: { show: true, size: 5 } },
          { label: `all ${HELD_OUT_DIGITS.toLocaleString('en')}`, stroke: '#047857', width: 2, spanGaps: true, points: { show: true, size: 8 } },
        ],
        legend: { live: false },
      },
      this.accData,
      accuracyBox,
    );
    // Follow the width of the page (phones, resized windows).
    new ResizeObserver(() => {
      this.loss.setSize({ width: lossBox.clientWidth, height: HEIGHT });
      this.accuracy.setSize({ width: accuracyBox.clientWidth, height: HEIGHT });
    }).observe(lossBox);
  }

  /** Start over from a history (empty for a new model). */
  reset(history: History): void {
    this.lossData = [[], [], []];
    this.accData = [[], [], []];
    this.smoothed = 0;
    for (const [step, loss] of history.loss) this.addLoss(step, loss);
    for (const p of history.evals) this.addEval(p);
    this.schedule();
  }

  addLoss(step: number, loss: number): void {
    const [xs, raw, smooth] = this.lossData;
    if (!Number.isFinite(loss)) return;
    this.smoothed = SMOOTHING * this.smoothed + (1 - SMOOTHING) * loss;
    xs.push(step);
    raw.push(loss);
    smooth.push(this.smoothed / (1 - SMOOTHING ** xs.length)); // bias-corrected, so it starts at the first loss
    this.schedule();
  }

  addEval(p: EvalPoint): void {
    const [xs, quick, all] = this.accData;
    const series = p.digits === QUICK_EVAL_DIGITS ? quick : all;
    // Both checks can land on the same step (an epoch end); uPlot wants one x per step.
    if (xs[xs.length - 1] !== p.step) {
      xs.push(p.step);
      quick.push(null);
      all.push(null);
    }
    series[series.length - 1] = p.accuracy * 100;
    this.schedule();
  }

  private schedule(): void {
    if (this.drawScheduled) return;
    this.drawScheduled = true;
    requestAnimationFrame(() => {
      this.drawScheduled = false;
      this.loss.setData(this.lossData);
      this.accuracy.setData(this.accData);
      this.lossBox.dataset.points = String(this.lossData[0].length);
      this.accuracyBox.dataset.points = String(this.accData[0].length);
    });
  }
}

const compactFormat = new Intl.NumberFormat('en', { notation: 'compact', maximumSignificantDigits: 3 });
function compact(v: number): string {
  return compactFormat.format(v);
}
