import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // toThrow fails on a thrown value that is not an Error (vitest lets `throw undefined` pass).
    setupFiles: ['test/helpers/throws-errors.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
