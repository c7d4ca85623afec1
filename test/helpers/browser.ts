/**
 * A real browser for tests and scripts: Chromium as installed on the machine (Debian's
 * `chromium`), driven by playwright-core. Nothing here downloads a browser.
 *
 *   const chromium = findChromium();            // null when there is none
 *   const b = await openBrowser();              // launch with a fresh profile
 *   const page = await b.open('report.html');   // a file path or a URL
 *   ...                                          // page is a playwright Page
 *   expect(b.errors).toEqual([]);                // console errors, page errors, refused requests
 *   await b.screenshot('test-output/x.png');
 *   await b.close();
 *
 * Tests that need a browser skip when findChromium() finds none, with a line that says how to
 * install one (BROWSER_HINT); REQUIRE_BROWSER=1 (set by .ci/run) makes that a failure instead.
 *
 * Scripts (e.g. the one that makes the README's screenshot) use screenshotPage().
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants, mkdirSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Browser, type BrowserContext, type Page, chromium } from 'playwright-core';

/** What to do when there is no browser. */
export const NO_BROWSER = 'no Chromium found: install one (apt-get install chromium) or set CHROMIUM_PATH to a Chromium or Chrome executable';

/** The line a test file prints when it skips its browser tests. */
export const BROWSER_HINT = `browser tests skipped: ${NO_BROWSER}`;

/**
 * The switches Chromium is launched with: headless, no sandbox (containers, root), nothing in
 * the background that could reach the network, and every request but localhost's sent to a
 * proxy that is not there (port 9 of this machine: it fails at once, names and literal addresses
 * alike). Not playwright's request routing: with it Chromium makes none of its own requests (the
 * page's icon), so a missing icon would go unseen.
 */
export const CHROMIUM_ARGS = [
  '--headless',
  '--proxy-server=http://127.0.0.1:9',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The Chromium to use: the environment variable CHROMIUM_PATH (which must then be executable),
 * else /usr/bin/chromium, else `chromium` (or `chromium-browser`) found on PATH; null when none.
 */
export function findChromium(): string | null {
  const fromEnv = process.env.CHROMIUM_PATH;
  if (fromEnv) return executable(fromEnv) ? fromEnv : null;
  if (executable('/usr/bin/chromium')) return '/usr/bin/chromium';
  for (const name of ['chromium', 'chromium-browser']) {
    try {
      const found = execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
      if (found && executable(found)) return found;
    } catch {
      // not on PATH
    }
  }
  return null;
}

/** Whether a missing browser is a failure (REQUIRE_BROWSER=1, as in CI) rather than a skip. */
export function browserRequired(): boolean {
  return process.env.REQUIRE_BROWSER === '1';
}

export interface BrowserOptions {
  /** The viewport (default 1280 × 900). */
  width?: number;
  height?: number;
  /** Device pixel ratio (default 1). */
  scale?: number;
  /** The executable (default: findChromium()). */
  executablePath?: string;
}

/** A launched browser with one page, and everything that went wrong in it. */
export interface BrowserSession {
  browser: Browser;
  context: BrowserContext;
  page: Page;
  /**
   * Console messages of type error, uncaught page errors, and requests refused because they
   * would leave the machine (anything but file:, data: and blob: URLs and http://localhost or
   * 127.0.0.1, where tests serve pages), in order.
   */
  errors: string[];
  /** Every console message, "type: text". */
  console: string[];
  /** Loads a file (path, relative to the working directory) or a URL, and waits for its load event. */
  open(target: string): Promise<Page>;
  /** Writes a PNG of the page (its parent directories are made). */
  screenshot(path: string, options?: { fullPage?: boolean }): Promise<void>;
  /** Closes the browser (its temporary profile goes with it). */
  close(): Promise<void>;
}

/** Launches Chromium with a fresh profile and opens a blank page. Throws NO_BROWSER when there is no browser. */
export async function openBrowser(options: BrowserOptions = {}): Promise<BrowserSession> {
  const executablePath = options.executablePath ?? findChromium();
  if (executablePath === null) throw new Error(NO_BROWSER);
  // launch() starts Chromium with a fresh temporary profile (user-data dir) and removes it on close.
  const browser = await chromium.launch({ executablePath, headless: true, args: CHROMIUM_ARGS });
  let context: BrowserContext;
  try {
    context = await browser.newContext({ viewport: { width: options.width ?? 1280, height: options.height ?? 900 }, deviceScaleFactor: options.scale ?? 1 });
  } catch (e) {
    await browser.close();
    throw e;
  }
  const errors: string[] = [];
  const messages: string[] = [];
  // Nothing may leave the machine (the proxy of CHROMIUM_ARGS refuses it); each attempt is an error.
  context.on('request', (request) => {
    const url = request.url();
    if (/^(file|data|blob):/.test(url) || /^http:\/\/(localhost|127\.0\.0\.1)(:\d+)?\//.test(url)) return;
    errors.push(`refused a request to ${url}`);
  });
  const page = await context.newPage();
  page.on('console', (m) => {
    messages.push(`${m.type()}: ${m.text()}`);
    if (m.type() === 'error') errors.push(`console error: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  return {
    browser,
    context,
    page,
    errors,
    console: messages,
    async open(target: string) {
      const url = /^[a-z][a-z0-9+.-]*:/i.test(target) ? target : pathToFileURL(isAbsolute(target) ? target : resolve(target)).href;
      await page.goto(url, { waitUntil: 'load' });
      return page;
    },
    async screenshot(path: string, opts: { fullPage?: boolean } = {}) {
      mkdirSync(dirname(resolve(path)), { recursive: true });
      await page.screenshot({ path, fullPage: opts.fullPage ?? false });
    },
    async close() {
      await browser.close();
    },
  };
}

/**
 * Opens `target` (a file or URL), runs `prepare(page)` if given (e.g. choose a unit, hover a
 * character), and writes a PNG of the page to `out`. For scripts, e.g. the README's screenshot
 * of a viz report (run with `npx tsx`):
 *
 *   import { screenshotPage, showUnit, waitForReport } from '../test/helpers/browser.ts';
 *   await screenshotPage('report.html', 'docs/viz.png', {
 *     prepare: async (page) => {
 *       await waitForReport(page);
 *       await showUnit(page, { layer: 1, lstm: 'time', kind: 'c', unit: 42 }, 120);
 *     },
 *   });
 *
 * Throws if the page logged an error.
 */
export async function screenshotPage(
  target: string,
  out: string,
  options: BrowserOptions & { fullPage?: boolean; prepare?: (page: Page) => Promise<void> } = {},
): Promise<void> {
  const b = await openBrowser(options);
  try {
    const page = await b.open(target);
    if (options.prepare) await options.prepare(page);
    await b.screenshot(out, { fullPage: options.fullPage });
    if (b.errors.length > 0) throw new Error(`the page reported errors: ${b.errors.join('; ')}`);
  } finally {
    await b.close();
  }
}

// The helpers below hand the page expressions as strings, not functions: a function's source can
// carry helpers of the transpiler that loaded this file (tsx's __name) that the page lacks.

/** For the viz report: waits until the page has drawn its first unit. */
export async function waitForReport(page: Page, timeoutMs = 60_000): Promise<void> {
  await page.waitForFunction(`document.body.dataset.ready === '1'`, undefined, { timeout: timeoutMs });
}

/**
 * For the viz report: shows a unit (any of layer, lstm "time" | "depth", kind "i" | "f" | "o" |
 * "g" | "c" | "tc" | "h", unit; the rest stay), waits until it is drawn, and, with `char`,
 * puts the focus on that character (its top 5 in the panel).
 */
export async function showUnit(
  page: Page,
  selection: { layer?: number; lstm?: 'time' | 'depth'; kind?: string; unit?: number },
  char?: number,
): Promise<void> {
  await page.evaluate(`window.gridLstmViz.select(${JSON.stringify(selection)})`);
  if (char !== undefined) await page.evaluate(`window.gridLstmViz.focusChar(${Number(char)})`);
}
