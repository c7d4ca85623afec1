/**
 * Setup of every vitest run (vitest.config.ts, vitest.mutation.config.ts): `toThrow` and
 * `toThrowError` fail when the function throws something that is not an Error. Vitest 4 lets
 * `expect(() => { throw undefined }).toThrow('any message')` pass, so a mutant that turned an
 * error's construction into `undefined` survived every test of that error's message (found by
 * the mutation runs of issue 18). Everything this project throws is an Error.
 *
 * The function is called once, here; the original matcher then sees a function that throws
 * the same value again (or returns), so its own checks and messages are unchanged.
 */
import { chai } from 'vitest';

chai.use((c, utils) => {
  for (const name of ['toThrow', 'toThrowError']) {
    utils.overwriteMethod(c.Assertion.prototype, name, (original: (...args: unknown[]) => unknown) =>
      function (this: object, ...args: unknown[]) {
        const received: unknown = utils.flag(this, 'object');
        // A promise's rejection (`rejects.toThrow`) arrives as the value itself: left alone.
        if (typeof received === 'function' && !utils.flag(this, 'promise')) {
          let threw = false;
          let thrown: unknown;
          try {
            received();
          } catch (e) {
            threw = true;
            thrown = e;
          }
          if (threw && !(thrown instanceof Error) && !utils.flag(this, 'negate')) {
            const what = typeof thrown === 'string' ? JSON.stringify(thrown) : String(thrown);
            throw new c.AssertionError(`expected the function to throw an Error${args.length > 0 ? ` matching ${String(args[0])}` : ''}, but it threw ${what}`);
          }
          utils.flag(this, 'object', threw ? () => { throw thrown; } : () => undefined);
        }
        return original.apply(this, args);
      });
  }
});
