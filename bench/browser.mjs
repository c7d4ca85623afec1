// The browser row of `npm run bench` (alone: `node bench/run.mjs --browser`): S-lstm and S-grid
// training chars/s in headless Chromium at one thread and at all threads, beside Node's.
//
// The page (bench/browser-page/) imports 'grid-lstm' by name and is bundled by Vite as an
// application would be, then served on 127.0.0.1 with the COOP/COEP headers that threads need;
// its worker times Trainer.step() (B 50, T 50, the kernels 'auto' picks). The same steps are
// timed in this Node process right before each browser measurement (the same code, text and
// options), so that the two figures of a row are taken under the same load: compare the ratio.
// Skipped with a line when there is no Chromium (CHROMIUM_PATH, /usr/bin/chromium, or
// chromium on the PATH; nothing downloads one).
import { execFileSync } from 'node:child_process';
import { accessSync, constants, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:http';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const PAGE = fileURLToPath(new URL('./browser-page/', import.meta.url));
const CONFIGS = [
  ['S-lstm', 'lstm', 128, 2],
  ['S-grid', 'grid_lstm', 128, 2],
];
const WARMUP = 3;
const STEPS = 12;

function findChromium() {
  const ok = (p) => {
    try {
      accessSync(p, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  };
  if (process.env.CHROMIUM_PATH) return ok(process.env.CHROMIUM_PATH) ? process.env.CHROMIUM_PATH : null;
  if (ok('/usr/bin/chromium')) return '/usr/bin/chromium';
  for (const name of ['chromium', 'chromium-browser']) {
    try {
      const found = execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
      if (found && ok(found)) return found;
    } catch {
      // not on the PATH
    }
  }
  return null;
}

const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

/** Serves `dir` on 127.0.0.1 with COOP same-origin + COEP require-corp (cross-origin isolation). */
function serveIsolated(dir) {
  const types = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm' };
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    const file = join(dir, path.endsWith('/') ? `${path}index.html` : path);
    if (!file.startsWith(dir) || !existsSync(file)) return void res.writeHead(404).end();
    res.writeHead(200, {
      'Content-Type': types[extname(file)] ?? 'application/octet-stream',
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cross-Origin-Embedder-Policy': 'require-corp',
    });
    res.end(readFileSync(file));
  });
  return new Promise((done) => server.listen(0, '127.0.0.1', () => done({ server, url: `http://127.0.0.1:${server.address().port}/` })));
}

/**
 * Runs the browser row; `text` is the training text (both sides), `log` prints a line. Returns
 * { chromium, rows: { name: { threads: { browser, node } } } } in chars/s, or null when skipped.
 */
export async function browserRow(text, log) {
  const chromium = findChromium();
  if (chromium === null) {
    log('\nbrowser row skipped: no Chromium found (apt-get install chromium, or set CHROMIUM_PATH)');
    return null;
  }
  const { DEFAULT_TRAIN_OPTIONS, Trainer, loadWasmKernelsSync } = await import('../dist/index.js');
  const { build } = await import('vite');
  const { chromium: playwright } = await import('playwright-core');
  const work = mkdtempSync(join(tmpdir(), 'grid-lstm-bench-browser-'));
  let server;
  let browser;
  try {
    // The page as an application's folder, the package linked in as `npm install <path>` does.
    const src = join(work, 'src');
    cpSync(PAGE, src, { recursive: true });
    mkdirSync(join(src, 'node_modules'));
    symlinkSync(ROOT, join(src, 'node_modules', 'grid-lstm'), 'dir');
    const out = join(work, 'dist');
    await build({ configFile: false, root: src, logLevel: 'warn', build: { outDir: out, emptyOutDir: true, target: 'es2022' }, worker: { format: 'es' } });
    const served = await serveIsolated(out);
    server = served.server;
    browser = await playwright.launch({ executablePath: chromium, headless: true, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
    const page = await browser.newPage();
    const errors = [];
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('response', (r) => r.status() >= 400 && errors.push(`HTTP ${r.status()} for ${r.url()}`));
    await page.goto(served.url);
    await page.waitForFunction(`document.body.dataset.ready === '1'`);
    const call = (fn, ...args) => page.evaluate(`window.bench(${JSON.stringify(fn)}, ...${JSON.stringify(args)})`);
    await call('setText', text);
    const env = await call('threads');
    if (!env.isolated) throw new Error('the bench page is not cross-origin isolated');
    const all = Math.min(availableParallelism(), env.threads, 50);
    const counts = all > 1 ? [1, all] : [1];
    log(`\nbrowser: headless Chromium ${browser.version()}, cross-origin isolated, ${env.cores} cores; Trainer.step(), B=50, T=50, chars/s` +
      ` (median of ${STEPS} steps after ${WARMUP}), Node's measured right before each in this process: compare the ratio`);
    const rows = {};
    for (const [name, model, rnnSize, numLayers] of CONFIGS) {
      rows[name] = {};
      for (const threads of counts) {
        const options = { model, rnnSize, numLayers, batchSize: 50, seqLength: 50, threads, log: 'none' };
        const load = loadavg()[0];
        // Node: the same steps.
        const t = Trainer.fromText(text, { ...DEFAULT_TRAIN_OPTIONS, ...options }, { kernels: loadWasmKernelsSync({ variant: 'auto' }) });
        const nodeSeconds = [];
        try {
          for (let i = 0; i < WARMUP + STEPS; i++) {
            const t0 = performance.now();
            t.step();
            if (i >= WARMUP) nodeSeconds.push((performance.now() - t0) / 1000);
          }
        } finally {
          t.close();
        }
        const b = await call('timeSteps', options, WARMUP, STEPS);
        const node = 2500 / median(nodeSeconds);
        const web = 2500 / median(b.seconds);
        rows[name][threads] = { browser: web, node, kernels: b.kernels, load };
        log(`  ${name.padEnd(7)} ${String(threads).padStart(2)} thread${threads === 1 ? ' ' : 's'}  browser ${Math.round(web).toString().padStart(6)}` +
          `  node ${Math.round(node).toString().padStart(6)}  (browser/node ${(web / node).toFixed(2)}; ${b.kernels}; load ${load.toFixed(2)})`);
      }
    }
    if (errors.length > 0) log(`  the page reported errors: ${errors.join('; ')}`);
    return { chromium: browser.version(), rows };
  } finally {
    await browser?.close();
    server?.close();
    rmSync(work, { recursive: true, force: true });
  }
}
