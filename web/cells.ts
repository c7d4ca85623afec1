/**
 * The cell/gate view (the `viz` report's, live): a short text with every character's background
 * coloured by one unit's value after reading it, and the same unit at every layer as a heatmap
 * (rows: layers, top layer first; columns: positions) — for the grid, the depth LSTM's rows show
 * what travels up through the layers at each step. Colours as in the report: gates (in [0, 1])
 * white → green, the rest (in [−1, 1], or c scaled by its largest |value|) blue – white – red.
 */
import type { TraceReply } from './protocol.js';

export interface Selection {
  layer: number;
  lstm: 'time' | 'depth';
  kind: string;
  unit: number;
}

export const KIND_LABEL: Record<string, string> = {
  i: 'input gate i',
  f: 'forget gate f',
  o: 'output gate o',
  g: 'candidate g',
  c: 'cell c',
  tc: 'tanh(c)',
  h: 'hidden h',
  z: 'update gate z',
  r: 'reset gate r',
  n: 'candidate n',
};
const GATES = new Set(['i', 'f', 'o', 'z', 'r']);

/** [r, g, b] for t: a gate's value in [0, 1], else a value scaled to [−1, 1]. */
export function colour(t: number, gate: boolean): [number, number, number] {
  const mix = (a: number[], b: number[], u: number) => [0, 1, 2].map((k) => Math.round(a[k] + (b[k] - a[k]) * u)) as [number, number, number];
  if (!Number.isFinite(t)) return [200, 200, 200];
  if (gate) return mix([255, 255, 255], [0, 109, 44], Math.max(0, Math.min(1, t)));
  return t < 0 ? mix([255, 255, 255], [33, 102, 172], Math.min(1, -t)) : mix([255, 255, 255], [178, 24, 43], Math.min(1, t));
}

/** The unit's n values at one layer (null when that cell has no such kind). */
export function unitValues(tr: TraceReply, s: Selection, layer = s.layer): Float32Array | null {
  const l = tr.layers[layer];
  const cell = s.lstm === 'depth' ? l?.depth : l?.time;
  const a = cell?.[s.kind];
  if (!a) return null;
  const n = tr.chars.length;
  const N = tr.rnnSize;
  const out = new Float32Array(n);
  for (let p = 0; p < n; p++) out[p] = a[p * N + s.unit];
  return out;
}

/** The value's scale: 1 for gates and bounded values, the largest |value| over the layers for c. */
function scaleOf(tr: TraceReply, s: Selection): number {
  if (s.kind !== 'c') return 1;
  let m = 0;
  for (let l = 0; l < tr.layers.length; l++) for (const v of unitValues(tr, s, l) ?? []) m = Math.max(m, Math.abs(v));
  return m || 1;
}

/** Draws the coloured text into `host` (one span per character, focusable with the keyboard). */
export function drawText(host: HTMLElement, tr: TraceReply, s: Selection, onFocus: (p: number) => void): void {
  const v = unitValues(tr, s);
  const gate = GATES.has(s.kind);
  const scale = scaleOf(tr, s);
  const spans: HTMLElement[] = [];
  tr.chars.forEach((ch, p) => {
    const span = document.createElement('span');
    span.textContent = ch === '\n' ? '↵' : ch;
    if (v) {
      const [r, g, b] = colour(v[p] / (gate ? 1 : scale), gate);
      span.style.backgroundColor = `rgb(${r},${g},${b})`;
      span.dataset.value = v[p].toFixed(4);
    }
    span.tabIndex = p === 0 ? 0 : -1;
    span.addEventListener('mouseenter', () => onFocus(p));
    span.addEventListener('focus', () => onFocus(p));
    span.addEventListener('keydown', (e) => {
      const to = e.key === 'ArrowRight' ? p + 1 : e.key === 'ArrowLeft' ? p - 1 : -1;
      if (to >= 0 && to < spans.length) {
        e.preventDefault();
        spans[p].tabIndex = -1;
        spans[to].tabIndex = 0;
        spans[to].focus();
      }
    });
    spans.push(span);
  });
  host.replaceChildren(...spans);
  host.dataset.selection = `${s.layer}/${s.lstm}/${s.kind}/${s.unit}`;
}

/** Draws the unit at every layer: rows top layer first, one column per position. */
export function drawHeatmap(canvas: HTMLCanvasElement, tr: TraceReply, s: Selection): void {
  const L = tr.layers.length;
  const n = tr.chars.length;
  const rowH = Math.max(14, Math.min(30, Math.floor(160 / L)));
  canvas.width = Math.max(200, n * 4);
  canvas.height = L * rowH;
  const ctx = canvas.getContext('2d')!;
  const gate = GATES.has(s.kind);
  const scale = scaleOf(tr, s);
  const w = canvas.width / n;
  for (let l = 0; l < L; l++) {
    const v = unitValues(tr, s, l);
    const y = (L - 1 - l) * rowH;
    for (let p = 0; p < n; p++) {
      const [r, g, b] = v ? colour(v[p] / (gate ? 1 : scale), gate) : [230, 230, 230];
      ctx.fillStyle = `rgb(${r},${g},${b})`;
      ctx.fillRect(Math.floor(p * w), y, Math.ceil(w), rowH - 1);
    }
  }
}
