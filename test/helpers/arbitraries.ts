// The arbitraries and helpers live in src/testing.ts (published as grid-lstm/testing).
export * from '../../src/testing.js';
