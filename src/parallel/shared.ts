/**
 * What the threads of a step share instead of each making its own copy (src/parallel/pool.ts):
 * one packed copy of each weight matrix for the many-row products (with one thread, the kernels
 * pack each weight once per pass, in withConstantWeights; each thread would pack its own), and
 * one copy of the first layer's tables (the first layer's products of the embedding, Model's
 * FirstLayerTables). Both depend on the weights alone, which change once per step, so before
 * each training step (and each validation batch) the threads prepare them, the work split
 * between them, and the pass that follows reads them on every thread.
 *
 * They are the same numbers as a thread's own copies: packing is a copy, the tables are filled
 * by the same products (as one product for training, row by row for validation, as the Model
 * itself does), so results are bit for bit those of per-thread copies.
 *
 * The coordinator allocates the buffers (it owns allocation) and passes their byte offsets to
 * the workers in a SharedLayout; every thread makes views of them with sharedViews.
 */
import type { FirstLayerTables, Model } from '../nn/model.js';
import type { PackedCopies, SharedPackKind, WasmKernels } from '../nn/wasm.js';

/** A piece of the preparation: pack a weight (Model.weightMatrices index), or fill tables. */
export type Task =
  | { op: 'pack'; weight: number; kind: SharedPackKind }
  /** The whole tables as one product per table (training). */
  | { op: 'tables' }
  /** Rows [from, to) of the tables, row by row (validation). */
  | { op: 'rows'; from: number; to: number };

/** Where the shared copies are (byte offsets in the wasm memory; 0: none) and who prepares what. */
export interface SharedLayout {
  /** Per weight matrix (Model.weightMatrices order): its packed copies. */
  packs: { xwt: number; dyw: number }[];
  /** The first layer's tables (offset and floats): per part of its first map, and the grid's depth table. */
  tables: { first: Place[]; depth: Place | null };
  /** Each thread's tasks before a training step, and before a validation batch. */
  train: Task[][];
  eval: Task[][];
}

/** A buffer in the wasm memory: byte offset, floats. */
interface Place {
  at: number;
  length: number;
}

/** A thread's views of the shared copies. */
export interface SharedViews {
  copies: PackedCopies[];
  tables: FirstLayerTables;
}

/**
 * Allocates the shared copies in the coordinator's kernels and splits their preparation between
 * the threads, which run counts[w] streams × T steps each.
 */
export function planShared(model: Model, kernels: WasmKernels, counts: readonly number[], T: number): SharedLayout {
  const { vocabSize: V, rnnSize: N } = model.config;
  const threads = counts.length;
  const mats = model.weightMatrices();
  // Which threads' passes use the tables (Model.usesTables); validation always does.
  const someTables = counts.some((n) => model.usesTables(n, T));
  const allTables = counts.every((n) => model.usesTables(n, T));
  // xwt: every forward product; dyw: every backward one. A tabulated map's forward product is
  // replaced by the tables (training: when every thread uses them; validation: always).
  const trainTasks: Task[] = [];
  const evalTasks: Task[] = [];
  mats.forEach((m, weight) => {
    if (!(m.tabulated && allTables)) trainTasks.push({ op: 'pack', weight, kind: 'xwt' });
    trainTasks.push({ op: 'pack', weight, kind: 'dyw' });
    if (!m.tabulated) evalTasks.push({ op: 'pack', weight, kind: 'xwt' });
  });
  if (someTables) trainTasks.push({ op: 'tables' });
  for (let w = 0; w < threads; w++) {
    const from = Math.floor((w * V) / threads);
    const to = Math.floor(((w + 1) * V) / threads);
    if (to > from) evalTasks.push({ op: 'rows', from, to });
  }
  // A buffer for each copy some task packs.
  const packed = (weight: number, kind: SharedPackKind) =>
    [...trainTasks, ...evalTasks].some((t) => t.op === 'pack' && t.weight === weight && t.kind === kind);
  const buffer = (weight: number, kind: SharedPackKind) => {
    const { outSize, inSize } = mats[weight];
    return packed(weight, kind) ? kernels.alloc(kernels.packedFloats(kind, outSize, inSize)).byteOffset : 0;
  };
  const packs = mats.map((_, i) => ({ xwt: buffer(i, 'xwt'), dyw: buffer(i, 'dyw') }));
  const place = (a: Float32Array) => ({ at: a.byteOffset, length: a.length });
  const t = model.newFirstLayerTables();
  const tables = { first: t.first.map((a) => place(a as Float32Array)), depth: t.depth === null ? null : place(t.depth as Float32Array) };
  // Cost of a task, in floats packed: a multiply-add of the tables' products counts 1/8 (measured
  // here: packing ~0.6 ns a float, the tables' products ~0.08 ns a multiply-add).
  const firstOut = mats.filter((m) => m.tabulated).reduce((s, m) => s + m.outSize, 0) || 4 * N;
  const cost = (task: Task): number => {
    if (task.op === 'pack') return mats[task.weight].outSize * mats[task.weight].inSize;
    const rows = task.op === 'tables' ? V : task.to - task.from;
    return (rows * firstOut * N) / 8;
  };
  return { packs, tables, train: split(trainTasks, threads, cost), eval: split(evalTasks, threads, cost) };
}

/** Tasks over `threads` threads: the largest first, each to the thread with the least so far (ties: the lowest index). */
function split(tasks: Task[], threads: number, cost: (t: Task) => number): Task[][] {
  const out: Task[][] = Array.from({ length: threads }, () => []);
  const load = new Array<number>(threads).fill(0);
  const order = tasks.map((t, i) => ({ t, i, c: cost(t) })).sort((a, b) => b.c - a.c || a.i - b.i);
  for (const { t, c } of order) {
    const w = load.indexOf(Math.min(...load));
    out[w].push(t);
    load[w] += c;
  }
  return out;
}

/** Views of the shared copies (in `kernels`' memory) for `model`'s weights. */
export function sharedViews(model: Model, kernels: WasmKernels, layout: SharedLayout): SharedViews {
  const view = (at: number, n: number) => (at === 0 ? null : new Float32Array(kernels.memory.buffer, at, n));
  const copies = model.weightMatrices().map((m, i) => ({
    W: m.W as Float32Array,
    N: m.outSize,
    K: m.inSize,
    xwt: view(layout.packs[i].xwt, kernels.packedFloats('xwt', m.outSize, m.inSize)),
    dyw: view(layout.packs[i].dyw, kernels.packedFloats('dyw', m.outSize, m.inSize)),
  }));
  const { first, depth } = layout.tables;
  const tables = { first: first.map((p) => view(p.at, p.length)!), depth: depth && view(depth.at, depth.length) };
  return { copies, tables };
}

/** Runs this thread's preparation tasks (the weights must not change until the pass that reads them is over). */
export function prepare(model: Model, kernels: WasmKernels, views: SharedViews, tasks: readonly Task[]): void {
  for (const t of tasks) {
    if (t.op === 'pack') {
      const c = views.copies[t.weight];
      kernels.packWeight(t.kind, c[t.kind]!, c.W, c.N, c.K);
    } else if (t.op === 'tables') model.fillFirstLayerTables(views.tables, false);
    else model.fillFirstLayerTables(views.tables, true, t.from, t.to);
  }
}

/** Runs `fn` with the kernels using the shared packed copies (prepared for the current weights). */
export function withShared<R>(kernels: WasmKernels, views: SharedViews, fn: () => R): R {
  kernels.sharePacked(views.copies);
  try {
    return fn();
  } finally {
    kernels.sharePacked(null);
  }
}
