// @ts-check
/**
 * Mutation testing of the core (npm run test:mutation; not part of npm test): StrykerJS 9 with
 * the vitest runner. Each mutant runs only the tests that covered its code in the dry run
 * (coverageAnalysis "perTest"); the tests are those of vitest.mutation.config.ts.
 *
 * One file: npx stryker run --mutate src/train/optim.ts
 * The whole list is about 3 900 mutants (3 796 counted by the first run, before cells.ts); at the measured 1.5–8 s per mutant a full run takes
 * several hours: run it file by file (`--concurrency 1` on a shared machine). The matrix
 * products of src/nn/kernels.ts (matmulXWt … matmulDyTX) are the inner loops of every model test:
 * instrumented (a coverage counter and a mutant switch per multiply-add) they make the dry run
 * of kernels.ts take 12 minutes instead of under one; mutate the rest of the file by line
 * ranges (`--mutate src/nn/kernels.ts:256-376`: lstmForward … scatterAddRows). Scores and what was run: docs/testing.md,
 * "Mutation testing".
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
 * - kernels.ts (the two equivalents of matmulDyW / matmulDyTX are listed below): `x > 0` for `x >= 0` in sigmoid (both branches give exactly 0.5 at
 *   x = 0, and at −0); `j <= x.length` / `j <= g.length` in
 *   rmsprop, adam and clip (past the end of the array itself: ignored); `>=` for `>` in the max
 *   searches of softmaxScaled and logSoftmaxNll (the same max); `v >= c` / `v <= -c` in clip
 *   (sets ±c where g already is ±c).
 * - model.ts: the free list starting as `["Stryker was here"]` (a string of length 16, never
 *   taken: every workspace block is longer); `l.outSize * V === grad.length` (→ true, false, !==,
 *   `/ V`) in tableBackward (a table part's gradient buffer given whole or cut to V·outSize:
 *   only its first V·outSize elements are written and read); `batch.y === null` → false and
 *   `t·B − b` / `t / B` for the targets of a step() pass (y null: the loss of a step is
 *   discarded, and the targets left there are valid ids or −1); the fast path for the last
 *   shape → false (the map then finds the same workspace); `len <= …` for `len < …` in
 *   takeBlock (of two free blocks of equal length, the later: either serves); `new Array(L)`
 *   → `new Array()` (inp, dInit: filled by index before they are read); dropBuf / masks
 *   `[]` → a one-string array without dropout (read only with dropout); `part !== undefined`
 *   → true in the second branch of the masks (the first takes every pass without a part);
 *   `t <= T` in the masks of a part (a row past the end of each mask, ignored, drawn from a
 *   local generator: the model's is advanced by a fixed count); a workspace's first
 *   `at` (replaced before use); `if (grid)` → true before `dCd.fill(0)` (dCd is empty for the
 *   stacked models); `j <= bn` in seedFinalGradient (adds past the end of the view dhT:
 *   ignored).
 * - kernels.ts, matmulDyW and matmulDyTX: `if (false)` for `if (d === 0) continue` (skipping a
 *   zero entry of dY: adding 0·w changes nothing for finite weights and inputs, which the
 *   Trainer guarantees by stopping on a non-finite value).
 * - reference/ops.ts: `<=` for `<` in the loop heads of linear (rows, and outputs: o = nOut
 *   writes the next row's first element, which that row then overwrites), lstmCell,
 *   lstmCellBackward, gruCell (2), gruCellBackward (2), logSoftmaxNll over v (as linear's outputs)
 *   and logSoftmaxNllBackward over rows (y[B] is undefined: index NaN, ignored): the one extra
 *   iteration writes past the end of arrays the function itself allocated at their exact size
 *   (ignored by typed arrays), or where the next iteration writes again.
 * - reference/models.ts: `s.c` for `s?.c` in checkState (reached only when s.h is an array, so
 *   s is not null or undefined).
 * - train/train-core.ts (the Trainer): `o.learningRateDecay < 1` → true or `<= 1` in step() and
 *   logLines() (a decay of 1 multiplies the rate by 1); `() => undefined` for evaluate()'s
 *   `() => false` (stop() is read only for its truth); `best < 0` → false in
 *   validationsSinceBest's return (an empty history gives 0 − 1 + 1 = 0 either way);
 *   `c.iteration === bestIteration` → true in earlyStop (the best is the first validation with the
 *   lowest loss and the records are in order: an earlier record with that loss would be an
 *   earlier validation as good); `?? ["Stryker was here"]` for a text run's accuracy history in
 *   logLines (the map is read only by the addition task, whose history always has one);
 *   `valLoss <= this.bestValLoss` (sets the best to an equal value); `task === 'addition'` → true
 *   for the validation's accuracy (lastAccuracy is null in a text run: only an addition
 *   validation sets it); `val[i][0] >= iteration` → true and `val[i][0] === iteration` → true in
 *   validatedAt (the history holds no validation past the current iteration);
 *   `savedAt === this.iteration && this.lastCheckpoint` → false in current() (when it holds, the
 *   search that follows finds the same file, just written); `this.iteration === total` → false
 *   in the loop's validation condition (the loop then ends and the at-the-end path runs the same
 *   validation, checkpoint and outcome); in resume, `changes.learningRate !== undefined` → true
 *   (the new rate is undefined either way) and `n > 1` for `n >= 1` (a text of one character
 *   gives 0 batches either way); `keep === 'all'` → false or `""` in keptCheckpoints
 *   (`slice(-keepCount('all'))` is `slice(-null)`, the whole list); `a === b` → false in
 *   sameVocab (the same vocabulary compares equal element by element too); `false ||` for
 *   `typeof v !== 'number'` in validateTrainOptions' posInt and num (Number.isInteger and
 *   Number.isFinite reject every non-number with the same message); `this.threads === 1` → false
 *   in startThreads (a pool of one thread starts no worker, and pool() returns null for one
 *   thread); `if (true)` for `if (!Number.isFinite(paramNorm))` (every weight is then checked
 *   each step and found finite); `j >= s.offset` → true in elementName (the layout is contiguous
 *   and in order: the first tensor ending past j holds it) and its `at element ${j}` (unreachable:
 *   the index is always inside the layout); in runAsync, `threadsStartAsync && threads > 1` → true
 *   or `||`, `threads > 1` → true or `>= 1` (startThreads returns at once for one thread and is
 *   optional where threads start synchronously); `i++` in validatedAt (unreachable: see above);
 *   `{}` for MemoryCheckpointStore.openLog's body (undefined for null: the log is used only
 *   through `?.`); `g.setImmediate` → true or false in nextTurn (Node has setImmediate and
 *   MessageChannel: either lets the event loop turn); `failed.size > 0` → true or `>= 0` in
 *   saveCheckpoint (with no failed deletion the filter keeps exactly `kept`, in its order).
 * - train/train.ts: `n <= buf.length` or `true` in isOwnLog's read loop (a read of 0 bytes ends
 *   it); `header > 0` for `header >= 0` (a log starting with a newline is another run's either
 *   way: no run's log starts with one); `true` for `written = false`, `if (true)` for
 *   `if (written)` and `""` for the default probe's text in prepareCheckpointDir (the unlink of a
 *   probe never written fails and is ignored; the probe's bytes are checked by its write, not
 *   read); `p === target` → true, the message `${p} is not a directory` and `dirname(p) === p` →
 *   false in makeDirectories (a file above the target makes stat fail with ENOTDIR first; the root
 *   always exists); `this.fd === null` → false in LossLog.close (closing a closed log then fails
 *   inside the try and sets fd to null again).
 * - cells.ts: `blocks: [""]` for the RNN's `['a']` (the name of its one block is read by
 *   nothing: the model takes only the count; the gates looked up by name are the LSTM's and
 *   the GRU's).
 * - data.ts: the cache test in loadDefaultCorpus → true (an equal string built again); 7 of
 *   the sort's mutants (no sort, `() => undefined`, index order, always positive: the package
 *   lists its speeches in year order already, so each leaves the same corpus); readToEnd's
 *   `st.size === 0` → false (a size-0 regular file with content outside /proc and /sys needs
 *   another pseudo file system: not strictly equivalent) and its catch (`{}`, `return true`:
 *   statfs failing on a file just opened; reading whole gives the same bytes); `false` and `{}`
 *   for the isDirectory checks of readTextFile and ByteSource, and that error's message
 *   (readFileSync of a directory fails with EISDIR, which fileError words the same); `true`
 *   for `bytes.length >= 3` / `len >= 3` before a byte order mark (bytes past the end are
 *   undefined or the buffer's zeros); `fd !== null` → true (closeSync(null) throws inside the
 *   ignored try); the `carry > 3 || carry < 0` check (5: an invariant no input breaks);
 *   `6 / (need - k)` (a shift by Infinity is a shift by 0, like 6·0); `count >= cap` → false /
 *   `>` and latin1's `count + len > cap` → false / `-` (the check after the pass, `again !==
 *   count`, gives the same error; latin1 passes read exactly `size` bytes); `cp <= seen.length`,
 *   `true` / `<=` for `cp < map.length` (typed arrays ignore reads and writes past the end);
 *   `true` / `>=` for `skipped > 0` (slicing nothing off copies the same ids).
 * - data-core.ts: in buildVocab and encode, `i <= n` and, for `i + 1 < n` before
 *   `charCodeAt(i + 1)`, `true`, `i + 1 <= n` and `i - 1 < n` (past the end charCodeAt gives
 *   NaN, which is neither surrogate, and seenBmp[NaN] = 1 is an ignored write); `u <= 0x10000`
 *   (seenBmp[0x10000] is undefined); in vocabFromChars `false` for `c.length === 0` and for
 *   `c.length > 2` (shortcuts: the count of code points, `[...c].length !== 1`, rejects both);
 *   `count === n` → false in encode (slicing the whole array copies the same ids); in decode,
 *   `second > 0` (a second UTF-16 unit is a low surrogate, never 0) and `true` / `<` for
 *   `len >= DECODE_CHUNK` (a flush after every id: slower, the same string); `n > 1` for
 *   `n >= 1` in CharLoader and in trainingTooShortMessage, and `true` there (n = 0 or 1 give 0
 *   batches either way, and −1 batches fail `ok` as 0 do); `trainFrac + valFrac >= 1 + ε` and
 *   `testFrac >= ε` in splitCounts (differ only at a sum or test fraction of exactly 1e-9, the
 *   edge of the round-off slack: not strictly equivalent, but no split rests on it);
 *   `nbatches + ntrain` in splitCounts' min (with a test split the min never binds:
 *   ⌊n·t + ε⌋ + ⌊n·v + ε⌋ ≤ n when t + v < 1 − ε); in trainingTooShortMessage `ok(have)` →
 *   false and `need <= have` → false / `need < have` (two guards of one case, each enough
 *   alone: ok is monotone in the batch count, so the search never stops at or below `have`
 *   unless `ok(have)`).
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
    'src/nn/cells.ts',
    'src/nn/params.ts',
    'src/train/optim.ts',
    'src/train/train-core.ts',
    'src/train/train.ts',
    'src/infer/generate.ts',
    'src/train/data.ts',
    'src/train/data-core.ts',
    'src/reference/*.ts',
  ],
  // dist/ is copied (not mutated): tests that start threads run dist/parallel/worker.js.
  ignorePatterns: ['cv', 'test-output', 'docs', 'bench', 'examples', '.ci', 'reports', 'assembly'],
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
