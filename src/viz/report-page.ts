/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The report page's own script. src/viz/report.ts inlines it as `(${vizPage})()`, so it runs in
 * the browser from its source text: it must stay self-contained (no imports, no reference to
 * anything outside the function). It reads the data the HTML carries (a JSON element
 * `#viz-data` and one base64 element per block of activations, see src/viz/report-data.ts),
 * decodes a block the first time it is needed (DecompressionStream), and draws:
 * - the text, every character's background coloured by the chosen unit's value;
 * - for the character under the mouse or in focus: the top-5 predictions and the loss;
 * - the ranked units, the gate saturation scatters, and (grid_lstm) the depth × time heatmap.
 *
 * For scripts and tests it sets `window.gridLstmViz` (select, focusChar, state, timings) and
 * `document.body.dataset.ready = "1"` after the first render; `#text` carries the rendered
 * selection in `data-selection` ("layer/lstm/kind/unit").
 */
export function vizPage(): void {
  type Kind = 'i' | 'f' | 'o' | 'g' | 'c' | 'tc' | 'h' | 'z' | 'r' | 'n';
  type Lstm = 'time' | 'depth';
  interface BlockMeta { layer: number; lstm: Lstm; kind: Kind; lo: number[]; hi: number[]; levels: number; filter: 'delta' | 'none'; ref: string }
  interface Ranked { layer: number; lstm: Lstm; kind: Kind; unit: number; feature: string; r: number }
  interface Sat { layer: number; lstm: Lstm; gate: 'i' | 'f' | 'o' | 'z' | 'r'; left: number[]; right: number[] }
  interface Feature { name: string; label: string; definition: string }
  interface Data {
    model: { kind: string; numLayers: number; rnnSize: number; vocabSize: number; label: string };
    vocab: string[];
    start: number;
    text: string;
    ids: number[];
    after: number | null;
    loss: (number | null)[];
    top: number[][];
    lstms: Lstm[];
    kinds: Kind[];
    features: Feature[];
    featureValues: number[][];
    ranking: Ranked[];
    saturation: Sat[];
    blocks: BlockMeta[];
  }
  interface Selection { layer: number; lstm: Lstm; kind: Kind; unit: number }

  const t0 = performance.now();
  const byId = <T extends HTMLElement = HTMLElement>(id: string): T => document.getElementById(id) as T;
  const data = JSON.parse(byId('viz-data').textContent!) as Data;
  const N = data.model.rnnSize;
  const L = data.model.numLayers;
  const chars = Array.from(data.text);
  const n = chars.length;
  const KIND_LABEL: Record<Kind, string> = {
    i: 'input gate i', f: 'forget gate f', o: 'output gate o', g: 'candidate g', c: 'cell c', tc: 'tanh(c)', h: 'hidden h',
    z: 'update gate z', r: 'reset gate r', n: 'candidate n',
  };
  const ORDER: Kind[] = ['i', 'f', 'o', 'g', 'z', 'r', 'n', 'c', 'tc', 'h'];
  const kinds = ORDER.filter((k) => data.kinds.includes(k) || (k === 'tc' && data.kinds.includes('c')));
  const blocks = new Map(data.blocks.map((b) => [`${b.layer}/${b.lstm}/${b.kind}`, b]));
  const featureByName = new Map(data.features.map((f, i) => [f.name, i]));
  const grid = data.lstms.includes('depth');

  // ---------------------------------------------------------------------------------------------
  // Blocks: decoded on first use

  // The script runs before the blocks are parsed (they follow it in the file, the block the page
  // starts with first), so the page shows while the rest of the file is read. A block's element
  // is complete once something follows it, or once the whole document is parsed.
  function parsed(ref: string): Promise<HTMLElement> {
    return new Promise((resolve) => {
      const check = (): boolean => {
        const el = document.getElementById(ref);
        if (el && (el.nextSibling !== null || document.readyState !== 'loading')) {
          resolve(el);
          return true;
        }
        return false;
      };
      if (check()) return;
      const obs = new MutationObserver(() => {
        if (check()) obs.disconnect();
      });
      obs.observe(document.body, { childList: true });
      document.addEventListener('DOMContentLoaded', () => {
        if (check()) obs.disconnect();
      });
    });
  }
  const decoded = new Map<string, Promise<Uint8Array>>();
  async function decode(b: BlockMeta): Promise<Uint8Array> {
    const el = await parsed(b.ref);
    const bin = atob(el.textContent!.trim());
    const z = new Uint8Array(bin.length);
    for (let k = 0; k < bin.length; k++) z[k] = bin.charCodeAt(k);
    const stream = new Blob([z]).stream().pipeThrough(new DecompressionStream('deflate'));
    const q = new Uint8Array(await new Response(stream).arrayBuffer());
    if (b.filter === 'delta') {
      for (let j = 0; j < N; j++) {
        const o = j * n;
        for (let p = 1; p < n; p++) q[o + p] = (q[o + p] + q[o + p - 1]) & 255;
      }
    }
    el.textContent = ''; // the bytes are kept; the text is not needed again
    return q;
  }
  function bytesOf(b: BlockMeta): Promise<Uint8Array> {
    const key = b.ref;
    let pr = decoded.get(key);
    if (!pr) decoded.set(key, (pr = decode(b)));
    return pr;
  }
  /** The block a kind is read from (tanh(c) from c when it was not stored). */
  function blockFor(layer: number, lstm: Lstm, kind: Kind): BlockMeta | undefined {
    return blocks.get(`${layer}/${lstm}/${kind}`) ?? (kind === 'tc' ? blocks.get(`${layer}/${lstm}/c`) : undefined);
  }
  /** The n values of one unit. */
  async function unitValues(s: Selection): Promise<Float32Array> {
    const b = blockFor(s.layer, s.lstm, s.kind);
    if (!b) throw new Error(`no data for ${s.kind} of layer ${s.layer} ${s.lstm}`);
    const q = await bytesOf(b);
    const lo = b.lo[s.unit];
    const step = (b.hi[s.unit] - lo) / b.levels;
    const out = new Float32Array(n);
    const o = s.unit * n;
    const derive = s.kind === 'tc' && b.kind === 'c';
    for (let p = 0; p < n; p++) {
      const v = lo + q[o + p] * step;
      out[p] = derive ? Math.tanh(v) : v;
    }
    return out;
  }

  // ---------------------------------------------------------------------------------------------
  // Colours: 64 classes v0 … v63, their colours set per render (gates sequential, others diverging)

  const P = 64;
  const palette = document.createElement('style');
  document.head.appendChild(palette);
  function rgb(t: number, signed: boolean): [number, number, number] {
    // signed: t in [−1, 1], blue – white – red; else t in [0, 1], white – green
    const mix = (a: number[], b: number[], u: number): [number, number, number] => [0, 1, 2].map((k) => Math.round(a[k] + (b[k] - a[k]) * u)) as [number, number, number];
    if (!signed) return mix([255, 255, 255], [0, 109, 44], Math.max(0, Math.min(1, t)));
    return t < 0 ? mix([255, 255, 255], [33, 102, 172], Math.min(1, -t)) : mix([255, 255, 255], [178, 24, 43], Math.min(1, t));
  }
  const css = (c: [number, number, number]) => `rgb(${c[0]},${c[1]},${c[2]})`;
  const dark = (c: [number, number, number]) => 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2] < 140;
  let paletteKey = '';
  function setPalette(signed: boolean): void {
    const key = signed ? 's' : 'u';
    if (key === paletteKey) return;
    paletteKey = key;
    const rules: string[] = [];
    for (let k = 0; k < P; k++) {
      const t = signed ? (2 * k) / (P - 1) - 1 : k / (P - 1);
      const c = rgb(t, signed);
      rules.push(`#text span.v${k}{background:${css(c)};color:${dark(c) ? '#fff' : '#111'}}`);
    }
    palette.textContent = rules.join('\n');
    const stops = [0, 0.25, 0.5, 0.75, 1].map((u) => css(rgb(signed ? 2 * u - 1 : u, signed)));
    byId('legend-bar').style.background = `linear-gradient(to right, ${stops.join(',')})`;
  }
  const signedKind = (k: Kind) => !(k === 'i' || k === 'f' || k === 'o' || k === 'z' || k === 'r');

  // ---------------------------------------------------------------------------------------------
  // The text

  const textEl = byId('text');
  const spans: HTMLSpanElement[] = new Array(n);
  const lineStart = new Int32Array(n);
  {
    // In pieces that end at a line break (the first after 300 characters), which the browser
    // skips while they are out of view (content-visibility), so that recolouring costs little
    // more than the characters in view.
    const frag = document.createDocumentFragment();
    let piece = document.createElement('div');
    let ls = 0;
    for (let p = 0; p < n; p++) {
      const s = document.createElement('span');
      const ch = chars[p];
      lineStart[p] = ls;
      if (ch === '\n') {
        s.textContent = '↵\n';
        s.className = 'nl';
        ls = p + 1;
      } else if (ch === '\t') {
        s.textContent = '⇥\t';
      } else s.textContent = ch;
      s.dataset.p = String(p);
      s.tabIndex = -1;
      spans[p] = s;
      piece.appendChild(s);
      if ((ch === '\n' && piece.childNodes.length >= 300) || p === n - 1) {
        piece.className = 'piece';
        frag.appendChild(piece);
        piece = document.createElement('div');
      }
    }
    textEl.appendChild(frag);
  }
  const extra = new Array<string>(n).fill(''); // ' nl' and ' ft' classes kept beside the colour
  for (let p = 0; p < n; p++) if (chars[p] === '\n') extra[p] = ' nl';

  let sel: Selection = { layer: 0, lstm: 'time', kind: kinds.includes('h') ? 'h' : kinds[0], unit: 0 };
  let values: Float32Array = new Float32Array(n);
  let valueDigits = 3;
  let focused = 0;
  let hovered = -1;
  let stretch = false;
  let renderToken = 0;
  const timings = { firstRender: 0, lastRender: 0 };

  function scaleOf(v: Float32Array, kind: Kind): number {
    if (!signedKind(kind)) return 1;
    let m = 0;
    for (let p = 0; p < n; p++) m = Math.max(m, Math.abs(v[p]));
    if (kind === 'c' || stretch) return m > 0 ? m : 1;
    return 1;
  }

  async function render(): Promise<void> {
    const token = ++renderToken;
    const started = performance.now();
    const s = { ...sel };
    byId('status').textContent = `decoding ${KIND_LABEL[s.kind]}, layer ${s.layer}${grid ? ` ${s.lstm}` : ''}…`;
    const v = await unitValues(s);
    if (token !== renderToken) return;
    values = v;
    const b = blockFor(s.layer, s.lstm, s.kind)!;
    const step = (b.hi[s.unit] - b.lo[s.unit]) / b.levels; // the stored values' resolution
    valueDigits = Math.max(2, Math.min(6, Math.ceil(-Math.log10(step / 2))));
    const signed = signedKind(s.kind);
    setPalette(signed);
    const scale = scaleOf(v, s.kind);
    for (let p = 0; p < n; p++) {
      const t = signed ? v[p] / scale : v[p];
      let k = Math.round(signed ? ((t + 1) / 2) * (P - 1) : t * (P - 1));
      k = k < 0 ? 0 : k >= P ? P - 1 : k;
      spans[p].className = 'v' + k + extra[p];
    }
    byId('legend-min').textContent = signed ? fmt(-scale) : '0';
    byId('legend-max').textContent = signed ? fmt(scale) : '1';
    byId('legend-what').textContent = `${KIND_LABEL[s.kind]} of unit ${s.unit}, layer ${s.layer}${grid ? `, ${s.lstm} LSTM` : ''}${s.kind === 'tc' && !data.kinds.includes('tc') ? ' (computed from the stored c)' : ''}`;
    textEl.dataset.selection = `${s.layer}/${s.lstm}/${s.kind}/${s.unit}`;
    byId('status').textContent = '';
    showInfo(hovered >= 0 ? hovered : focused);
    markRanking();
    markSaturation();
    const ms = performance.now() - started;
    timings.lastRender = ms;
    if (timings.firstRender === 0) {
      timings.firstRender = performance.now();
      document.body.dataset.ready = '1';
    }
    if (grid) void drawHeatmap(token);
  }

  function fmt(x: number): string {
    return Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 10 ? x.toFixed(1) : x.toFixed(3);
  }
  function visible(ch: string): string {
    if (ch === ' ') return '␣';
    if (ch === '\n') return '↵';
    if (ch === '\t') return '⇥';
    const cp = ch.codePointAt(0)!;
    if (cp < 32 || (cp >= 127 && cp < 160)) return `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
    return ch;
  }

  // ---------------------------------------------------------------------------------------------
  // The panel for the character under the mouse or in focus

  function showInfo(p: number): void {
    if (p < 0 || p >= n) return;
    const top = data.top[p];
    const next = p + 1 < n ? data.ids[p + 1] : (data.after ?? -1);
    const loss = data.loss[p];
    byId('info-char').textContent = visible(chars[p]);
    byId('info-pos').textContent = `${data.start + p}`;
    byId('info-next').textContent = next < 0 ? 'none (the text ends)' : visible(data.vocab[next]);
    byId('info-loss').textContent = loss === null ? '–' : `${loss.toFixed(3)} nats (${(loss / Math.LN2).toFixed(3)} bits)`;
    byId('info-value').textContent = values[p].toFixed(valueDigits);
    const rows: string[] = [];
    for (let k = 0; k < top.length; k += 2) {
      const id = top[k];
      const pr = top[k + 1];
      const ch = escapeHtml(visible(data.vocab[id]));
      rows.push(
        `<tr${id === next && loss !== null ? ' class="actual"' : ''}><td class="ch">${ch}</td><td><div class="bar" style="width:${(pr * 100).toFixed(1)}%"></div></td><td class="p">${(pr * 100).toFixed(1)}%</td></tr>`,
      );
    }
    byId('top5').innerHTML = rows.join('');
    const marker = byId('heatmap-marker');
    if (marker) marker.style.left = `${((p + 0.5) / n) * 100}%`;
  }
  function escapeHtml(s: string): string {
    return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
  }

  function focusChar(p: number, scroll = true): void {
    p = Math.max(0, Math.min(n - 1, p));
    spans[focused].tabIndex = -1;
    focused = p;
    spans[p].tabIndex = 0;
    spans[p].focus({ preventScroll: !scroll });
    if (scroll) spans[p].scrollIntoView({ block: 'nearest' });
    showInfo(p);
  }
  spans[0].tabIndex = 0;

  textEl.addEventListener('mouseover', (e) => {
    const t = e.target as HTMLElement;
    if (t.dataset.p === undefined) return;
    hovered = Number(t.dataset.p);
    showInfo(hovered);
  });
  textEl.addEventListener('mouseleave', () => {
    hovered = -1;
    showInfo(focused);
  });
  textEl.addEventListener('focusin', (e) => {
    const t = e.target as HTMLElement;
    if (t.dataset.p === undefined) return;
    const p = Number(t.dataset.p);
    if (p !== focused) {
      spans[focused].tabIndex = -1;
      focused = p;
      spans[p].tabIndex = 0;
    }
    showInfo(p);
  });
  textEl.addEventListener('click', (e) => {
    const t = e.target as HTMLElement;
    if (t.dataset.p !== undefined) focusChar(Number(t.dataset.p), false);
  });
  textEl.addEventListener('keydown', (e) => {
    let p = focused;
    const col = focused - lineStart[focused];
    switch (e.key) {
      case 'ArrowRight': p++; break;
      case 'ArrowLeft': p--; break;
      case 'Home': p = e.ctrlKey ? 0 : lineStart[focused]; break;
      case 'End': p = e.ctrlKey ? n - 1 : nextLine(focused) - 1; break;
      case 'PageDown': p += 200; break;
      case 'PageUp': p -= 200; break;
      case 'ArrowDown': { const s = nextLine(focused); p = s >= n ? focused : Math.min(s + col, nextLine(s) - 1); break; }
      case 'ArrowUp': { const s = lineStart[focused]; p = s === 0 ? focused : Math.min(lineStart[s - 1] + col, s - 1); break; }
      default: return;
    }
    e.preventDefault();
    focusChar(p);
  });
  function nextLine(p: number): number {
    let s = p;
    while (s < n && chars[s] !== '\n') s++;
    return Math.min(n, s + 1);
  }

  // ---------------------------------------------------------------------------------------------
  // Controls

  const layerSel = byId<HTMLSelectElement>('sel-layer');
  const lstmSel = byId<HTMLSelectElement>('sel-lstm');
  const kindSel = byId<HTMLSelectElement>('sel-kind');
  const unitIn = byId<HTMLInputElement>('sel-unit');
  layerSel.innerHTML = Array.from({ length: L }, (_, l) => `<option value="${l}">${l}</option>`).join('');
  lstmSel.innerHTML = data.lstms.map((s) => `<option value="${s}">${s}</option>`).join('');
  byId('lstm-label').hidden = !grid;
  kindSel.innerHTML = kinds.map((k) => `<option value="${k}">${KIND_LABEL[k]}</option>`).join('');
  unitIn.max = String(N - 1);

  function syncControls(): void {
    layerSel.value = String(sel.layer);
    lstmSel.value = sel.lstm;
    kindSel.value = sel.kind;
    unitIn.value = String(sel.unit);
  }
  function select(s: Partial<Selection>): Promise<void> {
    const next: Selection = { ...sel, ...s };
    next.layer = Math.max(0, Math.min(L - 1, Math.trunc(next.layer)));
    next.unit = ((Math.trunc(next.unit) % N) + N) % N;
    if (!data.lstms.includes(next.lstm)) next.lstm = 'time';
    if (!kinds.includes(next.kind)) next.kind = kinds[0];
    sel = next;
    syncControls();
    return render();
  }
  layerSel.addEventListener('change', () => void select({ layer: Number(layerSel.value) }));
  lstmSel.addEventListener('change', () => void select({ lstm: lstmSel.value as Lstm }));
  kindSel.addEventListener('change', () => void select({ kind: kindSel.value as Kind }));
  unitIn.addEventListener('change', () => {
    const u = Number(unitIn.value);
    if (Number.isFinite(u)) void select({ unit: u });
  });
  byId('unit-prev').addEventListener('click', () => void select({ unit: sel.unit - 1 }));
  byId('unit-next').addEventListener('click', () => void select({ unit: sel.unit + 1 }));
  byId<HTMLInputElement>('stretch').addEventListener('change', (e) => {
    stretch = (e.target as HTMLInputElement).checked;
    void render();
  });
  document.addEventListener('keydown', (e) => {
    const t = e.target as HTMLElement;
    if (e.ctrlKey || e.metaKey || e.altKey || t.closest('input, select, textarea')) return;
    if (e.key === 'j' || e.key === ']') select({ unit: sel.unit + 1 });
    else if (e.key === 'k' || e.key === '[') select({ unit: sel.unit - 1 });
    else return;
    e.preventDefault();
  });

  // ---------------------------------------------------------------------------------------------
  // Ranked units

  const rankList = byId('rank-list');
  const rankFilter = byId<HTMLSelectElement>('rank-feature');
  rankFilter.innerHTML = '<option value="">all features</option>' + data.features.map((f) => `<option value="${f.name}">${escapeHtml(f.label)}</option>`).join('');
  let markedFeature = '';
  const rankBest = byId('rank-best');
  function entry(r: Ranked, i: number): string {
    const feat = data.features[featureByName.get(r.feature)!];
    const kind = KIND_LABEL[r.kind].split(' ').pop()!;
    const where = `${r.layer}${grid ? ` ${r.lstm}` : ''}`;
    const rr = `${r.r >= 0 ? '+' : '−'}${Math.abs(r.r).toFixed(2)}`;
    const label = `${KIND_LABEL[r.kind]} of unit ${r.unit}, layer ${where}: ${feat.label}, r ${rr}`;
    return `<li><button type="button" data-i="${i}" aria-pressed="false" aria-label="${escapeHtml(label)}"><span>${kind}</span><span>${r.unit}</span><span>${where}</span><span class="feat">${escapeHtml(feat.label)}</span><span class="r">${rr}</span></button></li>`;
  }
  function drawRanking(): void {
    const f = rankFilter.value;
    const items = data.ranking.map((r, i) => ({ r, i })).filter(({ r }) => f === '' || r.feature === f);
    rankList.innerHTML = items.map(({ r, i }) => entry(r, i)).join('');
    if (items.length === 0) rankList.innerHTML = '<li>no unit varies with the features in this window</li>';
    markRanking();
  }
  {
    // The best unit of each feature (the ranking is sorted by |r|: the first of each).
    const seen = new Set<string>();
    const best: string[] = [];
    data.ranking.forEach((r, i) => {
      if (!seen.has(r.feature)) {
        seen.add(r.feature);
        best.push(entry(r, i));
      }
    });
    rankBest.innerHTML = best.join('') || '<li>no unit varies with the features in this window</li>';
  }
  function markRanking(): void {
    for (const b of document.querySelectorAll<HTMLButtonElement>('#ranking button[data-i]')) {
      const r = data.ranking[Number(b.dataset.i)];
      const on = r.layer === sel.layer && r.lstm === sel.lstm && r.kind === sel.kind && r.unit === sel.unit && r.feature === markedFeature;
      b.setAttribute('aria-pressed', String(on));
    }
  }
  /** Marks the feature of a ranked unit; underlines it in the text once one has been clicked. */
  let underlineOn = false;
  function markFeature(name: string): void {
    markedFeature = name;
    const f = featureByName.get(name);
    const vals = f === undefined || !underlineOn ? null : data.featureValues[f];
    const binary = vals !== null && vals.every((x) => x === 0 || x === 1);
    const show = byId<HTMLInputElement>('show-feature').checked && binary;
    for (let p = 0; p < n; p++) extra[p] = (chars[p] === '\n' ? ' nl' : '') + (show && vals![p] === 1 ? ' ft' : '');
    byId('feature-note').textContent =
      vals === null ? '' : !binary ? `“${data.features[f!].label}” is not 0/1: nothing underlined` : show ? `underlined: where “${data.features[f!].label}” is 1` : '';
  }
  rankFilter.addEventListener('change', drawRanking);
  byId('ranking').addEventListener('click', (e) => {
    const b = (e.target as HTMLElement).closest<HTMLButtonElement>('button[data-i]');
    if (!b) return;
    const r = data.ranking[Number(b.dataset.i)];
    underlineOn = true;
    markFeature(r.feature);
    void select({ layer: r.layer, lstm: r.lstm, kind: r.kind, unit: r.unit });
  });
  byId<HTMLInputElement>('show-feature').addEventListener('change', () => {
    underlineOn = true;
    markFeature(markedFeature);
    void render();
  });

  // ---------------------------------------------------------------------------------------------
  // Gate saturation: one scatter per layer, LSTM and gate; a dot per unit

  const SAT = 180;
  const satBox = byId('sat-grid');
  function drawSaturation(): void {
    const figs: string[] = [];
    data.saturation.forEach((s, si) => {
      const m = 18;
      const w = SAT - m - 6;
      const x = (f: number) => (m + f * w).toFixed(1);
      const y = (f: number) => (6 + (1 - f) * w).toFixed(1);
      let dots = '';
      for (let j = 0; j < s.left.length; j++) dots += `<circle class="u" data-j="${j}" cx="${x(s.left[j])}" cy="${y(s.right[j])}" r="2.2"/>`;
      figs.push(
        `<figure><figcaption>layer ${s.layer}${grid ? ` ${s.lstm}` : ''} · ${KIND_LABEL[s.gate]}</figcaption>` +
          `<svg viewBox="0 0 ${SAT} ${SAT}" data-s="${si}" role="img" aria-label="gate saturation of ${KIND_LABEL[s.gate]}, layer ${s.layer}${grid ? ` ${s.lstm}` : ''}: fraction of positions right-saturated against left-saturated, one dot per unit">` +
          `<path d="M${x(0)} ${y(1)} L${x(0)} ${y(0)} L${x(1)} ${y(0)}" fill="none" stroke="#999"/><path d="M${x(0)} ${y(1)} L${x(1)} ${y(0)}" stroke="#ddd" stroke-dasharray="3 3"/>` +
          `<text x="${x(0.5)}" y="${SAT - 1}" font-size="10" text-anchor="middle" fill="#666">left-saturated (&lt; 0.1)</text>` +
          `<text x="9" y="${y(0.5)}" font-size="10" text-anchor="middle" fill="#666" transform="rotate(-90 9 ${y(0.5)})">right-saturated (&gt; 0.9)</text>` +
          `<g fill="#0b57d0" fill-opacity="0.45">${dots}</g><circle class="mark" r="5" fill="none" stroke="#e8710a" stroke-width="2" visibility="hidden"/></svg></figure>`,
      );
    });
    satBox.innerHTML = figs.join('');
  }
  function markSaturation(): void {
    for (const svg of satBox.querySelectorAll<SVGSVGElement>('svg[data-s]')) {
      const s = data.saturation[Number(svg.dataset.s)];
      const mark = svg.querySelector<SVGCircleElement>('circle.mark')!;
      const dot = s.layer === sel.layer && s.lstm === sel.lstm ? svg.querySelector<SVGCircleElement>(`circle.u[data-j="${sel.unit}"]`) : null;
      if (dot) {
        mark.setAttribute('cx', dot.getAttribute('cx')!);
        mark.setAttribute('cy', dot.getAttribute('cy')!);
        mark.setAttribute('visibility', 'visible');
      } else mark.setAttribute('visibility', 'hidden');
    }
  }
  satBox.addEventListener('click', (e) => {
    const c = (e.target as Element).closest('circle.u') as SVGCircleElement | null;
    if (!c) return;
    const s = data.saturation[Number((c.closest('svg') as SVGSVGElement).dataset.s)];
    void select({ layer: s.layer, lstm: s.lstm, kind: s.gate, unit: Number(c.dataset.j) });
  });

  // ---------------------------------------------------------------------------------------------
  // grid_lstm: the depth cells c_d of the chosen unit in every layer, over the text

  const canvas = byId<HTMLCanvasElement>('heatmap');
  async function drawHeatmap(token: number): Promise<void> {
    if (!canvas || !blockFor(0, 'depth', 'c')) return;
    const unit = sel.unit;
    const rows: Float32Array[] = [];
    for (let l = 0; l < L; l++) rows.push(await unitValues({ layer: l, lstm: 'depth', kind: 'c', unit }));
    if (token !== renderToken) return;
    let m = 0;
    for (const r of rows) for (let p = 0; p < n; p++) m = Math.max(m, Math.abs(r[p]));
    if (!(m > 0)) m = 1;
    const W = Math.min(n, 1600);
    const RH = 1;
    canvas.width = W;
    canvas.height = L * RH;
    canvas.style.height = `${L * 22}px`;
    const ctx = canvas.getContext('2d')!;
    const img = ctx.createImageData(W, L * RH);
    for (let l = 0; l < L; l++) {
      const r = rows[L - 1 - l]; // the top layer at the top
      for (let x = 0; x < W; x++) {
        const a = Math.floor((x * n) / W);
        const b = Math.max(a + 1, Math.floor(((x + 1) * n) / W));
        let s = 0;
        for (let p = a; p < b; p++) s += r[p];
        const c = rgb(s / (b - a) / m, true);
        const o = (l * RH * W + x) * 4;
        img.data[o] = c[0];
        img.data[o + 1] = c[1];
        img.data[o + 2] = c[2];
        img.data[o + 3] = 255;
      }
    }
    ctx.putImageData(img, 0, 0);
    byId('heatmap-labels').innerHTML = Array.from({ length: L }, (_, k) => `<div><span>c<sub>d</sub> leaving layer ${L - 1 - k}</span></div>`).join('');
    byId('heatmap-caption').textContent = `unit ${unit}: blue −${fmt(m)} … white 0 … red +${fmt(m)}; columns are positions ${data.start}–${data.start + n - 1} of the text (averaged when there are more than 1 600). Click to go to a character.`;
    canvas.dataset.unit = String(unit);
  }
  canvas?.addEventListener('click', (e) => {
    const rect = canvas.getBoundingClientRect();
    focusChar(Math.floor(((e.clientX - rect.left) / rect.width) * n));
  });

  // ---------------------------------------------------------------------------------------------
  // Start: the first ranked unit, or unit 0 of layer 1's hidden state

  drawRanking();
  drawSaturation();
  const first = data.ranking[0];
  if (first) {
    markFeature(first.feature);
    sel = { layer: first.layer, lstm: first.lstm, kind: first.kind, unit: first.unit };
  }
  syncControls();
  (window as unknown as { gridLstmViz: unknown }).gridLstmViz = {
    select,
    focusChar,
    state: () => ({ ...sel, focused }),
    timings,
    openedAt: t0,
  };
  render().catch((e: unknown) => {
    byId('status').textContent = `cannot show the data: ${(e as Error).message}`;
    throw e;
  });
}
