// @ts-check
/**
 * Mutation testing of the core (npm run test:mutation; not part of npm test): StrykerJS 9 with
 * the vitest runner. Each mutant runs only the tests that covered its code in the dry run
 * (coverageAnalysis "perTest"); the tests are those of vitest.mutation.config.ts.
 *
 * One file: npx stryker run --mutate src/train/optim.ts
 * The whole list is 3 796 mutants; at the measured 1.5–6 s per mutant (2 runners on 2 cores;
 * more for the model files, whose covering tests are the slow property tests) a full run takes
 * several hours: run it file by file. Scores and what was run: README.md, "Tests".
 *
 * Surviving mutants judged equivalent (no test can tell them apart), by file:
 * - optim.ts: `j <= x.length` in sgd's loop (the extra write is past the end of a typed array,
 *   which JavaScript ignores); `new TsKernels("")` for the default kernels (their dtype only
 *   decides what alloc returns, and the optimiser never allocates through them).
 * - layers.ts: `m <= M` in embeddingForward / embeddingBackward and `j <= n` in dropoutForward /
 *   dropoutBackward (one more iteration that reads ids[M] = undefined or writes past the end of
 *   a buffer of exactly M·N elements: a no-op on typed arrays).
 * - generate.ts: `if (true)` / `prime.length >= 0` before checkPrimetext (checking the empty
 *   prime text finds nothing); in probsBuffer, conditions that only decide whether the working
 *   buffer is allocated again (memory, not results); `sum >= 1 || sum < Infinity` (Σp is at
 *   most V, never Infinity; NaN fails both); `j <= n` in argmax (a[n] is undefined, never
 *   greater); `return V + 1` after the draw loop and `j <= V` in it (reached only if rounding
 *   keeps u ≥ 0 past the last p_j: not constructible through the public API); `u <= 0` for
 *   `u < 0` (differs only when u·Σp minus a partial sum is exactly 0: not strictly equivalent,
 *   but no seed that hits it can be chosen).
 * - params.ts: `false ||` for `typeof v !== 'number'` in checkPositiveInt (Number.isInteger
 *   rejects every non-number with the same message).
 */
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  plugins: ['@stryker-mutator/vitest-runner'],
  vitest: { configFile: 'vitest.mutation.config.ts', related: true },
  coverageAnalysis: 'perTest',
  // Only our TypeScript (assembly/ is AssemblyScript, which Babel cannot parse).
  disableTypeChecks: '{src,test}/**/*.ts',
  mutate: [
    'src/nn/model.ts',
    'src/nn/layers.ts',
    'src/nn/kernels.ts',
    'src/nn/params.ts',
    'src/train/optim.ts',
    'src/train/train.ts',
    'src/infer/generate.ts',
    'src/train/data.ts',
    'src/reference/*.ts',
  ],
  ignorePatterns: ['cv', 'test-output', 'docs', 'bench', 'examples', 'dist', '.ci', 'reports', 'assembly'],
  concurrency: 2,
  // A mutant that loops forever (j-- in a for loop) costs this much: keep it short.
  timeoutMS: 20_000,
  dryRunTimeoutMinutes: 20,
  reporters: ['clear-text', 'progress', 'json', 'html'],
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  tempDirName: '.stryker-tmp',
  cleanTempDir: true,
};
