#!/usr/bin/env node
/**
 * Serves the built playground (dist-web/) on localhost, with the two headers that make a page
 * cross-origin isolated — Cross-Origin-Opener-Policy: same-origin and
 * Cross-Origin-Embedder-Policy: require-corp — so its training worker can share memory with
 * more threads. `--no-isolation` leaves them out (the page then trains on one thread, as on a
 * host that cannot send them).
 *
 *   node web/serve.mjs [--port 8080] [--no-isolation] [--dir dist-web]
 *
 * Tests import serve() to start one on a free port.
 */
import { createReadStream, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.map': 'application/json',
};

export const DEFAULT_DIR = fileURLToPath(new URL('../dist-web/', import.meta.url));

/**
 * Starts a static server of `dir` on 127.0.0.1 (port 0: any free port). Resolves to its URL and
 * a close function. `onResponse(status, url)`, if given, hears of every response sent (tests:
 * a request of the browser's own, such as /favicon.ico, that fails is seen here, not in the page).
 */
export function serve({ dir = DEFAULT_DIR, port = 0, isolate = true, onResponse = undefined } = {}) {
  const root = resolve(dir);
  const server = createServer((req, res) => {
    if (onResponse) res.on('finish', () => onResponse(res.statusCode, req.url ?? '/'));
    const headers = { 'Cache-Control': 'no-store' };
    if (isolate) {
      headers['Cross-Origin-Opener-Policy'] = 'same-origin';
      headers['Cross-Origin-Embedder-Policy'] = 'require-corp';
    }
    let path;
    try {
      path = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
    } catch {
      res.writeHead(400, headers).end('bad request');
      return;
    }
    let file = normalize(join(root, path));
    if (file !== root && !file.startsWith(root + sep)) {
      res.writeHead(403, headers).end('forbidden');
      return;
    }
    try {
      if (statSync(file).isDirectory()) file = join(file, 'index.html');
      const st = statSync(file);
      res.writeHead(200, { ...headers, 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream', 'Content-Length': st.size });
      if (req.method === 'HEAD') res.end();
      else createReadStream(file).pipe(res);
    } catch {
      res.writeHead(404, { ...headers, 'Content-Type': 'text/plain; charset=utf-8' }).end(`not found: ${path}`);
    }
  });
  return new Promise((resolvePromise, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const { port: p } = server.address();
      resolvePromise({ url: `http://localhost:${p}/`, close: () => new Promise((r) => server.close(() => r())) });
    });
  });
}

function usage(message) {
  console.error(`serve: ${message}\nusage: node web/serve.mjs [--port N] [--no-isolation] [--dir DIR]`);
  process.exit(2);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const options = { port: 8080, isolate: true, dir: DEFAULT_DIR };
  for (let k = 0; k < args.length; k++) {
    const a = args[k];
    if (a === '--no-isolation') options.isolate = false;
    else if (a === '--port') {
      const p = Number(args[++k]);
      if (!Number.isInteger(p) || p < 0 || p > 65535) usage('--port must be a whole number from 0 to 65535');
      options.port = p;
    } else if (a === '--dir') {
      if (!args[k + 1]) usage('--dir needs a folder');
      options.dir = args[++k];
    } else usage(`unknown option ${a}`);
  }
  try {
    if (!statSync(join(options.dir, 'index.html')).isFile()) throw new Error();
  } catch {
    usage(`${options.dir} has no index.html: build the playground first (npm run build:web)`);
  }
  serve(options).then(
    ({ url }) => {
      console.log(`grid-lstm playground: ${url}`);
      console.log(options.isolate ? 'cross-origin isolated (COOP/COEP headers sent): threads available' : 'not cross-origin isolated (--no-isolation): one thread');
      console.log('Ctrl-C stops the server');
    },
    (e) => usage(e.code === 'EADDRINUSE' ? `port ${options.port} is in use: pick another with --port` : e.message),
  );
}
