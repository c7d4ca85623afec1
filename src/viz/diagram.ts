/**
 * Figures of the 2D Grid LSTM, drawn by code (pure functions → standalone SVG strings):
 *
 * - {@link gridBlockDiagram}: one block — the time LSTM, then the prioritised depth LSTM that
 *   reads the new time hidden state (paper §3.2) — with every arrow named as in src/nn/model.ts;
 * - {@link gridUnrolledDiagram}: a grid of blocks unrolled over time (3 layers × 4 steps by
 *   default): time pairs left to right along each layer, depth pairs bottom to top, the embedding
 *   of each input character entering below with c_d = 0 (§4.3), the decoder and softmax on top
 *   predicting the next character.
 *
 * Like the loss curves (src/viz/plot.ts), the figures are transparent with colours for light and
 * dark pages (`prefers-color-scheme`), or opaque in one theme, and deterministic. Text never
 * overlaps text: every label's box is laid out by hand and test/diagram.test.ts checks it.
 */
import { FONT_FAMILY, type PlotTheme, themeStyle, xmlText } from './plot.js';

/** Options of both diagrams. */
export interface DiagramOptions {
  /** Default 'auto' (transparent; light colours, dark ones under `prefers-color-scheme: dark`). */
  theme?: PlotTheme;
}

export interface UnrolledDiagramOptions extends DiagramOptions {
  /** Layers (rows), 1 to 6. Default 3. */
  layers?: number;
  /**
   * The text: its first `steps` characters are the inputs, each next character the target
   * predicted above it; the number of steps is its length − 1 (1 to 8). Default "Fellow"
   * truncated to 4 steps: inputs F e l l, targets e l l o.
   */
  text?: string;
}

/** Colours of a diagram for one theme. */
interface DiagramPalette {
  fg: string;
  muted: string;
  boxFill: string;
  boxStroke: string;
  time: string;
  depth: string;
  bg: string;
}

const LIGHT: DiagramPalette = { fg: '#24292f', muted: '#57606a', boxFill: '#f6f8fa', boxStroke: '#8c959f', time: '#0072b2', depth: '#c4520a', bg: '#ffffff' };
const DARK: DiagramPalette = { fg: '#e6edf3', muted: '#9da7b1', boxFill: '#161b22', boxStroke: '#6e7681', time: '#58b4f0', depth: '#ff8a4c', bg: '#0d1117' };

/** Monospace for the names the code uses (h_t, time.t2h, ...); unquoted, as FONT_FAMILY. */
const MONO = 'ui-monospace, SFMono-Regular, Menlo, Consolas, Liberation Mono, DejaVu Sans Mono, monospace';

type Ink = 'time' | 'depth' | 'plain';

/** Collects the elements of a figure; colours are written as attributes and as classes for the dark override. */
class Figure {
  private readonly els: string[] = [];
  constructor(
    readonly width: number,
    readonly height: number,
    readonly theme: PlotTheme,
  ) {}

  get pal(): DiagramPalette {
    return this.theme === 'dark' ? DARK : LIGHT;
  }

  private stroke(ink: Ink): [string, string] {
    const p = this.pal;
    return ink === 'time' ? ['tl', p.time] : ink === 'depth' ? ['dl', p.depth] : ['nl', p.muted];
  }

  private fill(ink: Ink): [string, string] {
    const p = this.pal;
    return ink === 'time' ? ['tf', p.time] : ink === 'depth' ? ['df', p.depth] : ['nf', p.muted];
  }

  /** A rounded box. `dashed` for the outline of a whole block. */
  box(x: number, y: number, w: number, h: number, o: { dashed?: boolean; r?: number; filled?: boolean } = {}): void {
    const p = this.pal;
    const fill = o.filled === false ? 'fill="none"' : `class="bx" fill="${p.boxFill}"`;
    const cls = o.filled === false ? ' class="bo"' : '';
    this.els.push(
      `<rect x="${x}" y="${y}" width="${w}" height="${h}" rx="${o.r ?? 8}" ${fill}${cls} stroke="${p.boxStroke}" stroke-width="${o.dashed ? 1.25 : 1.5}"${o.dashed ? ' stroke-dasharray="6 4"' : ''}/>`,
    );
  }

  /** A horizontal line across a box. */
  rule(x1: number, x2: number, y: number): void {
    this.els.push(`<line x1="${x1}" y1="${y}" x2="${x2}" y2="${y}" class="bo" stroke="${this.pal.boxStroke}" stroke-width="1"/>`);
  }

  /**
   * An arrow along a polyline of axis-parallel segments, with an arrowhead at the end. `hopAt`:
   * points on horizontal segments where the line jumps over a crossing line (a small arc).
   */
  arrow(points: [number, number][], ink: Ink, o: { width?: number; hopAt?: [number, number][] } = {}): void {
    const [cls, color] = this.stroke(ink);
    const [fcls, fcolor] = this.fill(ink);
    const width = o.width ?? 2;
    const head = 9;
    const [ex, ey] = points[points.length - 1];
    const [px, py] = points[points.length - 2];
    const len = Math.hypot(ex - px, ey - py);
    const ux = (ex - px) / len;
    const uy = (ey - py) / len;
    // The line stops where the arrowhead begins.
    const end: [number, number] = [ex - ux * (head - 1), ey - uy * (head - 1)];
    let d = `M${points[0][0]} ${points[0][1]}`;
    for (let i = 1; i < points.length; i++) {
      const [x0, y0] = points[i - 1];
      const [x1, y1] = i === points.length - 1 ? end : points[i];
      for (const [hx, hy] of o.hopAt ?? []) {
        if (y0 === y1 && hy === y0 && Math.min(x0, x1) < hx && hx < Math.max(x0, x1)) {
          const s = Math.sign(x1 - x0);
          d += `L${hx - 7 * s} ${hy}A7 7 0 0 ${s > 0 ? 1 : 0} ${hx + 7 * s} ${hy}`;
        }
      }
      d += `L${round(x1)} ${round(y1)}`;
    }
    this.els.push(`<path d="${d}" fill="none" class="${cls}" stroke="${color}" stroke-width="${width}" stroke-linejoin="round"/>`);
    const bx = ex - ux * head;
    const by = ey - uy * head;
    const nx = -uy * (head * 0.5);
    const ny = ux * (head * 0.5);
    this.els.push(`<polygon points="${round(ex)},${round(ey)} ${round(bx + nx)},${round(by + ny)} ${round(bx - nx)},${round(by - ny)}" class="${fcls}" fill="${fcolor}"/>`);
  }

  /** A junction dot where a line splits. */
  dot(x: number, y: number, ink: Ink): void {
    const [cls, color] = this.fill(ink);
    this.els.push(`<circle cx="${x}" cy="${y}" r="3.5" class="${cls}" fill="${color}"/>`);
  }

  /**
   * Text. `mono` for code names; `ink` colours it like an arrow; `weight` bold. Every text gets
   * data-size so that tests can check that no two labels overlap.
   */
  text(x: number, y: number, s: string, o: { anchor?: 'start' | 'middle' | 'end'; size?: number; mono?: boolean; ink?: Ink | 'fg' | 'muted'; bold?: boolean; italic?: boolean } = {}): void {
    const p = this.pal;
    const size = o.size ?? 13;
    const ink = o.ink ?? 'fg';
    const [cls, color] = ink === 'fg' ? ['fg', p.fg] : ink === 'muted' ? ['mu', p.muted] : this.fill(ink);
    const attrs = [
      `x="${x}"`,
      `y="${y}"`,
      `font-size="${size}"`,
      o.anchor && o.anchor !== 'start' ? `text-anchor="${o.anchor}"` : '',
      o.mono ? `font-family="${MONO}"` : '',
      o.bold ? 'font-weight="bold"' : '',
      o.italic ? 'font-style="italic"' : '',
      `class="${cls}"`,
      `fill="${color}"`,
      `data-mono="${o.mono ? 1 : 0}"`,
    ].filter(Boolean);
    this.els.push(`<text ${attrs.join(' ')}>${xmlText(s)}</text>`);
  }

  svg(title: string, description: string): string {
    const p = this.pal;
    const classes = (q: DiagramPalette) =>
      `.fg{fill:${q.fg}}.mu{fill:${q.muted}}.bx{fill:${q.boxFill}}.bx,.bo{stroke:${q.boxStroke}}.tl{stroke:${q.time}}.tf{fill:${q.time}}` +
      `.dl{stroke:${q.depth}}.df{fill:${q.depth}}.nl{stroke:${q.muted}}.nf{fill:${q.muted}}.bg{fill:${q.bg}}`;
    const head = [
      `<svg xmlns="http://www.w3.org/2000/svg" width="${this.width}" height="${this.height}" viewBox="0 0 ${this.width} ${this.height}" font-family="${FONT_FAMILY}" role="img">`,
      `<title>${xmlText(title)}</title>`,
      `<desc>${xmlText(description)}</desc>`,
      themeStyle(this.theme, (dark) => classes(dark ? DARK : LIGHT)),
    ];
    if (this.theme !== 'auto') head.push(`<rect class="bg" x="0" y="0" width="${this.width}" height="${this.height}" fill="${p.bg}"/>`);
    return [...head, ...this.els, '</svg>'].join('\n') + '\n';
  }
}

function round(v: number): number {
  const r = Math.round(v * 100) / 100;
  return r === 0 ? 0 : r;
}


/**
 * One 2D Grid LSTM block (layer l, step t), as src/nn/model.ts computes it: the time LSTM
 * `a = time.t2h(h_t) + time.d2h(h_d)` updates (c_t, h_t) → (c_t', h_t'), which go right to step
 * t+1; then the depth LSTM, prioritised (§3.2), reads the new h_t':
 * `a = depth.t2h(h_t') + depth.d2h(h_d)` updates (c_d, h_d) → (c_d', h_d'), which go up to layer
 * l+1. The depth weights are shared by all layers (§3.5). A standalone SVG document.
 */
export function gridBlockDiagram(options: DiagramOptions = {}): string {
  const f = new Figure(900, 640, options.theme ?? 'auto');

  // The block's outline, and its two LSTMs.
  const B = { x: 190, y: 118, w: 556, h: 400 };
  f.box(B.x, B.y, B.w, B.h, { dashed: true, filled: false, r: 14 });
  f.text(B.x + 14, B.y + 22, 'grid block: layer l, step t', { size: 13, ink: 'muted', italic: true });

  const D = { x: 226, y: 160, w: 400, h: 116 }; // depth LSTM (upper)
  const T = { x: 226, y: 352, w: 300, h: 108 }; // time LSTM (lower)
  f.box(D.x, D.y, D.w, D.h);
  f.box(T.x, T.y, T.w, T.h);
  f.text(D.x + 14, D.y + 24, '2. depth LSTM (prioritised, §3.2)', { bold: true, ink: 'depth' });
  f.text(D.x + 14, D.y + 50, "a = depth.t2h(h_t') + depth.d2h(h_d)", { mono: true, size: 13 });
  f.text(D.x + 14, D.y + 72, "(c_d', h_d') = LSTM(a, c_d)", { mono: true, size: 13 });
  f.text(D.x + 14, D.y + 98, 'weights shared by all layers (§3.5)', { size: 12, ink: 'muted' });
  f.text(T.x + 14, T.y + 24, '1. time LSTM', { bold: true, ink: 'time' });
  f.text(T.x + 14, T.y + 50, 'a = time.t2h(h_t) + time.d2h(h_d)', { mono: true, size: 12 });
  f.text(T.x + 14, T.y + 72, "(c_t', h_t') = LSTM(a, c_t)", { mono: true, size: 12 });
  f.text(T.x + 14, T.y + 96, 'weights of this layer', { size: 12, ink: 'muted' });

  const yT = T.y + T.h / 2; // the time line's height
  const xUp = 580; // the depth input's way up, right of the time LSTM
  const label = (x: number, y: number, name: string, note: string, anchor: 'start' | 'middle' | 'end', ink: Ink) => {
    f.text(x, y, name, { mono: true, size: 14, anchor, ink, bold: true });
    if (note) f.text(x, y + 17, note, { size: 12, anchor, ink: 'muted' });
  };

  // Time state in from the left (step t−1 of this layer), out to the right (step t+1).
  f.arrow([[24, yT], [T.x, yT]], 'time', { width: 2.5 });
  label(28, yT - 30, 'h_t, c_t', 'from step t−1', 'start', 'time');
  f.arrow([[T.x + T.w, yT], [876, yT]], 'time', { width: 2.5, hopAt: [[xUp, yT]] });
  label(872, yT - 30, "h_t', c_t'", 'to step t+1', 'end', 'time');

  // Depth state in from below: h_d feeds the time LSTM (time.d2h); h_d and c_d go on up to the
  // depth LSTM (depth.d2h, and its cell).
  const yIn = 620;
  const yFork = 490;
  f.arrow([[xUp, yIn], [xUp, D.y + D.h]], 'depth', { width: 2.5 });
  f.dot(xUp, yFork, 'depth');
  f.arrow([[xUp, yFork], [T.x + 150, yFork], [T.x + 150, T.y + T.h]], 'depth');
  f.text(T.x + 160, yFork - 8, 'h_d → time.d2h', { mono: true, size: 12, ink: 'depth' });
  f.text(xUp + 10, 322, 'h_d → depth.d2h', { mono: true, size: 12, ink: 'depth' });
  f.text(xUp + 10, 339, 'c_d → cell', { mono: true, size: 12, ink: 'depth' });
  label(xUp - 14, 556, 'h_d, c_d', 'from layer l−1', 'end', 'depth');
  f.text(xUp - 14, 592, 'layer 0: h_d = embedding[x_t], c_d = 0 (§4.3)', { size: 12, ink: 'muted', anchor: 'end' });

  // The new time hidden state goes up into the depth LSTM (depth.t2h): the priority of §3.2.
  const xHt = T.x + 70;
  f.arrow([[xHt, T.y], [xHt, D.y + D.h]], 'time');
  f.text(xHt + 10, 322, "h_t' → depth.t2h", { mono: true, size: 12, ink: 'time' });

  // Depth state out at the top (layer l+1; above the top layer, the decoder).
  const xOut = D.x + 200;
  f.arrow([[xOut, D.y], [xOut, 22]], 'depth', { width: 2.5 });
  label(xOut + 12, 46, "h_d', c_d'", 'to layer l+1 (the top layer: h_d\' to the decoder)', 'start', 'depth');

  return f.svg(
    'One 2D Grid LSTM block',
    "Block of layer l at step t. Time LSTM: a = time.t2h(h_t) + time.d2h(h_d); (c_t', h_t') = LSTM(a, c_t), to step t+1. " +
      "Depth LSTM, prioritised: a = depth.t2h(h_t') + depth.d2h(h_d); (c_d', h_d') = LSTM(a, c_d), to layer l+1. Depth weights tied across layers.",
  );
}

/** A character as a label: visible forms for space and line breaks. */
function showChar(c: string): string {
  return c === ' ' ? '␣' : c === '\n' ? '↵' : c === '\t' ? '⇥' : c;
}

/**
 * A grid of blocks unrolled over time: `layers` rows (layer 0 at the bottom, counted from 0 as in the parameter names), one column per
 * input character. Time pairs (h_t, c_t) run left to right along each layer, carried in from the
 * previous batch and out to the next; depth pairs (h_d, c_d) run up each column, entering layer
 * 1 as h_d = embedding[x_t] with c_d = 0 (§4.3); the top h_d goes to the decoder and softmax,
 * which predict the next character. A standalone SVG document.
 */
export function gridUnrolledDiagram(options: UnrolledDiagramOptions = {}): string {
  const L = Math.round(options.layers ?? 3);
  if (!(L >= 1 && L <= 6)) throw new RangeError(`layers must be 1 to 6, got ${options.layers}`);
  const chars = [...(options.text ?? 'Fellow'.slice(0, 5))];
  const S = chars.length - 1;
  if (!(S >= 1 && S <= 8)) throw new RangeError(`text must have 2 to 9 characters (inputs and the next character of each), got ${chars.length}`);

  const colW = 200; // column pitch
  const bw = 120; // block width
  const bh = 66; // block height
  const rowH = 150; // row pitch
  const left = 170; // x of the first block
  const topArea = 176; // decoder, softmax and targets above the blocks
  const bottomArea = 236; // the embedding, the inputs and the key below the blocks
  const W = Math.max(left + (S - 1) * colW + bw + 150, 720); // wide enough for the key
  const H = topArea + (L - 1) * rowH + bh + bottomArea;
  const f = new Figure(W, H, options.theme ?? 'auto');
  const bx = (t: number) => left + t * colW; // block t's left edge (t from 0)
  const by = (l: number) => topArea + (L - 1 - l) * rowH; // block l's top edge (l from 0, bottom row L−1... )
  const cx = (t: number) => bx(t) + bw / 2;

  // Blocks: the depth LSTM in the upper half, the time LSTM in the lower one.
  for (let l = 0; l < L; l++) {
    for (let t = 0; t < S; t++) {
      f.box(bx(t), by(l), bw, bh);
      f.rule(bx(t), bx(t) + bw, by(l) + bh / 2);
      f.text(cx(t), by(l) + 22, 'depth LSTM', { anchor: 'middle', size: 12, ink: 'depth' });
      f.text(cx(t), by(l) + bh / 2 + 22, 'time LSTM', { anchor: 'middle', size: 12, ink: 'time' });
    }
    // Row label on the left.
    f.text(16, by(l) + bh / 2 - 4, `layer ${l}`, { bold: true, size: 14 });
  }

  // Time arrows: into the first column (the state carried from the previous batch), between
  // columns, out of the last (to the next batch).
  const yTime = (l: number) => by(l) + (bh * 3) / 4;
  for (let l = 0; l < L; l++) {
    const y = yTime(l);
    f.arrow([[94, y], [bx(0), y]], 'time');
    for (let t = 0; t + 1 < S; t++) {
      f.arrow([[bx(t) + bw, y], [bx(t + 1), y]], 'time');
      f.text((bx(t) + bw + bx(t + 1)) / 2, y - 8, 'h_t, c_t', { anchor: 'middle', mono: true, size: 12, ink: 'time' });
    }
    f.arrow([[bx(S - 1) + bw, y], [W - 24, y]], 'time');
  }
  f.text(16, yTime(0) + 22, 'h_t, c_t', { mono: true, size: 12, ink: 'time' });
  f.text(16, yTime(0) + 38, 'from the last batch', { size: 11, ink: 'muted' });
  f.text(W - 16, yTime(0) + 22, 'to the next batch', { size: 11, ink: 'muted', anchor: 'end' });

  // Depth arrows between layers.
  for (let l = 0; l + 1 < L; l++) {
    for (let t = 0; t < S; t++) {
      f.arrow([[cx(t), by(l)], [cx(t), by(l + 1) + bh]], 'depth');
      f.text(cx(t) + 8, (by(l) + by(l + 1) + bh) / 2 + 4, 'h_d, c_d', { mono: true, size: 12, ink: 'depth' });
    }
  }

  // Below: the input characters and their embeddings, entering layer 0 with c_d = 0.
  const yEmb = by(0) + bh + 62; // embedding box top
  const embH = 30;
  const yChar = yEmb + embH + 44; // input character box top
  for (let t = 0; t < S; t++) {
    f.box(cx(t) - 50, yEmb, 100, embH, { r: 6 });
    f.text(cx(t), yEmb + 20, 'embedding', { anchor: 'middle', size: 12, mono: true });
    f.arrow([[cx(t), yEmb], [cx(t), by(0) + bh]], 'depth');
    f.text(cx(t) + 8, by(0) + bh + 26, 'h_d = embedding[x_t]', { mono: true, size: 11, ink: 'depth' });
    f.text(cx(t) + 8, by(0) + bh + 41, 'c_d = 0', { mono: true, size: 11, ink: 'depth' });
    f.box(cx(t) - 16, yChar, 32, 30, { r: 6 });
    f.text(cx(t), yChar + 21, showChar(chars[t]), { anchor: 'middle', size: 16, mono: true, bold: true });
    f.arrow([[cx(t), yChar], [cx(t), yEmb + embH]], 'plain', { width: 1.5 });
    f.text(cx(t) - 24, yChar + 21, `x_${t + 1}`, { anchor: 'end', size: 12, mono: true, ink: 'muted' });
  }
  f.text(16, yChar + 21, 'input', { size: 12, ink: 'muted' });

  // The key: which weights each kind of arrow goes through.
  f.text(16, H - 30, 'depth pairs h_d, c_d: depth LSTM weights depth.t2h, depth.d2h, one pair for all layers (tied, §3.5)', { size: 12, ink: 'depth' });
  f.text(16, H - 12, 'time pairs h_t, c_t: time LSTM weights time.t2h, time.d2h of each layer', { size: 12, ink: 'time' });

  // Above: the top h_d to the decoder and softmax, which predict the next character.
  const yTop = by(L - 1);
  const yDec = yTop - 66; // decoder box top
  const decH = 30;
  const yTarget = yDec - 66; // predicted character box top
  for (let t = 0; t < S; t++) {
    f.arrow([[cx(t), yTop], [cx(t), yDec + decH]], 'depth');
    f.text(cx(t) + 8, yTop - 14, 'h_d', { mono: true, size: 12, ink: 'depth' });
    f.box(cx(t) - 64, yDec, 128, decH, { r: 6 });
    f.text(cx(t), yDec + 20, 'decoder, softmax', { anchor: 'middle', size: 12, mono: false });
    f.arrow([[cx(t), yDec], [cx(t), yTarget + 30]], 'plain', { width: 1.5 });
    f.box(cx(t) - 16, yTarget, 32, 30, { r: 6 });
    f.text(cx(t), yTarget + 21, showChar(chars[t + 1]), { anchor: 'middle', size: 16, mono: true, bold: true });
    f.text(cx(t) - 24, yTarget + 21, `x_${t + 2}`, { anchor: 'end', size: 12, mono: true, ink: 'muted' });
  }
  f.text(16, yTarget + 21, 'next character', { size: 12, ink: 'muted' });

  return f.svg(
    `A ${L}-layer 2D Grid LSTM unrolled over ${S} steps`,
    `Inputs ${chars.slice(0, S).join('')} predict ${chars.slice(1).join('')}. Time pairs (h_t, c_t) run left to right along each layer; depth pairs (h_d, c_d) run up each column, ` +
      'entering layer 0 as h_d = embedding[x_t], c_d = 0; the top h_d goes to the decoder and softmax.',
  );
}
