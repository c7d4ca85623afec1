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
    // As in vitest.config.ts: toThrow fails on a thrown value that is not an Error.
    setupFiles: ['test/helpers/throws-errors.ts'],
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
      // The same: files whose tests mostly run dist/ (built, not mutated), slow and unable to
      // kill a mutant there — the CLI's parser and its runs, the addition task's and the depth
      // experiment's commands, PyTorch against the CLI, the threads' workers
      // (dist/parallel/worker.js), the CLI's checkpoint choice and unknown characters.
      // (keep, losslog, resume-lr and resume-validation stay in: they test the Trainer
      // in-process, and their few CLI runs cover no mutant, so cost only the dry run.)
      'test/args.test.ts',
      'test/addition-cli.test.ts',
      'test/experiment-depth.test.ts',
      'test/pytorch.test.ts',
      'test/pytorch-readme.test.ts',
      'test/parallel.test.ts',
      'test/choose-checkpoint.test.ts',
      'test/eval-unknown.test.ts',
      // MUTATION_EXCLUDE=a,b leaves out more test files (e.g. to measure a score without them).
      ...(process.env.MUTATION_EXCLUDE ?? '').split(',').filter(Boolean),
    ],
    // Each property draws a quarter of its cases (at least one) unless PROPERTY_RUNS_SCALE says
    // otherwise: a surviving mutant runs every test that covers it, and the model's property
    // tests (gradcheck, reference) cover nearly every line of the model files. npm test keeps
    // the full counts. (gradcheck also asserts that some case had dropout, each with chance ½:
    // at 6 cases instead of 25 a dry run fails on that about once in 64 — run it again.)
    env: { PROPERTY_RUNS_SCALE: process.env.PROPERTY_RUNS_SCALE ?? '0.25' },
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
