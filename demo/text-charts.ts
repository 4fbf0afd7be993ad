// The Text mode's live charts, drawn with uPlot as the digits' (charts.ts): the loss in nats per
// token (a character, or a GPT-2 token) — every step's training loss, its smoothed line, the
// held-out checks, and the bigram baseline as the line to beat — and the training speed in tokens
// per second. Both share the step axis: the same range of steps over plot areas that start at the
// same x.

import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { compact, HEIGHT, SMOOTHING, STEP_TICKS, Y_AXIS_WIDTH } from './charts';
import type { HeldOutPoint, TextHistory } from './text-protocol';

type Column = (number | null)[];

const SPEED_HEIGHT = 150;

export class TextCharts {
  private readonly loss: uPlot;
  private readonly speed: uPlot;
  /** x: step; training loss, smoothed, held-out (null where not measured), bigram baseline. */
  private lossData: [number[], Column, Column, Column, Column] = [[], [], [], [], []];
  private speedData: [number[], Column] = [[], []];
  private smoothed = 0;
  private smoothedCount = 0;
  private bigram: number | null = null;
  private drawScheduled = false;
  private steps: [number, number] | null = null;

  constructor(
    private readonly lossBox: HTMLElement,
    private readonly speedBox: HTMLElement,
  ) {
    const axes = (y: string): uPlot.Axis[] => [
      { label: 'step', incrs: STEP_TICKS },
      { label: y, values: (_u, ticks) => ticks.map(compact), size: Y_AXIS_WIDTH },
    ];
    const steps: uPlot.Scale = {
      time: false,
      range: () => {
        const [lo, hi] = this.steps ?? [0, 1];
        return hi > lo ? [lo, hi] : [Math.max(0, lo - 1), hi + 1];
      },
    };
    const yRange: uPlot.Scale = { range: (_u, min, max) => (min === null || max === null ? [0, 1] : uPlot.rangeNum(min, max, 0.1, true)) };
    this.loss = new uPlot(
      {
        width: lossBox.clientWidth || 320,
        height: HEIGHT,
        scales: { x: steps, y: yRange },
        axes: axes('nats / token'),
        series: [
          { label: 'step' },
          { label: 'training', stroke: 'rgba(37, 99, 235, 0.35)', width: 1, points: { show: false } },
          { label: 'smoothed', stroke: '#1d4ed8', width: 2, points: { show: false } },
          { label: 'held-out', stroke: '#047857', width: 2, spanGaps: true, points: { show: true, size: 6 } },
          { label: 'bigram', stroke: '#b45309', width: 1, dash: [6, 4], points: { show: false } },
        ],
        legend: { live: false },
      },
      this.lossData,
      lossBox,
    );
    this.speed = new uPlot(
      {
        width: speedBox.clientWidth || 320,
        height: SPEED_HEIGHT,
        scales: { x: steps, y: { range: (_u, _min, max) => [0, max === null || max <= 0 ? 1 : max * 1.1] } },
        axes: axes('tokens/s'),
        series: [{ label: 'step' }, { label: 'tokens per second', stroke: '#6d28d9', width: 2, points: { show: false } }],
        legend: { show: false },
      },
      this.speedData,
      speedBox,
    );
    new ResizeObserver(() => {
      this.loss.setSize({ width: lossBox.clientWidth, height: HEIGHT });
      this.speed.setSize({ width: speedBox.clientWidth, height: SPEED_HEIGHT });
    }).observe(lossBox);
  }

  /** Start over from a history (empty for a new model), with the text's bigram baseline. */
  reset(history: TextHistory, bigram: number): void {
    this.lossData = [[], [], [], [], []];
    this.speedData = [[], []];
    this.smoothed = 0;
    this.smoothedCount = 0;
    this.bigram = Number.isFinite(bigram) ? bigram : null;
    const heldOut = new Map(history.heldOut.map((p) => [p.step, p]));
    for (const [step, tokensPerSecond] of history.speed) this.addSpeed(step, tokensPerSecond);
    for (const [step, loss] of history.loss) {
      this.addLoss(step, loss);
      const h = heldOut.get(step);
      if (h) {
        this.addHeldOut(h);
        heldOut.delete(step);
      }
    }
    // Checks at steps with no training loss recorded (a file of the command line's) go in order after them.
    for (const p of [...heldOut.values()].sort((a, b) => a.step - b.step)) this.addHeldOut(p);
    this.schedule();
  }

  addLoss(step: number, loss: number): void {
    if (!Number.isFinite(loss) || (this.lossData[0].length && step <= this.lossData[0].at(-1)!)) return;
    const [xs, raw, smooth, held, bigram] = this.lossData;
    this.smoothed = SMOOTHING * this.smoothed + (1 - SMOOTHING) * loss;
    this.smoothedCount++;
    xs.push(step);
    raw.push(loss);
    smooth.push(this.smoothed / (1 - SMOOTHING ** this.smoothedCount)); // bias-corrected: it starts at the first loss
    held.push(null);
    bigram.push(this.bigram);
    this.schedule();
  }

  addSpeed(step: number, tokensPerSecond: number): void {
    const [xs, speed] = this.speedData;
    if (xs.length && step <= xs.at(-1)!) return;
    xs.push(step);
    speed.push(tokensPerSecond);
    this.schedule();
  }

  addHeldOut(p: HeldOutPoint): void {
    const [xs, raw, smooth, held, bigram] = this.lossData;
    if (xs.at(-1) !== p.step) {
      if (xs.length && p.step < xs.at(-1)!) return;
      xs.push(p.step);
      raw.push(null);
      smooth.push(null);
      held.push(null);
      bigram.push(this.bigram);
    }
    held[held.length - 1] = p.loss;
    this.schedule();
  }

  private schedule(): void {
    if (this.drawScheduled) return;
    this.drawScheduled = true;
    requestAnimationFrame(() => {
      this.drawScheduled = false;
      const xs = this.lossData[0];
      this.steps = xs.length ? [xs[0]!, xs.at(-1)!] : null;
      this.loss.setData(this.lossData);
      this.speed.setData(this.speedData);
      for (const [box, u] of [[this.lossBox, this.loss], [this.speedBox, this.speed]] as const) {
        box.dataset.steps = this.steps ? `${u.scales.x!.min}-${u.scales.x!.max}` : '';
      }
      // What the tests read: points of each curve.
      this.lossBox.dataset.points = String(this.lossData[1].filter((v) => v !== null).length);
      this.lossBox.dataset.heldOutPoints = String(this.lossData[3].filter((v) => v !== null).length);
      this.speedBox.dataset.points = String(this.speedData[0].length);
    });
  }
}
