/**
 * Simple features of a text, computed from its characters alone, that the `viz` report
 * correlates with every unit of a model (the "interpretable units" of Karpathy, Johnson & Fei-Fei,
 * "Visualizing and Understanding Recurrent Networks", 2015).
 *
 * Every feature is a number per position p of the text, defined by the character x_p read at p
 * and those before it — what the model has seen when its units hold their values at p. The
 * stateful ones (quotes, brackets, column) are followed from the beginning of the text, not of
 * the window a report shows.
 */

/** A feature's name (as in the report and its JSON), a short label and its exact definition. */
export interface TextFeatureInfo {
  name: string;
  label: string;
  definition: string;
}

/** The features, in the report's order. */
export const TEXT_FEATURES: readonly TextFeatureInfo[] = [
  {
    name: 'quote',
    label: 'inside quotes',
    definition:
      '1 while inside double quotes, else 0: a straight quote (") toggles the state, an opening typographic quote (“) sets it, a closing one (”) clears it; the value at p is the state after reading x_p (an opening quote is inside, a closing one outside)',
  },
  {
    name: 'bracket',
    label: 'inside brackets',
    definition:
      '1 while inside parentheses or brackets, else 0: the depth goes up at ( [ { and down at ) ] } (never below 0); the value at p is 1 when the depth after reading x_p is above 0',
  },
  {
    name: 'column',
    label: 'position in line',
    definition: 'the number of characters between the last newline before p and x_p (0 for the first character of a line; a newline gets the column it ends)',
  },
  { name: 'word_start', label: 'start of a word', definition: '1 when x_p is a letter or digit and the character before it (if any) is not, else 0' },
  {
    name: 'word_pos',
    label: 'position in word',
    definition: 'the number of letters and digits in a row that end at x_p (1 for the first character of a word, 0 when x_p is not a letter or digit)',
  },
  { name: 'digit', label: 'digit', definition: '1 when x_p is a decimal digit (Unicode Nd), else 0' },
  { name: 'upper', label: 'upper case', definition: '1 when x_p is an upper-case letter (Unicode Lu), else 0' },
  { name: 'space', label: 'whitespace', definition: '1 when x_p is whitespace (space, tab, newline, …), else 0' },
  { name: 'newline', label: 'newline', definition: '1 when x_p is a newline (\\n), else 0' },
];

const QUOTE_TOGGLE = 1;
const QUOTE_OPEN = 2;
const QUOTE_CLOSE = 4;
const OPEN = 8;
const CLOSE = 16;
const ALNUM = 32;
const DIGIT = 64;
const UPPER = 128;
const SPACE = 256;
const NEWLINE = 512;

function classify(ch: string): number {
  let f = 0;
  if (ch === '"') f |= QUOTE_TOGGLE;
  if (ch === '“') f |= QUOTE_OPEN;
  if (ch === '”') f |= QUOTE_CLOSE;
  if (ch === '(' || ch === '[' || ch === '{') f |= OPEN;
  if (ch === ')' || ch === ']' || ch === '}') f |= CLOSE;
  if (/^[\p{L}\p{N}]$/u.test(ch)) f |= ALNUM;
  if (/^\p{Nd}$/u.test(ch)) f |= DIGIT;
  if (/^\p{Lu}$/u.test(ch)) f |= UPPER;
  if (/^\s$/u.test(ch)) f |= SPACE;
  if (ch === '\n') f |= NEWLINE;
  return f;
}

/**
 * The features at positions [start, end) of a text given as ids into `chars` (one string per
 * id): one Float64Array [end − start] per feature of TEXT_FEATURES, in its order. Reads ids
 * 0 … end − 1 (the stateful features follow the text from its beginning).
 */
export function textFeatures(ids: ArrayLike<number>, chars: readonly string[], start: number, end: number): Float64Array[] {
  const flags = chars.map(classify);
  const n = end - start;
  const out = TEXT_FEATURES.map(() => new Float64Array(n));
  const [quote, bracket, column, wordStart, wordPos, digit, upper, space, newline] = out;
  let inQuote = false;
  let depth = 0;
  let col = 0;
  let prevAlnum = false;
  let run = 0; // letters and digits in a row, ending at p
  for (let p = 0; p < end; p++) {
    const f = flags[ids[p]];
    if (f & QUOTE_TOGGLE) inQuote = !inQuote;
    if (f & QUOTE_OPEN) inQuote = true;
    if (f & QUOTE_CLOSE) inQuote = false;
    if (f & OPEN) depth++;
    if (f & CLOSE && depth > 0) depth--;
    const alnum = (f & ALNUM) !== 0;
    run = alnum ? run + 1 : 0;
    if (p >= start) {
      const k = p - start;
      quote[k] = inQuote ? 1 : 0;
      bracket[k] = depth > 0 ? 1 : 0;
      column[k] = col;
      wordStart[k] = alnum && !prevAlnum ? 1 : 0;
      wordPos[k] = run;
      digit[k] = f & DIGIT ? 1 : 0;
      upper[k] = f & UPPER ? 1 : 0;
      space[k] = f & SPACE ? 1 : 0;
      newline[k] = f & NEWLINE ? 1 : 0;
    }
    col = f & NEWLINE ? 0 : col + 1;
    prevAlnum = alnum;
  }
  return out;
}
