/**
 * The Grid LSTM figures (src/viz/diagram.ts): each is a well-formed standalone SVG, names every
 * arrow as the code does, is deterministic, has a dark variant, and no two labels overlap (each
 * label's box estimated from its position, anchor, font size and length).
 */
import { DOMParser, type Element } from '@xmldom/xmldom';
import { describe, expect, it } from 'vitest';
import { gridBlockDiagram, gridUnrolledDiagram } from '../src/viz/diagram.js';

function parse(svg: string): Element {
  const doc = new DOMParser({
    onError: (level, message) => {
      throw new Error(`${level}: ${message}`);
    },
  }).parseFromString(svg, 'image/svg+xml');
  const root = doc.documentElement!;
  expect(root.tagName).toBe('svg');
  expect(root.namespaceURI).toBe('http://www.w3.org/2000/svg');
  for (const a of ['width', 'height', 'viewBox']) expect(root.getAttribute(a)).toBeTruthy();
  return root;
}

interface Label {
  text: string;
  x0: number;
  x1: number;
  y0: number;
  y1: number;
}

/** Every text's box: advance ≈ 0.61 em per character in monospace, 0.58 em in sans (bold: +8%). */
function labels(root: Element): Label[] {
  return Array.from(root.getElementsByTagName('text')).map((t) => {
    const text = t.textContent!;
    const size = Number(t.getAttribute('font-size'));
    const x = Number(t.getAttribute('x'));
    const y = Number(t.getAttribute('y'));
    const em = (t.getAttribute('data-mono') === '1' ? 0.61 : 0.58) * (t.getAttribute('font-weight') === 'bold' ? 1.08 : 1);
    const w = [...text].length * size * em;
    const anchor = t.getAttribute('text-anchor') ?? 'start';
    const x0 = anchor === 'middle' ? x - w / 2 : anchor === 'end' ? x - w : x;
    return { text, x0, x1: x0 + w, y0: y - 0.78 * size, y1: y + 0.22 * size };
  });
}

function expectNoOverlaps(root: Element): void {
  const ls = labels(root);
  const W = Number(root.getAttribute('width'));
  const H = Number(root.getAttribute('height'));
  for (const l of ls) {
    expect(l.x0, l.text).toBeGreaterThanOrEqual(0);
    expect(l.x1, l.text).toBeLessThanOrEqual(W);
    expect(l.y0, l.text).toBeGreaterThanOrEqual(0);
    expect(l.y1, l.text).toBeLessThanOrEqual(H);
  }
  for (let i = 0; i < ls.length; i++) {
    for (let j = i + 1; j < ls.length; j++) {
      const a = ls[i];
      const b = ls[j];
      const overlap = a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1;
      expect(overlap, `"${a.text}" overlaps "${b.text}"`).toBe(false);
    }
  }
}

const texts = (root: Element) => Array.from(root.getElementsByTagName('text')).map((t) => t.textContent!);

describe('gridBlockDiagram', () => {
  it('one block: the time LSTM, then the prioritised depth LSTM reading h_t\', every arrow named as in the code', () => {
    const root = parse(gridBlockDiagram());
    const all = texts(root);
    for (const label of [
      'h_t, c_t',
      "h_t', c_t'",
      'h_d, c_d',
      "h_d', c_d'",
      'h_d → time.d2h',
      'h_d → depth.d2h',
      "h_t' → depth.t2h",
      'a = time.t2h(h_t) + time.d2h(h_d)',
      "a = depth.t2h(h_t') + depth.d2h(h_d)",
      "(c_t', h_t') = LSTM(a, c_t)",
      "(c_d', h_d') = LSTM(a, c_d)",
      'layer 0: h_d = embedding[x_t], c_d = 0 (§4.3)',
    ]) {
      expect(all).toContain(label);
    }
    expect(all.some((t) => t.includes('§3.2'))).toBe(true);
    expect(all.some((t) => t.includes('§3.5'))).toBe(true);
    expectNoOverlaps(root);
  });
});

describe('gridUnrolledDiagram', () => {
  it('3 layers × 4 steps: blocks, time and depth arrows, the embedding below (c_d = 0), the decoder and the next characters above', () => {
    const root = parse(gridUnrolledDiagram());
    const all = texts(root);
    const count = (s: string) => all.filter((t) => t === s).length;
    expect(count('time LSTM')).toBe(12);
    expect(count('depth LSTM')).toBe(12);
    expect(count('h_t, c_t')).toBe(3 * 3 + 1); // between the 4 steps of each layer, and the key of the incoming state
    expect(count('h_d, c_d')).toBe(2 * 4); // between the 3 layers of each step
    expect(count('h_d = embedding[x_t]')).toBe(4);
    expect(count('c_d = 0')).toBe(4);
    expect(count('decoder, softmax')).toBe(4);
    for (const l of ['layer 0', 'layer 1', 'layer 2']) expect(all).toContain(l);
    // Inputs F e l l (x_1..x_4), targets e l l o (x_2..x_5), in column order.
    const chars = Array.from(root.getElementsByTagName('text')).filter((t) => t.getAttribute('font-size') === '16');
    expect(chars.map((t) => t.textContent).join('')).toBe('Fell' + 'ello');
    expectNoOverlaps(root);
  });

  it('other sizes and texts: a space shows as ␣, every size keeps its labels apart', () => {
    for (const [layers, text] of [
      [1, 'ab'],
      [2, 'the cat'],
      [6, 'Grid LSTM'],
    ] as const) {
      const root = parse(gridUnrolledDiagram({ layers, text }));
      const steps = [...text].length - 1;
      expect(texts(root).filter((t) => t === 'time LSTM')).toHaveLength(layers * steps);
      expectNoOverlaps(root);
    }
    expect(texts(parse(gridUnrolledDiagram({ text: 'a b' })))).toContain('␣');
    expect(() => gridUnrolledDiagram({ layers: 0 })).toThrow(RangeError);
    expect(() => gridUnrolledDiagram({ text: 'a' })).toThrow(/2 to 9 characters/);
  });
});

describe('both diagrams', () => {
  it('deterministic; transparent with a dark variant by default, opaque for an explicit theme', () => {
    for (const draw of [gridBlockDiagram, gridUnrolledDiagram]) {
      expect(draw()).toBe(draw());
      const auto = parse(draw());
      expect(auto.getElementsByTagName('style')[0].textContent).toContain('@media (prefers-color-scheme: dark)');
      expect(Array.from(auto.getElementsByTagName('rect')).filter((r) => r.getAttribute('class') === 'bg')).toHaveLength(0);
      for (const theme of ['light', 'dark'] as const) {
        const root = parse(draw({ theme }));
        expect(Array.from(root.getElementsByTagName('rect')).filter((r) => r.getAttribute('class') === 'bg')).toHaveLength(1);
        expect(root.getElementsByTagName('style')[0].textContent).not.toContain('@media');
      }
      expect(draw({ theme: 'dark' })).not.toBe(draw({ theme: 'light' }));
    }
  });
});
