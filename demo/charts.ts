// Live charts of the training loss (every step, and a smoothed line) and the test accuracy (the
// quick checks on a subset, and the full test set at epoch ends), drawn with uPlot. New points
// are collected as they arrive and drawn once per animation frame. The two charts sit one above
// the other with the same step axis: the same range of steps, and plot areas that start at the
// same x (y axes of one width), so a point of one lines up with the same step in the other.

import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { HELD_OUT_DIGITS, QUICK_EVAL_DIGITS, type EvalPoint, type History } from './protocol';

/** Weight of the past in the smoothed loss (an exponential moving average, as TensorBoard's slider). */
export const SMOOTHING = 0.9;
export const HEIGHT = 200;
/** Distances between step ticks: whole steps only. */
export const STEP_TICKS = [1, 2, 5].flatMap((m) => [1, 10, 100, 1000, 10_000, 100_000, 1_000_000].map((p) => m * p)).sort((a, b) => a - b);
/** Width of both y axes: room for the axis label and five-character ticks ("2.25", "100", "1.2M"). */
export const Y_AXIS_WIDTH = 72;

export class TrainingCharts {
  private readonly loss: uPlot;
  private readonly accuracy: uPlot;
  private lossData: [number[], number[], number[]] = [[], [], []];
  /** x: step; then accuracy in % on the subset and on the whole test set (null where not measured). */
  private accData: [number[], (number | null)[], (number | null)[]] = [[], [], []];
  private smoothed = 0;
  private drawScheduled = false;
  /** The steps both charts show: from the first point of either to the last (null: no points yet). */
  private steps: [number, number] | null = null;

  constructor(
    private readonly lossBox: HTMLElement,
    private readonly accuracyBox: HTMLElement,
  ) {
    const axes = (y: string): uPlot.Axis[] => [
      { label: 'step', incrs: STEP_TICKS },
      // Short tick labels (a diverging loss reaches millions).
      { label: y, values: (_u, ticks) => ticks.map(compact), size: Y_AXIS_WIDTH },
    ];
    // The same range on both charts (nothing yet: 0–1; a single step gets some room around it).
    const steps: uPlot.Scale = {
      time: false,
      range: () => {
        const [lo, hi] = this.steps ?? [0, 1];
        return hi > lo ? [lo, hi] : [Math.max(0, lo - 1), hi + 1];
      },
    };
    this.loss = new uPlot(
      {
        width: lossBox.clientWidth || 320,
        height: HEIGHT,
        // uPlot's own range, and 0–1 before there is a loss (an axis even then, as wide as the other chart's).
        scales: { x: steps, y: { range: (_u, min, max) => (min === null || max === null ? [0, 1] : uPlot.rangeNum(min, max, 0.1, true)) } },
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
        scales: { x: steps, y: { range: [0, 100] } },
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
      const firsts = [this.lossData[0][0], this.accData[0][0]].filter((s) => s !== undefined);
      const lasts = [this.lossData[0].at(-1), this.accData[0].at(-1)].filter((s) => s !== undefined);
      this.steps = firsts.length ? [Math.min(...firsts), Math.max(...lasts)] : null;
      this.loss.setData(this.lossData);
      this.accuracy.setData(this.accData);
      // The step range each chart shows (the tests compare them).
      for (const [box, u] of [[this.lossBox, this.loss], [this.accuracyBox, this.accuracy]] as const) {
        box.dataset.steps = this.steps ? `${u.scales.x!.min}-${u.scales.x!.max}` : '';
      }
      this.lossBox.dataset.points = String(this.lossData[0].length);
      this.accuracyBox.dataset.points = String(this.accData[0].length);
    });
  }
}

const compactFormat = new Intl.NumberFormat('en', { notation: 'compact', maximumSignificantDigits: 3 });
export function compact(v: number): string {
  return compactFormat.format(v);
}
