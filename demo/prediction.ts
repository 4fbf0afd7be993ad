// The model's reading of a drawing: one bar per digit, 0–9, as long as its probability.

export class ProbabilityBars {
  private readonly bars: HTMLElement[] = [];
  private readonly values: HTMLElement[] = [];

  constructor(
    private readonly list: HTMLElement,
    private readonly verdict: HTMLElement,
  ) {
    for (let d = 0; d < 10; d++) {
      const row = document.createElement('li');
      row.dataset.testid = `prob-${d}`;
      const label = document.createElement('span');
      label.className = 'digit';
      label.textContent = String(d);
      const track = document.createElement('span');
      track.className = 'track';
      const bar = document.createElement('span');
      bar.className = 'bar';
      track.append(bar);
      const value = document.createElement('span');
      value.className = 'value';
      row.append(label, track, value);
      list.append(row);
      this.bars.push(bar);
      this.values.push(value);
    }
    this.show(null);
  }

  /** Shows `probabilities` (ten numbers summing to 1), or empties the bars when null. */
  show(probabilities: readonly number[] | null): void {
    const best = probabilities ? probabilities.indexOf(Math.max(...probabilities)) : -1;
    this.bars.forEach((bar, d) => {
      const p = probabilities?.[d] ?? 0;
      bar.style.width = `${(p * 100).toFixed(1)}%`;
      const row = bar.closest('li')!;
      row.dataset.probability = String(p);
      row.classList.toggle('best', d === best);
      this.values[d]!.textContent = probabilities ? `${(p * 100).toFixed(1)}%` : '';
    });
    this.list.dataset.state = probabilities ? 'shown' : 'empty';
    this.verdict.textContent = probabilities
      ? `Looks like a ${best} (${(probabilities[best]! * 100).toFixed(0)}% sure).`
      : 'Draw a digit in the box.';
  }
}
