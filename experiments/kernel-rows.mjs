// Throwaway (issue 13, half batch): per-row time of the WASM product kernels at a few row counts,
// for the per-step products of an lstm layer (the recurrent map h·Wᵀ with W [4N, N] packed once,
// and its backward dY·W), so that a thread's half of the batch (B 25 of 50) can be compared with
// the whole; optionally against another checkout's build, side by side. Builds, row counts and
// kernels alternate in rounds in one process; prints the median µs per row per call, its ratio
// to M = 50 in the same build, and (with OTHER) this build / the other.
//   npm run build && node experiments/kernel-rows.mjs [--n 512] [--variant simd] [--m 24,25,50] [--rounds 31] [OTHER]
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const args = process.argv.slice(2);
const opt = (name, def) => (args.includes(name) ? args[args.indexOf(name) + 1] : def);
const N = Number(opt('--n', 512));
const variant = opt('--variant', 'simd');
const Ms = opt('--m', '24,25,26,48,50').split(',').map(Number);
const other = args.find((a, i) => !a.startsWith('--') && !args[i - 1]?.startsWith('--'));
const roots = other ? ['.', other] : ['.'];
const G = 4 * N; // the gates' width
const maxM = Math.max(8, ...Ms);
const fill = (a) => { for (let i = 0; i < a.length; i++) a[i] = Math.sin(i * 0.37) * 0.1; return a; };

const builds = [];
for (const root of roots) {
  const lib = await import(pathToFileURL(resolve(root, 'dist') + '/').href + 'index.js');
  const k = lib.loadWasmKernelsSync({ variant });
  const W = fill(k.alloc(G * N)), X = fill(k.alloc(maxM * N)), Y = fill(k.alloc(maxM * G));
  const dY = fill(k.alloc(maxM * G)), dX = fill(k.alloc(maxM * N));
  const fns = {
    xwt: (M) => k.matmulXWt(Y.subarray(0, M * G), X.subarray(0, M * N), W, null, M, G, N, true),
    dyw: (M) => k.matmulDyW(dX.subarray(0, M * N), dY.subarray(0, M * G), W, M, G, N),
  };
  // Inside the scope, W is packed once (as the model's recurrent weights are).
  k.withConstantWeights(W, G, N, () => { for (const f of Object.values(fns)) f(8); });
  builds.push({ k, W, fns });
}
const median = (a) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)];
const flopsPerSample = 20e6;
const rounds = Number(opt('--rounds', 31));
for (const kind of ['xwt', 'dyw']) {
  // ns[build][M]: per-row ns of each sample; per round, the builds one right after the other.
  const ns = builds.map(() => Object.fromEntries(Ms.map((M) => [M, []])));
  for (let round = 0; round < rounds; round++) {
    for (const M of round % 2 ? [...Ms].reverse() : Ms) {
      const reps = Math.max(2, Math.round(flopsPerSample / (2 * M * N * G)));
      for (const bi of round % 2 ? [...builds.keys()].reverse() : [...builds.keys()]) {
        const { k, W, fns } = builds[bi];
        k.withConstantWeights(W, G, N, () => {
          fns[kind](M);
          const t0 = process.hrtime.bigint();
          for (let i = 0; i < reps; i++) fns[kind](M);
          ns[bi][M].push(Number(process.hrtime.bigint() - t0) / reps / M);
        });
      }
    }
  }
  const ref = ns.map((b) => median(b[Ms.includes(50) ? 50 : Ms[Ms.length - 1]]));
  for (const [bi] of roots.entries()) {
    console.log(
      `${kind} N ${N} (${variant}) ${bi ? 'other' : 'this '}: ` +
        Ms.map((M) => `M ${M} ${(median(ns[bi][M]) / 1000).toFixed(2)} µs/row (${(median(ns[bi][M]) / ref[bi]).toFixed(3)})`).join(', '),
    );
  }
  if (other) {
    // The median of the per-round ratios: each pair of samples ran back to back.
    const ratio = (M) => median(ns[0][M].map((v, r) => v / ns[1][M][r]));
    console.log(`${kind} N ${N} this/other (median of ${rounds} paired rounds): ` + Ms.map((M) => `M ${M} ${ratio(M).toFixed(3)}`).join(', '));
  }
}
