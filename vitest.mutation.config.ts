import { defineConfig } from 'vitest/config';

/**
 * The vitest config of mutation runs (npm run test:mutation, stryker.config.mjs): the tests that
 * exercise src/ in-process. Left out: the tests that run the built CLI (dist/, which Stryker does
 * not mutate) in child processes, and the docs, plot, diagram and browser tests, which do not
 * test the mutated files.
 */
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: [
      'test/cli.test.ts',
      'test/kill.test.ts',
      'test/reliability.test.ts',
      'test/docs.test.ts',
      'test/plot.test.ts',
      'test/diagram.test.ts',
      'test/browser/**',
      'test/trace.test.ts',
      // The README's commands and the terminal's behaviour, run through the built CLI.
      'test/readme.test.ts',
      'test/terminal.test.ts',
      // MUTATION_EXCLUDE=a,b leaves out more test files (e.g. to measure a score without them).
      ...(process.env.MUTATION_EXCLUDE ?? '').split(',').filter(Boolean),
    ],
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
