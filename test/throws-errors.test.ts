/**
 * test/helpers/throws-errors.ts, the setup every run loads: toThrow fails on a thrown value that
 * is not an Error, and otherwise behaves as vitest's own (the function called once).
 */
import { describe, expect, it } from 'vitest';

const throwing = (v: unknown) => () => {
  throw v;
};

describe('toThrow with the setup', () => {
  it('fails when the function throws undefined, a string or a plain object, with or without a message to match', () => {
    for (const v of [undefined, null, 'some message', { message: 'some message' }]) {
      expect(() => expect(throwing(v)).toThrow('some message')).toThrow(/to throw an Error matching some message, but it threw/);
      expect(() => expect(throwing(v)).toThrow(/some message/)).toThrow(/to throw an Error matching \/some message\/, but it threw/);
      expect(() => expect(throwing(v)).toThrowError('some')).toThrow(/but it threw/);
      expect(() => expect(throwing(v)).toThrow()).toThrow(/to throw an Error, but it threw/);
    }
  });

  it("keeps vitest's checks: the message, the class, nothing thrown, .not, a rejected promise; calls the function once", async () => {
    let calls = 0;
    expect(() => {
      calls++;
      throw new RangeError('bad size 3');
    }).toThrow(/size 3/);
    expect(calls).toBe(1);
    expect(throwing(new RangeError('x'))).toThrow(RangeError);
    expect(() => expect(throwing(new Error('other'))).toThrow(/some message/)).toThrow(/other/);
    expect(() => expect(() => 1).toThrow(/some message/)).toThrow(/to throw an error/);
    expect(() => 1).not.toThrow();
    expect(() => expect(throwing(new Error('x'))).not.toThrow()).toThrow();
    await expect(Promise.reject(new Error('boo'))).rejects.toThrow(/boo/);
  });
});
