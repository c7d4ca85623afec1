/** The report page's style sheet (inlined by src/viz/report.ts). */
export const REPORT_CSS = `
:root { --fg: #1d1d1f; --muted: #5f6368; --line: #d0d4d9; --panel: #f6f7f9; --accent: #0b57d0; --focus: #e8710a; color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--fg); background: #fff; }
header { padding: 10px 18px; border-bottom: 1px solid var(--line); background: var(--panel); }
header h1 { font-size: 17px; margin: 0 0 2px; }
header p { margin: 0; color: var(--muted); }
main { display: grid; grid-template-columns: minmax(0, 1fr) 380px; gap: 14px 18px; padding: 12px 18px 40px; }
section, aside { min-width: 0; }
h2 { font-size: 15px; margin: 4px 0 6px; }
.wide { grid-column: 1 / -1; }
#controls { display: flex; flex-wrap: wrap; gap: 6px 14px; align-items: center; padding: 8px 10px; background: var(--panel); border: 1px solid var(--line); border-radius: 6px; }
#controls label { display: inline-flex; gap: 5px; align-items: center; }
#controls input[type=number] { width: 5.5em; }
button, select, input { font: inherit; }
button { cursor: pointer; }
:focus-visible { outline: 2px solid var(--focus); outline-offset: 1px; }
.hint { color: var(--muted); font-size: 12.5px; }
kbd { font: 12px ui-monospace, monospace; border: 1px solid var(--line); border-bottom-width: 2px; border-radius: 3px; padding: 0 4px; background: #fff; }
#legend { display: flex; align-items: center; gap: 8px; margin: 8px 0 6px; font-size: 12.5px; color: var(--muted); }
#legend-bar { width: 220px; height: 12px; border: 1px solid var(--line); border-radius: 2px; }
#status { font-size: 12.5px; color: var(--muted); min-height: 1.2em; }
#text { font: 13.5px/1.6 ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; white-space: pre-wrap; word-break: break-all; max-height: 62vh; overflow: auto; padding: 8px; border: 1px solid var(--line); border-radius: 6px; }
#text .piece { content-visibility: auto; contain-intrinsic-size: auto 200px; }
#text span { border-radius: 2px; cursor: default; }
#text span:focus { outline: 2px solid var(--focus); outline-offset: 0; position: relative; z-index: 1; }
#text span.nl, #text span.tab { color: #9aa0a6 !important; }
#text span.ft { box-shadow: inset 0 -2px 0 #6d28d9; }
#info { position: sticky; top: 8px; align-self: start; padding: 10px 12px; background: var(--panel); border: 1px solid var(--line); border-radius: 6px; }
#info .big { font: 20px ui-monospace, monospace; }
#info table { border-collapse: collapse; width: 100%; margin-top: 6px; }
#info td { padding: 2px 4px; }
#info td.ch { font-family: ui-monospace, monospace; width: 3.5em; }
#info td.p { text-align: right; width: 4.5em; font-variant-numeric: tabular-nums; }
#info .bar { height: 9px; background: var(--accent); border-radius: 2px; }
#info tr.actual td { font-weight: 600; }
#info dl { display: grid; grid-template-columns: auto 1fr; gap: 1px 10px; margin: 6px 0; }
#info dt { color: var(--muted); }
#info dd { margin: 0; font-variant-numeric: tabular-nums; }
#ranking h3 { font-size: 13px; font-weight: 600; margin: 8px 0 2px; }
#ranking ol { margin: 0; padding-left: 2.2em; }
#rank-list { max-height: 300px; overflow: auto; }
#ranking li { margin: 1px 0; }
#ranking button, .rank-head { background: none; border: 1px solid transparent; border-radius: 4px; padding: 1px 5px; text-align: left; width: 100%; display: grid; grid-template-columns: 3.6em 2.8em 4.6em minmax(0, 1fr) 3.2em; gap: 6px; white-space: nowrap; }
.rank-head { margin: 6px 0 0 2.2em; width: calc(100% - 2.2em); color: var(--muted); font-size: 12px; }
#ranking .feat { overflow: hidden; text-overflow: ellipsis; }
#ranking button:hover { border-color: var(--line); background: var(--panel); }
#ranking button[aria-pressed=true] { border-color: var(--accent); background: #e8f0fe; }
#ranking .r, .rank-head span:last-child { font-variant-numeric: tabular-nums; font-weight: 600; text-align: right; }
#heatmap-wrap { position: relative; display: grid; grid-template-columns: auto 1fr; gap: 0 8px; align-items: stretch; }
#heatmap-labels { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); }
#heatmap-labels div { flex: 1; display: flex; align-items: center; }
#heatmap-box { position: relative; }
#heatmap { width: 100%; height: auto; image-rendering: pixelated; border: 1px solid var(--line); display: block; cursor: crosshair; }
#heatmap-marker { position: absolute; top: 0; bottom: 0; width: 2px; background: var(--focus); pointer-events: none; }
#saturation .grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(190px, 1fr)); gap: 8px 12px; }
#saturation figure { margin: 0; }
#saturation figcaption { font-size: 12.5px; color: var(--muted); }
#saturation svg { width: 100%; height: auto; background: #fff; border: 1px solid var(--line); }
#saturation circle.u { cursor: pointer; }
#features dl { display: grid; grid-template-columns: 11em 1fr; gap: 3px 12px; }
#features dt { font-weight: 600; }
#features dd { margin: 0; color: var(--muted); }
@media (max-width: 900px) { main { grid-template-columns: 1fr; } #info { position: static; } }
`;
