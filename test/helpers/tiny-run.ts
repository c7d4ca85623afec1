/**
 * What the tests of training runs share: a small text and the options of a model small enough
 * that a test can train, stop and resume it many times in a few seconds.
 */
import { DEFAULT_TRAIN_OPTIONS, type TrainOptions } from '../../src/train/train.js';

/** 12 lines, 660 characters, 37 distinct. */
export const FOX_TEXT = Array.from({ length: 12 }, (_, i) => `the quick brown fox ${i % 7} jumps over the lazy dog, said ${'abcdefg'[i % 7]}.\n`).join('');

/** char-rnn's defaults but for a 1-layer model of 4 units on batches of 2 × 8 characters; then `over`. */
export function tinyOptions(over: Partial<TrainOptions> = {}): TrainOptions {
  return { ...DEFAULT_TRAIN_OPTIONS, rnnSize: 4, numLayers: 1, batchSize: 2, seqLength: 8, ...over };
}
