/**
 * The `viz` report as one self-contained HTML file: a pure function of the report's data
 * (src/viz/report-data.ts). Everything is inline — the style sheet, the page's script
 * (src/viz/report-page.ts) and the data — so the file opens from disk with no network.
 *
 * The data: the JSON of ReportData without the blocks' bytes in `<script type="application/json"
 * id="viz-data">`, then the page's script, then each block's base64 in a `<script
 * type="application/octet-stream">` of its own (`ref` names it), which the page decodes the first
 * time it shows that block — as soon as it is parsed, so the page shows while the rest loads.
 */
import { aModel } from '../nn/params.js';
import { type ReportData, REPORT_FORMAT } from './report-data.js';
import { vizPage } from './report-page.js';
import { REPORT_CSS } from './report-style.js';

/** The HTML of a report. */
export function renderReport(data: ReportData): string {
  if (data.format !== REPORT_FORMAT) throw new Error(`renderReport needs report data of format ${REPORT_FORMAT}, got ${String(data.format)}`);
  const meta = { ...data, blocks: data.blocks.map(({ data: _bytes, ...b }, k) => ({ ...b, ref: `viz-block-${k}` })) };
  const m = data.model;
  const grid = m.kind === 'grid_lstm';
  const n = [...data.text].length;
  const title = `grid-lstm viz${m.label ? ` — ${m.label}` : ''}`;
  const loss = data.meanLoss === null ? 'no next character to predict' : `mean loss ${data.meanLoss.toFixed(4)} nats/char (${(data.meanLoss / Math.LN2).toFixed(4)} bits/char) over ${data.loss.filter((x) => x !== null).length} predictions`;
  const shape = `${m.kind} ${m.numLayers}×${m.rnnSize}${grid ? (m.tieWeights ? ', depth weights tied' : ', depth weights untied') : ''}, vocabulary ${m.vocabSize}`;
  const stored = data.kinds.join(', ');
  const parts: string[] = [];
  parts.push(
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><meta name="color-scheme" content="light">',
    `<meta name="generator" content="grid-lstm viz (${REPORT_FORMAT})">`,
    `<title>${esc(title)}</title><style>${REPORT_CSS}</style></head><body>`,
    `<header><h1>${esc(title)}</h1><p>${esc(shape)} · characters ${data.start}–${data.start + n - 1} of ${data.textLength} · ${esc(loss)}</p></header>`,
    '<main>',
    '<section id="controls" class="wide" aria-label="which unit colours the text">',
    '<label>layer <select id="sel-layer"></select></label>',
    '<label id="lstm-label">LSTM <select id="sel-lstm"></select></label>',
    '<label>value <select id="sel-kind"></select></label>',
    '<span><button type="button" id="unit-prev" aria-label="previous unit (k)">◀</button> <label>unit <input id="sel-unit" type="number" min="0" step="1" value="0"></label> <button type="button" id="unit-next" aria-label="next unit (j)">▶</button></span>',
    '<label><input type="checkbox" id="stretch"> stretch colours to the unit’s range</label>',
    '<span class="hint"><kbd>j</kbd>/<kbd>k</kbd> next/previous unit · in the text: <kbd>←</kbd><kbd>→</kbd><kbd>↑</kbd><kbd>↓</kbd> move between characters</span>',
    '</section>',
    '<section id="text-panel" aria-label="the text coloured by the unit">',
    '<div id="legend"><span id="legend-min"></span><span id="legend-bar"></span><span id="legend-max"></span><span id="legend-what"></span></div>',
    '<div id="status" role="status"></div>',
    '<div id="text" aria-label="the text: each character coloured by the unit’s value after reading it; arrow keys move between characters, the panel describes the character in focus"></div>',
    '</section>',
    '<aside>',
    '<div id="info" aria-live="polite"><div><span class="big" id="info-char"></span></div>',
    '<dl><dt>position</dt><dd id="info-pos"></dd><dt>next character</dt><dd id="info-next"></dd><dt>loss</dt><dd id="info-loss"></dd><dt>unit value</dt><dd id="info-value"></dd></dl>',
    '<div class="hint">the model’s top 5 for the next character</div><table><tbody id="top5"></tbody></table></div>',
    '<section id="ranking" aria-label="units ranked by correlation with text features"><h2>Units that track a feature</h2>',
    '<div class="hint">|Pearson r| of a unit’s values with a text feature (see below); click one to show it.</div>',
    '<div class="rank-head" aria-hidden="true"><span>value</span><span>unit</span><span>layer</span><span>feature</span><span>r</span></div>',
    '<h3>The best unit of each feature</h3><ol id="rank-best"></ol>',
    '<h3><label>All, most correlated first: <select id="rank-feature"></select></label></h3><ol id="rank-list"></ol>',
    '<label><input type="checkbox" id="show-feature" checked> underline the feature in the text</label><div class="hint" id="feature-note"></div></section>',
    '</aside>',
  );
  if (grid) {
    parts.push(
      '<section id="heatmap-section" class="wide"><h2>Depth cells c<sub>d</sub> of the unit, layer by layer</h2>',
      '<div id="heatmap-wrap"><div id="heatmap-labels"></div><div id="heatmap-box"><canvas id="heatmap" width="1" height="1" role="img" aria-label="depth by time heatmap of the depth cell of the chosen unit in every layer"></canvas><div id="heatmap-marker"></div></div></div>',
      '<div class="hint" id="heatmap-caption"></div></section>',
    );
  }
  const saturation =
    data.saturation.length > 0
      ? `For every unit, the fraction of positions where the gate is left-saturated (below 0.1) and right-saturated (above 0.9), as in Karpathy, Johnson &amp; Fei-Fei, “Visualizing and Understanding Recurrent Networks”. One dot per unit; click a dot to show that gate of that unit.${grid ? ' Each layer has a time LSTM (carried along the text) and a depth LSTM (its c<sub>d</sub>, h<sub>d</sub> go to the layer above).' : ''}`
      : `This view does not apply: ${aModel(m.kind)} has no gates (h = tanh(i2h(x) + h2h(h))).`;
  parts.push(
    '<section id="saturation" class="wide"><h2>Gate saturation</h2>',
    `<p class="hint">${saturation}</p>`,
    '<div class="grid" id="sat-grid"></div></section>',
    '<section id="features" class="wide"><h2>The features</h2><p class="hint">Each is a number per position, from the character read there and those before it (followed from the beginning of the text). A unit is ranked by Pearson’s r of its values with a feature over the characters shown; of a unit’s kinds only the best is listed, and units that vary by less than 0.001 are left out.</p><dl>',
    ...data.features.map((f) => `<dt>${esc(f.label)} <code>${esc(f.name)}</code></dt><dd>${esc(f.definition)}</dd>`),
    '</dl>',
    `<p class="hint">Stored values (${esc(stored)}): one byte each, the gates over [0, 1], the candidates, h and tanh(c) over [−1, 1], c over each unit’s own range in this window${data.kinds.includes('c') && !data.kinds.includes('tc') ? '; tanh(c) is computed from the stored c' : ''}. The ranking, the saturation and the predictions were computed from the full-precision values.</p></section>`,
    '</main>',
    `<script type="application/json" id="viz-data">${JSON.stringify(meta).replace(/</g, '\\u003c')}</script>`,
  );
  // The page's script runs before the blocks are parsed (it shows the page meanwhile); the
  // blocks the page starts with come first: the first ranked unit's, then the depth cells.
  parts.push(`<script>${scriptSource()}</script>`);
  for (const k of blockOrder(data)) parts.push(`<script type="application/octet-stream" id="viz-block-${k}">${data.blocks[k].data}</script>`);
  parts.push('</body></html>', '');
  return parts.join('\n');
}

/** The indices of the blocks in the order they go into the file. */
function blockOrder(data: ReportData): number[] {
  const first = data.ranking[0] ?? { layer: 0, lstm: 'time', kind: data.kinds.includes('h') ? 'h' : data.kinds[0] };
  const firstKind = first.kind === 'tc' && !data.kinds.includes('tc') ? 'c' : first.kind;
  const rank = (b: ReportData['blocks'][number]): number =>
    b.layer === first.layer && b.lstm === first.lstm && b.kind === firstKind ? 0 : b.lstm === 'depth' && b.kind === 'c' ? 1 : 2;
  return data.blocks.map((b, k) => ({ k, r: rank(b) })).sort((a, b) => a.r - b.r || a.k - b.k).map((x) => x.k);
}

/**
 * The page's script, safe to put inside a script element: vizPage's source, called. When the
 * module was loaded through a transpiler that keeps function names (esbuild's keepNames, as tsx
 * does), the source calls its helper __name(fn, name); a stand-in is defined for it.
 */
function scriptSource(): string {
  const src = vizPage.toString().replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--');
  return `(function () {\nvar __name = function (f) { return f; };\n(${src})();\n})();`;
}

function esc(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}
