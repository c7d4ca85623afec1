/**
 * The walkthrough (docs/walkthrough/*.md) as plain HTML pages for the playground's site, so the
 * "How it works" panel links to chapters that travel with the site and open in any browser
 * (a host may serve .md files as downloads). A small Markdown subset, the one the chapters use:
 * headings (with GitHub's anchors), paragraphs, fenced code, lists, block quotes, tables,
 * images, links (.md → .html), `code`, **bold** and *italic*; TeX between $ signs is shown as its
 * source in a code font. Figures are copied beside them.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const esc = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens. */
export function slug(text) {
  return text
    .toLowerCase()
    .replace(/<[^>]*>/g, '')
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .trim()
    .replace(/\s/g, '-');
}

function inline(text) {
  const codes = [];
  // Code, and the chapters' TeX ($…$, shown as its source in a code font).
  let s = text.replace(/`([^`]+)`|\$([^$\n]+)\$/g, (_m, c, tex) => `\u0000${codes.push(c ?? tex) - 1}\u0000`);
  s = esc(s);
  s = s.replace(/!\[([^\]]*)\]\(([^)\s]+)\)/g, (_m, alt, src) => `<img src="${src}" alt="${alt}">`);
  s = s.replace(/\[([^\]]+)\]\(([^)\s]+)\)/g, (_m, label, href) => {
    if (/^[a-z]+:/i.test(href)) return `<a href="${href}">${label}</a>`;
    // On the site are the chapters (as .html) and their figures; links to anything else of the
    // repository (its sources, the runs' folders) have nowhere to go there: the label stays.
    if (!/^(#|[\w-]+\.md(#|$)|figures\/)/.test(href)) return `${label}`;
    return `<a href="${href.replace(/\.md(#|$)/, '.html$1')}">${label}</a>`;
  });
  s = s.replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>').replace(/(^|[^*\w])\*([^*\s][^*]*)\*/g, '$1<em>$2</em>');
  return s.replace(/\u0000(\d+)\u0000/g, (_m, k) => `<code>${esc(codes[Number(k)])}</code>`);
}

/** One chapter's Markdown as the body of an HTML page. */
export function markdownToHtml(md) {
  const lines = md.split('\n');
  const out = [];
  let para = [];
  const flush = () => {
    if (para.length > 0) out.push(`<p>${inline(para.join(' '))}</p>`);
    para = [];
  };
  for (let k = 0; k < lines.length; k++) {
    const line = lines[k];
    const fence = /^(\s*)```(\w*)/.exec(line);
    if (fence) {
      flush();
      const code = [];
      for (k++; k < lines.length && !/^\s*```/.test(lines[k]); k++) code.push(lines[k]);
      out.push(`<pre><code>${esc(code.join('\n'))}</code></pre>`);
      continue;
    }
    const h = /^(#{1,6})\s+(.*)$/.exec(line);
    if (h) {
      flush();
      out.push(`<h${h[1].length} id="${slug(h[2])}">${inline(h[2])}</h${h[1].length}>`);
      continue;
    }
    if (/^\|/.test(line)) {
      flush();
      const rows = [];
      for (; k < lines.length && /^\|/.test(lines[k]); k++) rows.push(lines[k]);
      k--;
      const cells = (r) => r.replace(/^\||\|$/g, '').split('|').map((c) => c.trim());
      const body = rows.filter((r) => !/^\|[\s:|-]+\|$/.test(r));
      out.push(
        '<table>' +
          body.map((r, i) => `<tr>${cells(r).map((c) => (i === 0 ? `<th>${inline(c)}</th>` : `<td>${inline(c)}</td>`)).join('')}</tr>`).join('') +
          '</table>',
      );
      continue;
    }
    const item = /^\s*(?:[-*]|\d+\.)\s+(.*)$/.exec(line);
    if (item) {
      flush();
      const ordered = /^\s*\d+\./.test(line);
      const items = [];
      for (; k < lines.length; k++) {
        const m = /^\s*(?:[-*]|\d+\.)\s+(.*)$/.exec(lines[k]);
        if (m) items.push(m[1]);
        else if (/^\s{2,}\S/.test(lines[k]) && items.length > 0) items[items.length - 1] += ' ' + lines[k].trim();
        else break;
      }
      k--;
      const tag = ordered ? 'ol' : 'ul';
      out.push(`<${tag}>${items.map((i) => `<li>${inline(i)}</li>`).join('')}</${tag}>`);
      continue;
    }
    const quote = /^>\s?(.*)$/.exec(line);
    if (quote) {
      flush();
      const q = [];
      for (; k < lines.length && /^>/.test(lines[k]); k++) q.push(lines[k].replace(/^>\s?/, ''));
      k--;
      out.push(`<blockquote><p>${inline(q.join(' '))}</p></blockquote>`);
      continue;
    }
    if (line.trim() === '') flush();
    else para.push(line.trim());
  }
  flush();
  return out.join('\n');
}

const STYLE =
  'body{font:16px/1.55 system-ui,sans-serif;max-width:46rem;margin:0 auto;padding:1rem;color:#1b1b1b}' +
  'pre{overflow:auto;background:#f4f4f4;padding:.6rem;border-radius:4px}code{font:.9em ui-monospace,monospace}' +
  'img{max-width:100%;height:auto}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2rem .5rem}' +
  'nav{font-size:.9rem;margin-bottom:1rem}@media (prefers-color-scheme:dark){body{background:#161616;color:#e8e8e8}pre{background:#262626}a{color:#8ab4f8}}';

/** [file name, contents] of every page and figure, for the site's walkthrough/ folder. */
export function walkthroughPages(repo) {
  const dir = join(repo, 'docs', 'walkthrough');
  const files = [];
  for (const name of readdirSync(dir).filter((f) => f.endsWith('.md')).sort()) {
    const md = readFileSync(join(dir, name), 'utf8');
    const title = (/^#\s+(.*)$/m.exec(md)?.[1] ?? name).replace(/`/g, '');
    const html =
      `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">` +
      `<title>${esc(title)} — grid-lstm walkthrough</title><link rel="icon" href="data:,"><style>${STYLE}</style></head><body>` +
      `<nav><a href="../index.html">← the playground</a> · <a href="README.html">the walkthrough's contents</a></nav>` +
      `${markdownToHtml(md)}</body></html>\n`;
    files.push([name.replace(/\.md$/, '.html'), html]);
  }
  for (const name of readdirSync(join(dir, 'figures')).filter((f) => /\.(svg|png)$/.test(f))) {
    files.push([`figures/${name}`, new Uint8Array(readFileSync(join(dir, 'figures', name)))]);
  }
  return files;
}
