// @ts-check
/**
 * Mutation testing of the core (npm run test:mutation; not part of npm test): StrykerJS 9 with
 * the vitest runner. Each mutant runs only the tests that covered its code in the dry run
 * (coverageAnalysis "perTest"); the tests are those of vitest.mutation.config.ts.
 *
 * One file: npx stryker run --mutate src/optim.ts
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
    'src/model.ts',
    'src/layers.ts',
    'src/kernels.ts',
    'src/params.ts',
    'src/optim.ts',
    'src/train.ts',
    'src/generate.ts',
    'src/data.ts',
    'src/reference/*.ts',
  ],
  ignorePatterns: ['cv', 'test-output', 'docs', 'bench', 'examples', 'dist', '.ci', 'reports', 'assembly'],
  concurrency: 2,
  timeoutMS: 60_000,
  reporters: ['clear-text', 'progress', 'json', 'html'],
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  tempDirName: '.stryker-tmp',
  cleanTempDir: true,
};
