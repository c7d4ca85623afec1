/**
 * The live loss chart: the library's loss-curve figure (plotLossCurves, the SVG `grid-lstm plot`
 * writes) redrawn from the losses so far, at most about four times a second.
 */
import { plotLossCurves } from 'grid-lstm';

export class LossChart {
  /** [iteration, loss] of every step and of every validation. */
  readonly train: [number, number][] = [];
  readonly val: [number, number][] = [];
  label = '';
  private pending = false;
  private lastDraw = 0;

  constructor(readonly host: HTMLElement) {
    this.draw();
  }

  clear(label = ''): void {
    this.train.length = 0;
    this.val.length = 0;
    this.label = label;
    this.request();
  }

  addSteps(steps: [number, number][]): void {
    for (const s of steps) this.train.push(s);
    this.request();
  }

  addVal(iteration: number, loss: number): void {
    this.val.push([iteration, loss]);
    this.request();
  }

  private request(): void {
    if (this.pending) return;
    this.pending = true;
    const wait = Math.max(0, 250 - (performance.now() - this.lastDraw));
    setTimeout(() => requestAnimationFrame(() => {
      this.pending = false;
      this.draw();
    }), wait);
  }

  draw(): void {
    this.lastDraw = performance.now();
    if (this.train.length === 0) {
      this.host.innerHTML = '<p class="note">The curves appear with the first steps.</p>';
      return;
    }
    const width = Math.max(320, Math.min(960, Math.round(this.host.clientWidth || 720)));
    this.host.innerHTML = plotLossCurves([{ label: this.label, train: this.train, val: this.val }], { x: 'iteration', width, height: 300, theme: 'auto' });
    this.host.dataset.steps = String(this.train.length);
    this.host.dataset.validations = String(this.val.length);
  }
}
