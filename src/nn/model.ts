/**
 * The character-level language models, composed from the operations in src/nn/layers.ts, the
 * cells in src/nn/cells.ts and the kernels in src/nn/kernels.ts, with explicit forward and
 * backward passes (truncated BPTT over T steps from a given initial state).
 *
 * Notation: B batch, T time steps, N = rnnSize, L = numLayers, V = vocabulary size. Inside,
 * every activation is time-major: row t·B + b of a [T·B, ·] matrix is sequence b at step t, and
 * a state history [(T+1)·B, N] keeps the initial state in rows 0..B−1.
 *
 * Stacked LSTM, GRU and RNN (char-rnn's `lstm`, `gru`, `rnn`), one cell per layer:
 *   x¹ = embedding[token];  per layer l:  a = i2h(xˡ) + h2h(hˡ_{t−1});  hˡ_t (and cˡ_t) = cell(a, …)
 *   x^{l+1} = dropout(hˡ_t);  logits = decoder(dropout(h^L_t)).
 * (The GRU's candidate reads h2h(r⊙h_{t−1}) instead: src/nn/cells.ts.)
 *
 * 2D Grid LSTM (Kalchbrenner et al. 2015, the 2-LSTM of char-rnn's grid-lstm fork): two LSTMs per
 * layer, one along time and one along depth. The depth dimension enters layer 1 with
 * h_d = embedding[token], c_d = 0 (section 4.3: the input is projected into the first block).
 *   time LSTM:  a = time.t2h(hˡ_{t−1}) + time.d2h(h_d);  (cˡ_t, hˡ_t) = LSTM(a, cˡ_{t−1})
 *   depth LSTM, prioritised (section 3.2: it sees the new time hidden state):
 *               a = depth.t2h(hˡ_t) + depth.d2h(h_d);    (c_d, h_d) = LSTM(a, c_d)   → layer l+1
 *   logits = decoder(dropout(h_d of the top layer)).
 * The depth weights are tied across layers (section 3.5) unless `tieWeights` is false.
 *
 * Order of computation: a layer's inputs from below are known for all T steps before the layer
 * runs, so each layer is computed over all T steps before the next one (the same numbers as the
 * step-by-step order, since nothing flows downward). This lets every linear map that does not
 * sit on the time recurrence — i2h, d2h, the whole depth LSTM, the decoder, and every weight
 * gradient — run as one product over T·B rows; only t2h/h2h are applied step by step, by the one
 * driver that runs every cell along time (forwardThroughTime / backwardThroughTime).
 */
import { type Cell, type CellSteps, cellOf, partsOf } from './cells.js';
import { type Float, type Kernels, TsKernels } from './kernels.js';
import {
  type Linear,
  dot,
  dropoutBackward,
  dropoutForward,
  dropoutMask,
  linearBackward,
  linear2Forward,
  linearForward,
} from './layers.js';
import {
  type FullModelConfig,
  type ModelConfig,
  type TensorSpec,
  aModel,
  checkPositiveInt,
  normalizeConfig,
  paramLayout,
  specialBiases,
} from './params.js';
import { Rng } from './rng.js';

/**
 * Recurrent state carried across time: per layer, h of shape [B, N] and the cell c, [B, N] for
 * the LSTMs (lstm, grid_lstm) and empty (length 0) for gru and rnn, which carry h only.
 */
export interface State {
  h: Float[];
  c: Float[];
}

/** A batch of token ids, each of shape [B, T] row-major (element (b, t) at b·T + t). */
export interface Batch {
  x: ArrayLike<number>;
  /**
   * Targets: the next character of each position; a negative target (−1) is not scored: it adds
   * nothing to the loss and gets no gradient (PyTorch's ignore_index; the addition task scores
   * only the answer's characters, src/train/addition.ts).
   */
  y: ArrayLike<number>;
  batchSize: number;
  seqLength: number;
}

export interface ForwardOptions {
  /** Apply dropout (when the model has dropout > 0). Default: true in forwardBackward, false in forward. */
  training?: boolean;
  /** Random source for the dropout masks. Default: the model's own `rng`. */
  rng?: Rng;
  /**
   * This batch is streams first … first+B−1 of a batch of `total` streams, split across threads
   * (src/parallel/): the dropout masks are those rows of the whole batch's masks (and `rng`
   * ends where the whole batch's draws leave it), and the loss, objective and gradients are
   * this part's share of the whole batch's (the parts' add up to the whole). `scored`: the
   * scored targets (≥ 0) of the whole batch, which the mean loss is over (total·T when no
   * target is −1); always needed, since a part cannot see the other parts' targets.
   */
  part?: { first: number; total: number; scored: number };
}

export interface BackwardOptions extends ForwardOptions {
  /** ∂ℓ/∂(final state) from whatever follows this chunk (e.g. the next chunk's dInitialState). */
  dFinalState?: State;
  /** Add to the gradient buffer instead of overwriting it. Default false. */
  accumulate?: boolean;
  /**
   * The first layer's tables of the current weights, filled by fillFirstLayerTables (as one
   * product), used instead of computing them when this pass uses tables (V ≤ B·T): for threads
   * that share one copy (src/parallel/). The same numbers, so the same results.
   */
  tables?: FirstLayerTables;
}

/**
 * The first layer's products of the embedding, tabulated per vocabulary entry (see inference()):
 * per part of the first layer's input map, [V, outSize] (stacked: i2h; grid_lstm: time.d2h),
 * and for grid_lstm the depth LSTM's depth.d2h, [V, 4N] (else null).
 */
export interface FirstLayerTables {
  first: Float[];
  depth: Float | null;
}

export interface ForwardResult {
  /** Mean negative log-likelihood per scored character (nats); 0 when no target is scored. */
  loss: number;
  /** State after the last step, to carry to the next batch (fresh buffers). */
  finalState: State;
}

export interface ForwardBackwardResult extends ForwardResult {
  /**
   * The scalar whose gradient is left in `grads`: the NLL summed over the scored positions and
   * divided by B, plus ⟨dFinalState, finalState⟩ when given. With every target scored this is
   * char-rnn's objective, the sum over the T steps of the batch-mean NLL (= loss·T); in general
   * it is loss·scored/B.
   */
  objective: number;
  /** ∂objective/∂(initial state). */
  dInitialState: State;
}

/** Per-layer views of the parameters that a layer uses (stacked: one Linear per part of its cell). */
interface StackedLayer {
  i2h: Linear[];
  h2h: Linear[];
}
interface GridLayer {
  timeT2h: Linear;
  timeD2h: Linear;
  depthT2h: Linear; // the same object for every layer when tied
  depthD2h: Linear;
  /** The time LSTM's maps as the driver takes them, per part of the LSTM cell (one): [time.d2h], [time.t2h]. */
  time: StackedLayer;
}

/** Activations kept for the backward pass, and scratch space, for one (B, T). */
interface Workspace {
  B: number;
  T: number;
  ids: Int32Array; // [T·B] inputs, time-major
  targets: Int32Array; // [T·B] (negative: not scored)
  scored: number; // how many targets are scored (≥ 0)
  emb: Float; // [T·B, N]
  inp: Float[]; // per layer: its input from below, [T·B, N] (after dropout)
  dropBuf: Float[]; // per layer ≥ 1 and for the top: dropout outputs, [T·B, N]
  masks: Float[]; // per dropout site (layer inputs 1..L−1, then the top): [T·B, N]
  h: Float[]; // per layer: (time) hidden history [(T+1)·B, N]
  c: Float[]; // per layer: (time) cell history [(T+1)·B, N] (empty without a cell: gru, rnn)
  gates: Float[]; // per layer: (time) pre-activations → activations [T·B, G·N], part after part (G blocks)
  tc: Float[]; // per layer: tanh(c) [T·B, N] (empty without a cell)
  rh: Float[]; // gru, per layer: r⊙h_{t−1} [T·B, N], the candidate's recurrent input
  // grid_lstm only: the depth LSTM of each layer
  dGates: Float[]; // [T·B, 4N]
  cd: Float[]; // depth cell out [T·B, N]
  tcd: Float[]; // tanh(cd) [T·B, N]
  hd: Float[]; // depth hidden out [T·B, N]
  zeros: Float; // [T·B, N] the depth cell entering layer 1
  top: Float; // [T·B, N] decoder input
  logits: Float; // [T·B, V] logits, then log-probabilities, then their gradient
  // backward scratch
  dG: Float; // [T·B, G·N] part after part
  dH: Float; // [(T+1)·B, N]
  dXa: Float; // [T·B, N]
  dXb: Float; // [T·B, N]
  dCd: Float; // [T·B, N]
  dc: Float; // [B, N] (empty without a cell)
  dRh: Float; // gru: [B, N]
  /**
   * Views made once (the kernels check each view they are given): per layer, its cell's views
   * step by step (steps: a, h, c, tc, rh, and the shared dA, dh, dRh) and its pre-activations
   * part by part over all steps (parts, [T·B, blocks·N]); dG part by part (dParts); per layer
   * hNew = h steps 1..T and hOld = steps 0..T−1.
   */
  at: { steps: CellSteps[]; parts: Float[][]; dParts: Float[]; hNew: Float[]; hOld: Float[] };
  /** The one allocation every buffer above is carved from; reused when the workspace is dropped. */
  block: Float;
}

/** Workspace buffers start at multiples of 4 elements (16 bytes in float32, as alloc's are). */
const padTo4 = (n: number) => (n + 3) & ~3;

/**
 * Read-only views of the activations the last forward() or step() computed, from
 * {@link Model.activations}. Rows are time-major (row t·B + b is sequence b at step t).
 */
export interface Activations {
  readonly B: number;
  readonly T: number;
  /**
   * Per layer, its (time) cell — for lstm, gru and rnn the layer's only cell; the hidden
   * history h [(T+1)·B, N], whose rows 0..B−1 hold the state the pass started from; and:
   * - lstm, grid_lstm: the gates as activated, [T·B, 4N] in blocks i, f, o, g; the cell history
   *   c [(T+1)·B, N] (rows as h's); tanh(c) [T·B, N];
   * - gru: the gates as activated, [T·B, 2N] in blocks z, r, then (at T·B·2N) the candidate n
   *   [T·B, N]; c and tc empty;
   * - rnn: the pre-activations a [T·B, N] (h = tanh(a)); c and tc empty.
   */
  readonly gates: readonly Float[];
  readonly c: readonly Float[];
  readonly h: readonly Float[];
  readonly tc: readonly Float[];
  /**
   * grid_lstm, per layer, the depth LSTM (empty for lstm): gates [T·B, 4N], the depth cell c_d,
   * tanh(c_d) and the depth hidden h_d that go to layer l+1 (the top one to the decoder), [T·B, N].
   */
  readonly depthGates: readonly Float[];
  readonly cd: readonly Float[];
  readonly tcd: readonly Float[];
  readonly hd: readonly Float[];
  /** The log-probabilities of the next token, [T·B, V]. */
  readonly logp: Float;
}

/** The count consecutive blocks of `size` elements of a, as views. */
function blocks(a: Float, size: number, count: number): Float[] {
  return Array.from({ length: count }, (_, t) => a.subarray(t * size, (t + 1) * size));
}

export interface CreateModelOptions {
  /** The kernels (and so the element type) to compute with. Default: TypeScript, float32. */
  kernels?: Kernels;
  /** Shorthand for `kernels: new TsKernels(dtype)`. */
  dtype?: 'float32' | 'float64';
  /** Seed for initialisation and dropout. Default 123 (char-rnn's). */
  seed?: number;
  /**
   * Parameters and gradients in these buffers (of the layout's size, allocated by `kernels`'
   * owner: another thread's views of shared memory, src/parallel/) instead of new ones; the
   * parameters are then left as they are, not initialised.
   */
  buffers?: { params: Float; grads: Float };
}

export class Model {
  readonly config: FullModelConfig;
  readonly kernels: Kernels;
  /** All parameters, one flat buffer; `layout` says where each named tensor sits. */
  readonly params: Float;
  /** Gradients, laid out exactly like `params`. */
  readonly grads: Float;
  readonly layout: TensorSpec[];
  /** Random source for dropout masks (training). */
  rng: Rng;

  private readonly specByName: Map<string, TensorSpec>;
  /** The cell that runs along time in every layer (grid_lstm: the LSTM, which is its depth cell too). */
  private readonly cell: Cell;
  private readonly stacked: StackedLayer[] = [];
  private readonly grid: GridLayer[] = [];
  private readonly embedding: { E: Float; dE: Float };
  private readonly decoder: Linear;
  private workspaces = new Map<string, Workspace>();
  private lastWorkspace: Workspace | null = null;
  /**
   * The blocks of dropped workspaces, free for the next new shape (kernels such as WasmKernels
   * never take memory back, so a block must be reused or it is lost), and whether any workspace
   * has been dropped yet: until then blocks are allocated at their exact size; after that, in
   * powers of two, so that a caller cycling through many shapes uses a bounded amount of memory
   * (at most 5 blocks of each size class at or above any size: about 20 times the largest
   * workspace, plus the first 4 exact ones).
   */
  private freeBlocks: Float[] = [];
  private dropped = false;
  /**
   * While a pass uses them (inside inference(), and in forwardBackward() when the vocabulary is
   * no larger than the batch): the first layer's products of the embedding, tabulated per
   * vocabulary entry, [V, G·N] (stacked: i2h, one table per part of its cell; grid_lstm:
   * time.d2h and depth.d2h, [V, 4N] each). Else null.
   */
  private tables: FirstLayerTables | null = null;
  /**
   * The buffers of the tables this model computes, and of their gradient (per part of the first
   * table, views of one buffer [V, G·N]), kept from one pass to the next.
   */
  private ownTables: FirstLayerTables | null = null;
  private tableGrads: Float[] | null = null;
  /** Whether inference() is running. */
  private inInference = false;

  constructor(config: ModelConfig, options: CreateModelOptions = {}) {
    this.config = normalizeConfig(config);
    if (options.kernels && options.dtype && options.kernels.dtype !== options.dtype) {
      throw new Error(`dtype ${options.dtype} does not match the kernels' dtype ${options.kernels.dtype}`);
    }
    this.kernels = options.kernels ?? new TsKernels(options.dtype ?? 'float32');
    this.layout = paramLayout(this.config);
    this.specByName = new Map(this.layout.map((s) => [s.name, s]));
    const total = this.layout[this.layout.length - 1].offset + this.layout[this.layout.length - 1].size;
    if (options.buffers && !(options.buffers.params.length === total && options.buffers.grads.length === total)) {
      throw new Error(`buffers must hold the ${total} parameters and gradients of this config`);
    }
    this.params = options.buffers?.params ?? this.kernels.alloc(total);
    this.grads = options.buffers?.grads ?? this.kernels.alloc(total);
    this.rng = new Rng(options.seed ?? 123);
    this.cell = cellOf(this.config.model);

    const N = this.config.rnnSize;
    const G = this.cell.blocks.length;
    const lin = (prefix: string, inSize: number, outSize: number): Linear => ({
      W: this.param(`${prefix}.weight`),
      b: this.param(`${prefix}.bias`),
      dW: this.grad(`${prefix}.weight`),
      db: this.grad(`${prefix}.bias`),
      inSize,
      outSize,
    });
    this.embedding = { E: this.param('embedding.weight'), dE: this.grad('embedding.weight') };
    this.decoder = lin('decoder', N, this.config.vocabSize);
    const tiedT2h = this.config.model === 'grid_lstm' && this.config.tieWeights ? lin('depth.t2h', N, 4 * N) : null;
    const tiedD2h = this.config.model === 'grid_lstm' && this.config.tieWeights ? lin('depth.d2h', N, 4 * N) : null;
    for (let l = 0; l < this.config.numLayers; l++) {
      if (this.config.model !== 'grid_lstm') {
        const part = (prefix: string) => partsOf(lin(prefix, N, G * N), this.cell, N);
        this.stacked.push({ i2h: part(`layers.${l}.i2h`), h2h: part(`layers.${l}.h2h`) });
      } else {
        const timeT2h = lin(`layers.${l}.time.t2h`, N, 4 * N);
        const timeD2h = lin(`layers.${l}.time.d2h`, N, 4 * N);
        this.grid.push({
          timeT2h,
          timeD2h,
          depthT2h: tiedT2h ?? lin(`layers.${l}.depth.t2h`, N, 4 * N),
          depthD2h: tiedD2h ?? lin(`layers.${l}.depth.d2h`, N, 4 * N),
          time: { i2h: [timeD2h], h2h: [timeT2h] },
        });
      }
    }
    if (!options.buffers) this.initParameters(this.rng);
  }

  /**
   * char-rnn's initialisation: every parameter uniform(−0.08, 0.08), drawn in layout order, then
   * the cell's special biases (the LSTMs: the forget-gate block of the first linear map of each
   * LSTM set to 1; gru and rnn have none).
   */
  initParameters(rng: Rng): void {
    for (let j = 0; j < this.params.length; j++) this.params[j] = rng.uniformRange(-0.08, 0.08);
    for (const { name, from, to, value } of specialBiases(this.config)) this.param(name).fill(value, from, to);
  }

  // -------------------------------------------------------------------------------------------
  // Named parameters

  /** Names of the parameter tensors, in layout order. */
  parameterNames(): string[] {
    return this.layout.map((s) => s.name);
  }

  private spec(name: string): TensorSpec {
    const s = this.specByName.get(name);
    if (!s) {
      throw new Error(`no parameter named ${JSON.stringify(name)}; this model has: ${this.parameterNames().join(', ')}`);
    }
    return s;
  }

  /** A live view of parameter `name` (writes change the model). */
  param(name: string): Float {
    const s = this.spec(name);
    return this.params.subarray(s.offset, s.offset + s.size);
  }

  /** A live view of the gradient of parameter `name`. */
  grad(name: string): Float {
    const s = this.spec(name);
    return this.grads.subarray(s.offset, s.offset + s.size);
  }

  /** The shape of parameter `name`. */
  shape(name: string): number[] {
    return [...this.spec(name).shape];
  }

  /** Copies `values` into parameter `name`; its length must equal the tensor's size. */
  setParam(name: string, values: ArrayLike<number>): void {
    const s = this.spec(name);
    if (values.length !== s.size) {
      throw new Error(`parameter ${name} has ${s.size} elements (shape [${s.shape}]), got ${values.length} values`);
    }
    this.params.set(values, s.offset);
  }

  /** Every parameter as a copy, keyed by name. */
  getParams(): Map<string, { shape: number[]; data: Float }> {
    return new Map(this.layout.map((s) => [s.name, { shape: [...s.shape], data: this.param(s.name).slice() }]));
  }

  // -------------------------------------------------------------------------------------------
  // State

  /**
   * An all-zero state for batch size B (c of length 0 per layer for gru and rnn). Ordinary typed
   * arrays of the kernels' dtype, which the garbage collector takes back: a pass only copies a
   * state in (and step() writes it), so it need not live in the kernels' memory, from which
   * WasmKernels never take memory back (every sampling and validation starts from one).
   */
  zeroState(B: number): State {
    checkPositiveInt('batch size', B);
    const n = B * this.config.rnnSize;
    const L = this.config.numLayers;
    const make = (len: number): Float => (this.kernels.dtype === 'float64' ? new Float64Array(len) : new Float32Array(len));
    return {
      h: Array.from({ length: L }, () => make(n)),
      c: Array.from({ length: L }, () => make(this.cell.hasCell ? n : 0)),
    };
  }

  private checkState(state: State, B: number, what: string): void {
    const L = this.config.numLayers;
    const n = B * this.config.rnnSize;
    const nc = this.cell.hasCell ? n : 0;
    if (!state || !Array.isArray(state.h) || !Array.isArray(state.c) || state.h.length !== L || state.c.length !== L) {
      throw new Error(`${what} must have h and c arrays of ${L} layers (use model.zeroState(${B}))`);
    }
    for (let l = 0; l < L; l++) {
      if (state.h[l]?.length !== n || state.c[l]?.length !== nc) {
        const sizes = `B·N = ${B}·${this.config.rnnSize} = ${n}`;
        const want = this.cell.hasCell ? `h and c of length ${sizes}` : `h of length ${sizes} and c of length 0 (${aModel(this.config.model)} has no cell)`;
        throw new Error(`${what} layer ${l} must have ${want}, got ${state.h[l]?.length} and ${state.c[l]?.length}`);
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // Forward and backward

  /** Forward only: the mean NLL per character of a batch, and the final state. */
  forward(batch: Batch, state: State, options: ForwardOptions = {}): ForwardResult {
    const ws = this.prepare(batch, state, options.part);
    const nll = this.forwardPass(ws, state, options.training ?? false, options.rng ?? this.rng, options.part);
    return { loss: meanLoss(nll, ws, options.part), finalState: this.readFinalState(ws) };
  }

  /**
   * Forward and backward over one batch (truncated BPTT over its T steps, starting from `state`).
   * Leaves ∂objective/∂params in `grads` (see ForwardBackwardResult.objective).
   */
  forwardBackward(batch: Batch, state: State, options: BackwardOptions = {}): ForwardBackwardResult {
    if (this.inInference) {
      throw new Error('forwardBackward cannot run inside model.inference(), where the parameters are held constant; train outside it');
    }
    const ws = this.prepare(batch, state, options.part);
    if (options.dFinalState) this.checkState(options.dFinalState, ws.B, 'dFinalState');
    const training = options.training ?? true;
    if (!options.accumulate) this.grads.fill(0);
    // The weights do not change during the pass: let the kernels prepare each one once, and
    // tabulate the first layer's products of the embedding when that is cheaper than computing
    // them for every position (V ≤ B·T): its input is one of V embedding rows, so its linear
    // maps have only V distinct results. The backward pass then sums the gradients per
    // vocabulary entry first (tableBackward).
    return this.withWeightsConstant(() => {
      this.tables = this.usesTables(ws.B, ws.T) ? (options.tables ?? this.computeTables(false)) : null;
      try {
        return this.forwardBackwardPass(ws, state, training, options);
      } finally {
        this.tables = null;
      }
    });
  }

  /**
   * Whether a training pass over B streams × T steps uses the first layer's tables: when the
   * vocabulary is no larger than its positions (V ≤ B·T), tabulating V rows is cheaper than
   * computing B·T. (Validation and sampling, inside inference(), always use them.)
   */
  usesTables(B: number, T: number): boolean {
    return this.config.vocabSize <= B * T;
  }

  private forwardBackwardPass(ws: Workspace, state: State, training: boolean, options: BackwardOptions): ForwardBackwardResult {
    const nll = this.forwardPass(ws, state, training, options.rng ?? this.rng, options.part);
    const finalState = this.readFinalState(ws);
    const meanOver = options.part?.total ?? ws.B; // the batch the loss is a mean over
    let objective = nll / meanOver;
    if (options.dFinalState) {
      for (let l = 0; l < this.config.numLayers; l++) {
        objective += dot(options.dFinalState.h[l], finalState.h[l]) + dot(options.dFinalState.c[l], finalState.c[l]);
      }
    }
    const dInitialState = this.backwardPass(ws, training, options.dFinalState, meanOver);
    return { loss: meanLoss(nll, ws, options.part), objective, finalState, dInitialState };
  }

  /**
   * Runs `fn` with the parameters held constant, for sampling and evaluation (sample() and
   * evaluateIds() use it), and returns what it returns. Inside, forward() and step() use weights
   * prepared once instead of at every call:
   * - the first layer's products of the embedding are tabulated per vocabulary entry, so a step
   *   reads one row of G·N numbers instead of multiplying by a G·N×N matrix (lstm, gru, rnn:
   *   i2h; grid_lstm: time.d2h and depth.d2h);
   * - every other weight matrix is declared constant to the kernels (Kernels.withConstantWeights),
   *   which may pack it once (the WASM kernels do, for their one-row products as well).
   * The results are those of the same calls outside, up to float rounding (bit-identical for
   * lstm steps at batch 1). `fn` must not change the parameters (no
   * optimiser steps, setParam or writes through views); forwardBackward() inside is an error.
   * Nested calls just run `fn`. `tables`: the tables of the current weights, filled row by row
   * by fillFirstLayerTables, instead of computing them here (threads sharing one copy).
   */
  inference<R>(fn: () => R, tables?: FirstLayerTables): R {
    if (this.inInference) return fn();
    // The table rows are computed one at a time, as the one-row products of step() would be;
    // every weight matrix is declared constant too (the kernels prepare each one only when a
    // product first needs it).
    this.tables = tables ?? this.computeTables(true);
    this.inInference = true;
    try {
      return this.withWeightsConstant(fn);
    } finally {
      this.tables = null;
      this.inInference = false;
    }
  }

  /** Fills this model's own first-layer tables from the current weights: row by row, or as one product. */
  private computeTables(rowByRow: boolean): FirstLayerTables {
    this.ownTables ??= this.newFirstLayerTables();
    this.fillFirstLayerTables(this.ownTables, rowByRow);
    return this.ownTables;
  }

  /** The first layer's maps of the embedding that the tables hold: per part of its input map, then (grid_lstm) depth.d2h. */
  private tableMaps(): { first: Linear[]; depth: Linear | null } {
    const grid = this.config.model === 'grid_lstm';
    return grid ? { first: this.grid[0].time.i2h, depth: this.grid[0].depthD2h } : { first: this.stacked[0].i2h, depth: null };
  }

  /** New buffers (the kernels' memory) for the first layer's tables. */
  newFirstLayerTables(): FirstLayerTables {
    const V = this.config.vocabSize;
    const { first, depth } = this.tableMaps();
    return { first: first.map((lin) => this.kernels.alloc(V * lin.outSize)), depth: depth && this.kernels.alloc(V * depth.outSize) };
  }

  /**
   * Fills rows [from, to) of the first layer's tables from the current weights: row by row, one
   * one-row product each (as inference() does; any range), or all V rows as one product per
   * table (as forwardBackward() does; the whole range only).
   */
  fillFirstLayerTables(into: FirstLayerTables, rowByRow: boolean, from = 0, to = this.config.vocabSize): void {
    const k = this.kernels;
    const { rnnSize: N, vocabSize: V } = this.config;
    if (!(Number.isInteger(from) && Number.isInteger(to) && 0 <= from && from <= to && to <= V) || (!rowByRow && (from !== 0 || to !== V))) {
      throw new RangeError(`fillFirstLayerTables: rows [${from}, ${to}) must be within [0, ${V})${rowByRow ? '' : ', all of them when not row by row'}`);
    }
    const E = this.embedding.E;
    const tabulate = (out: Float, lin: Linear) => {
      const w = lin.outSize;
      if (!rowByRow) linearForward(k, out, E, lin, V, false);
      else for (let v = from; v < to; v++) k.matmulXWt(out.subarray(v * w, (v + 1) * w), E.subarray(v * N, (v + 1) * N), lin.W, lin.b, 1, w, N, false);
    };
    const maps = this.tableMaps();
    maps.first.forEach((lin, p) => tabulate(into.first[p], lin));
    if (maps.depth !== null) tabulate(into.depth!, maps.depth);
  }

  /**
   * The weight matrices of the model's products, each once: W [outSize, inSize]. `tabulated`:
   * one of the first layer's maps of the embedding that only the tables use when the pass has
   * them (its forward product is then not run; its backward products are).
   */
  weightMatrices(): { W: Float; outSize: number; inSize: number; tabulated: boolean }[] {
    const { first, depth } = this.tableMaps();
    const all = this.linears();
    const tabulatedOnly = (lin: Linear) => (first.includes(lin) || lin === depth) && all.filter((x) => x === lin).length === 1;
    return [...new Set(all)].map((lin) => ({ W: lin.W, outSize: lin.outSize, inSize: lin.inSize, tabulated: tabulatedOnly(lin) }));
  }

  /** Every Linear of the model, in layer order (a tied grid's depth maps once per layer). */
  private linears(): Linear[] {
    const all: Linear[] = [this.decoder, ...this.stacked.flatMap((s) => [...s.i2h, ...s.h2h])];
    for (const g of this.grid) all.push(g.timeT2h, g.timeD2h, g.depthT2h, g.depthD2h);
    return all;
  }

  /**
   * Backward of a first-layer table lookup, a[m] = table[ids[m]] = E[ids[m]]·Wᵀ + b: sums dG
   * [T·B, w] over the positions of each vocabulary entry (S [V, w], the gradient buffer of part
   * p of the first table, or of the grid's depth table for p = 0: both 4N wide), then
   * dW += Sᵀ·E, db += Σ S and dE += S·W, products over V rows instead of T·B.
   */
  private tableBackward(ws: Workspace, dG: Float, lin: Linear, p = 0): void {
    const V = this.config.vocabSize;
    if (this.tableGrads === null) {
      const first = this.tableMaps().first;
      const grad = this.kernels.alloc(V * Math.max(...first.map((l) => l.outSize)));
      this.tableGrads = first.map((l) => (l.outSize * V === grad.length ? grad : grad.subarray(0, V * l.outSize)));
    }
    const S = this.tableGrads[p];
    S.fill(0);
    this.kernels.scatterAddRows(S, dG, ws.ids, ws.T * ws.B, lin.outSize, V);
    linearBackward(this.kernels, this.embedding.dE, S, this.embedding.E, lin, V);
  }

  /** Runs fn with every weight matrix declared constant to the kernels (each one once). */
  private withWeightsConstant<R>(fn: () => R): R {
    const distinct = [...new Set(this.linears())];
    let result: R | undefined;
    const declare = (j: number): void => {
      if (j === distinct.length) result = fn();
      else this.kernels.withConstantWeights(distinct[j].W, distinct[j].outSize, distinct[j].inSize, () => declare(j + 1));
    };
    declare(0);
    return result as R;
  }

  /**
   * One step for sampling: feeds tokens[B] (one per sequence), updates `state` in place and
   * returns the log-probabilities of the next token, [B, V] (a view valid until the next call).
   * Faster inside {@link inference}.
   */
  step(tokens: ArrayLike<number>, state: State): Float {
    const B = tokens.length;
    const ws = this.prepare({ x: tokens, y: null, batchSize: B, seqLength: 1 }, state);
    this.forwardPass(ws, state, false, this.rng);
    for (let l = 0; l < this.config.numLayers; l++) {
      state.h[l].set(ws.at.steps[l].h[1]);
      state.c[l].set(ws.at.steps[l].c[1]); // (empty for gru and rnn)
    }
    return ws.logits;
  }

  /**
   * The activations of the last forward() or step(), for tracing (src/infer/trace.ts); null before
   * the first pass. They are views of the model's working buffers: valid until its next pass,
   * never to be written. (forwardBackward() overwrites the log-probabilities with their gradient.)
   */
  activations(): Activations | null {
    const ws = this.lastWorkspace;
    if (ws === null) return null;
    return {
      B: ws.B,
      T: ws.T,
      gates: ws.gates,
      c: ws.c,
      h: ws.h,
      tc: ws.tc,
      depthGates: ws.dGates,
      cd: ws.cd,
      tcd: ws.tcd,
      hd: ws.hd,
      logp: ws.logits,
    };
  }

  /** Validates a batch (and the part of a whole batch it is) and copies its ids, time-major, into the workspace for its shape. */
  private prepare(
    batch: { x: ArrayLike<number>; y: ArrayLike<number> | null; batchSize: number; seqLength: number },
    state: State,
    part?: ForwardOptions['part'],
  ): Workspace {
    const B = checkPositiveInt('batchSize', batch.batchSize);
    const T = checkPositiveInt('seqLength', batch.seqLength);
    const V = this.config.vocabSize;
    if (!batch.x || batch.x.length !== B * T) {
      throw new Error(`x must hold B·T = ${B}·${T} = ${B * T} token ids, got ${batch.x?.length}`);
    }
    if (batch.y !== null && (!batch.y || batch.y.length !== B * T)) {
      throw new Error(`y must hold B·T = ${B}·${T} = ${B * T} token ids, got ${batch.y?.length}`);
    }
    this.checkState(state, B, 'state');
    const ws = this.workspace(B, T);
    ws.scored = batch.y === null ? 0 : B * T;
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < T; t++) {
        const xi = batch.x[b * T + t];
        if (!Number.isInteger(xi) || xi < 0 || xi >= V) {
          throw new Error(`token id x[${b * T + t}] = ${xi} is out of range: ids must be integers in [0, ${V})`);
        }
        ws.ids[t * B + b] = xi;
        if (batch.y !== null) {
          const yi = batch.y[b * T + t];
          if (!Number.isInteger(yi) || yi < -1 || yi >= V) {
            throw new Error(`target id y[${b * T + t}] = ${yi} is out of range: ids must be integers in [0, ${V}), or −1 (not scored)`);
          }
          ws.targets[t * B + b] = yi;
          if (yi < 0) ws.scored--;
        } else ws.targets[t * B + b] = 0;
      }
    }
    if (part !== undefined) checkPart(part, B, T, ws.scored);
    return ws;
  }

  private workspace(B: number, T: number): Workspace {
    // (The last one first: sampling asks for the same shape at every character.)
    const last = this.lastWorkspace;
    if (last !== null && last.B === B && last.T === T) return last;
    const key = `${B}x${T}`;
    const found = this.workspaces.get(key);
    if (found) return (this.lastWorkspace = found);
    // Keep a few shapes (training, evaluation, sampling); drop the oldest beyond that, its block
    // going back to the free list.
    if (this.workspaces.size >= 4) {
      const oldest = this.workspaces.keys().next().value as string;
      this.freeBlocks.push(this.workspaces.get(oldest)!.block);
      this.workspaces.delete(oldest);
      this.dropped = true;
    }
    // Lay the buffers out once without memory to learn the block's size, then carve them.
    let total = 0;
    const empty = this.kernels.alloc(0);
    this.buildWorkspace(B, T, (n) => ((total += padTo4(n)), empty), empty);
    const block = this.takeBlock(total);
    let at = 0;
    const carve = (n: number) => {
      const view = block.subarray(at, at + n);
      at += padTo4(n);
      return view;
    };
    const ws = this.buildWorkspace(B, T, carve, block);
    this.workspaces.set(key, ws);
    return (this.lastWorkspace = ws);
  }

  /** A zeroed block of at least n elements: the smallest free one that fits, else a new one. */
  private takeBlock(n: number): Float {
    let best = -1;
    for (let i = 0; i < this.freeBlocks.length; i++) {
      const len = this.freeBlocks[i].length;
      if (len >= n && (best < 0 || len < this.freeBlocks[best].length)) best = i;
    }
    if (best >= 0) {
      const [b] = this.freeBlocks.splice(best, 1);
      b.fill(0);
      return b;
    }
    return this.kernels.alloc(this.dropped ? 2 ** Math.ceil(Math.log2(Math.max(n, 1))) : n);
  }

  /** The buffers of a workspace for (B, T), each of `alloc(n)` (zeroed), carved from `block`. */
  private buildWorkspace(B: number, T: number, alloc: (n: number) => Float, block: Float): Workspace {
    const k = { alloc }; // (named as before: k.alloc)
    const { rnnSize: N, numLayers: L, vocabSize: V } = this.config;
    const grid = this.config.model === 'grid_lstm';
    const cell = this.cell;
    const G = cell.blocks.length;
    const gru = cell.parts.some((p) => p.reads === 'rh');
    const M = T * B;
    const per = (n: number, count = L) => Array.from({ length: count }, () => k.alloc(n));
    const drop = this.config.dropout > 0;
    const ws: Workspace = {
      B,
      T,
      ids: new Int32Array(M),
      targets: new Int32Array(M),
      scored: 0,
      emb: k.alloc(M * N),
      inp: new Array<Float>(L),
      dropBuf: drop ? per(M * N, L + 1) : [],
      masks: drop ? per(M * N, L) : [],
      h: per((T + 1) * B * N),
      c: per(cell.hasCell ? (T + 1) * B * N : 0),
      gates: per(M * G * N),
      tc: per(cell.hasCell ? M * N : 0),
      rh: per(gru ? M * N : 0),
      dGates: grid ? per(M * 4 * N) : [],
      cd: grid ? per(M * N) : [],
      tcd: grid ? per(M * N) : [],
      hd: grid ? per(M * N) : [],
      zeros: k.alloc(grid ? M * N : 0),
      top: k.alloc(0),
      logits: k.alloc(M * V),
      dG: k.alloc(M * G * N),
      dH: k.alloc((T + 1) * B * N),
      dXa: k.alloc(M * N),
      dXb: k.alloc(M * N),
      dCd: k.alloc(grid ? M * N : 0),
      dc: k.alloc(cell.hasCell ? B * N : 0),
      dRh: k.alloc(gru ? B * N : 0),
      at: { steps: [], parts: [], dParts: [], hNew: [], hOld: [] }, // views of the above, next
      block,
    };
    const bn = B * N;
    // A cell's pre-activations part by part: part p is [T·B, blocks_p·N], after the parts before it.
    const byPart = (a: Float): Float[] => {
      let at = 0;
      return cell.parts.map((p) => a.subarray(at * M * N, (at += p.blocks) * M * N));
    };
    const dParts = byPart(ws.dG);
    const dA = dParts.map((d, p) => blocks(d, cell.parts[p].blocks * bn, T));
    const dh = blocks(ws.dH, bn, T + 1);
    const parts = ws.gates.map(byPart);
    ws.at = {
      steps: parts.map((a, l) => ({
        a: a.map((g, p) => blocks(g, cell.parts[p].blocks * bn, T)),
        h: blocks(ws.h[l], bn, T + 1),
        c: blocks(ws.c[l], cell.hasCell ? bn : 0, T + 1),
        tc: blocks(ws.tc[l], cell.hasCell ? bn : 0, T),
        rh: blocks(ws.rh[l], gru ? bn : 0, T),
        dA,
        dh,
        dRh: ws.dRh,
      })),
      parts,
      dParts,
      hNew: ws.h.map((h) => h.subarray(bn)),
      hOld: ws.h.map((h) => h.subarray(0, T * bn)),
    };
    return ws;
  }

  /** Runs the model over the batch in `ws` from `state`; returns Σ NLL over all T·B positions. */
  private forwardPass(ws: Workspace, state: State, training: boolean, rng: Rng, part?: { first: number; total: number }): number {
    const k = this.kernels;
    const { rnnSize: N, numLayers: L, vocabSize: V } = this.config;
    const { B, T } = ws;
    const M = T * B;
    const drop = training && this.config.dropout > 0;

    // Dropout masks, drawn step by step (t outer, then the sites from bottom to top) so that a
    // sequence cut into chunks draws the same masks as the whole sequence.
    if (drop && part === undefined) {
      for (let t = 0; t < T; t++) {
        for (let s = 0; s < L; s++) dropoutMask(ws.masks[s], this.config.dropout, rng, t * B * N, B * N);
      }
    } else if (drop && part !== undefined) {
      // A part of a batch: the same numbers, drawn where the whole batch draws its rows (the
      // generator is a counter, Rng.skip), so the masks do not depend on the thread count.
      const start = rng.state;
      const draw = new Rng(0);
      for (let t = 0; t < T; t++) {
        for (let s = 0; s < L; s++) {
          draw.state = start;
          draw.skip(((t * L + s) * part.total + part.first) * N);
          dropoutMask(ws.masks[s], this.config.dropout, draw, t * B * N, B * N);
        }
      }
      rng.skip(T * L * part.total * N);
    }
    for (let l = 0; l < L; l++) {
      ws.h[l].set(state.h[l], 0);
      ws.c[l].set(state.c[l], 0);
    }
    // With its tables, the first layer reads them instead of the embedding.
    if (this.tables === null) k.gatherRows(ws.emb, this.embedding.E, ws.ids, M, N, V);

    let below: Float = ws.emb; // the output of the layer below, [T·B, N]
    for (let l = 0; l < L; l++) {
      // Dropout on the input of every layer above the first.
      let input = below;
      if (l > 0 && drop) {
        input = ws.dropBuf[l - 1];
        dropoutForward(input, below, ws.masks[l - 1], M * N);
      }
      ws.inp[l] = input;
      below = this.config.model !== 'grid_lstm' ? this.stackedLayerForward(ws, l, input) : this.gridLayerForward(ws, l, input);
    }
    ws.top = below;
    if (drop) {
      ws.top = ws.dropBuf[L - 1];
      dropoutForward(ws.top, below, ws.masks[L - 1], M * N);
    }
    // Decoder and log-softmax: logits [T·B, V].
    linearForward(k, ws.logits, ws.top, this.decoder, M, false);
    return k.logSoftmaxNll(ws.logits, ws.targets, M, V);
  }

  /** ∂/∂params (into grads) and ∂/∂(initial state) of Σ_t mean_b NLL (Σ over the scored targets / B; + ⟨dFinal, final⟩). */
  private backwardPass(ws: Workspace, training: boolean, dFinal: State | undefined, meanOver: number): State {
    const k = this.kernels;
    const { rnnSize: N, numLayers: L, vocabSize: V } = this.config;
    const { B, T } = ws;
    const M = T * B;
    const drop = training && this.config.dropout > 0;
    const dInit: State = { h: new Array<Float>(L), c: new Array<Float>(L) };

    // Log-softmax + NLL, scaled by 1/B (batch mean, summed over time); the gradient overwrites
    // the log-probabilities.
    k.logSoftmaxNllBackward(ws.logits, ws.logits, ws.targets, M, V, 1 / meanOver);
    let dOut = ws.dXa; // ∂/∂(output of the layer being processed), [T·B, N]
    let dBelow = ws.dXb; // ∂/∂(its input)
    dOut.fill(0);
    linearBackward(k, dOut, ws.logits, ws.top, this.decoder, M);
    if (drop) dropoutBackward(dOut, dOut, ws.masks[L - 1], M * N);
    if (this.config.model === 'grid_lstm') ws.dCd.fill(0); // nothing uses the top depth cell

    for (let l = L - 1; l >= 0; l--) {
      dBelow.fill(0);
      if (this.config.model !== 'grid_lstm') this.stackedLayerBackward(ws, l, dOut, dBelow, dFinal, dInit);
      else this.gridLayerBackward(ws, l, dOut, dBelow, dFinal, dInit);
      if (l > 0) {
        if (drop) dropoutBackward(dBelow, dBelow, ws.masks[l - 1], M * N);
        [dOut, dBelow] = [dBelow, dOut];
      } else {
        // (With the first layer's tables, the layer has added its part of dE itself.)
        if (this.tables === null) k.scatterAddRows(this.embedding.dE, dBelow, ws.ids, M, N, V);
      }
    }
    return dInit;
  }

  // -------------------------------------------------------------------------------------------
  // Stacked layer l (lstm, gru, rnn) over all T steps.

  /** input [T·B, N] → returns hˡ for steps 1..T, [T·B, N] (a view of the history). */
  private stackedLayerForward(ws: Workspace, l: number, input: Float): Float {
    const { i2h, h2h } = this.stacked[l];
    // a = i2h(x) for all steps at once, then + h2h(·) and the cell update step by step.
    this.inputForward(ws, l, input, i2h);
    this.forwardThroughTime(ws, l, h2h);
    return ws.at.hNew[l];
  }

  /** dOut = ∂/∂hˡ (steps 1..T) from above → adds ∂/∂input to dInput. */
  private stackedLayerBackward(ws: Workspace, l: number, dOut: Float, dInput: Float, dFinal: State | undefined, dInit: State): void {
    const { i2h, h2h } = this.stacked[l];
    const bn = ws.B * this.config.rnnSize;
    const dh = ws.dH; // ∂/∂h history [(T+1)·B, N]
    const dc = ws.dc; // ∂/∂c_t, carried backwards through time (empty without a cell)
    dh.fill(0, 0, bn);
    dh.set(dOut, bn);
    this.seedFinalGradient(dh, dc, l, ws.T, ws.B, dFinal);
    this.backwardThroughTime(ws, l, h2h, dc);
    dInit.h[l] = dh.slice(0, bn);
    dInit.c[l] = dc.slice();
    this.recurrentWeightGradients(ws, l, h2h);
    this.inputBackward(ws, l, dInput, i2h);
  }

  // -------------------------------------------------------------------------------------------
  // Grid LSTM layer l over all T steps: the time LSTM, then the prioritised depth LSTM.

  /** input = h_d entering layer l [T·B, N] → returns h_d leaving it [T·B, N]. */
  private gridLayerForward(ws: Workspace, l: number, input: Float): Float {
    const k = this.kernels;
    const { depthT2h, depthD2h, time } = this.grid[l];
    const N = this.config.rnnSize;
    const M = ws.T * ws.B;
    // Time LSTM: a = time.d2h(h_d) for all steps at once, + time.t2h(h_{t−1}) step by step.
    this.inputForward(ws, l, input, time.i2h);
    this.forwardThroughTime(ws, l, time.h2h);
    // Depth LSTM (3.2 priority: it reads the new time hidden state h_t), all positions at once;
    // both of its inputs are known now, so its two linear maps are one product of [h_t h_d].
    const tables = l === 0 ? this.tables : null;
    const D = ws.dGates[l];
    const cdIn = l === 0 ? ws.zeros : ws.cd[l - 1];
    if (tables !== null) {
      k.gatherRows(D, tables.depth!, ws.ids, M, 4 * N, this.config.vocabSize);
      linearForward(k, D, ws.at.hNew[l], depthT2h, M, true);
    } else linear2Forward(k, D, ws.at.hNew[l], depthT2h, input, depthD2h, M);
    k.lstmForward(D, cdIn, ws.cd[l], ws.tcd[l], ws.hd[l], M, N); // the LSTM cell's update, along depth
    return ws.hd[l];
  }

  /**
   * dOut = ∂/∂(h_d leaving layer l); ws.dCd = ∂/∂(c_d leaving layer l) on entry and
   * ∂/∂(c_d entering layer l) on exit. Adds ∂/∂(h_d entering layer l) to dInput.
   */
  private gridLayerBackward(ws: Workspace, l: number, dOut: Float, dInput: Float, dFinal: State | undefined, dInit: State): void {
    const k = this.kernels;
    const { depthT2h, depthD2h, time } = this.grid[l];
    const N = this.config.rnnSize;
    const { B, T } = ws;
    const M = T * B;
    const bn = B * N;
    const dG = ws.dG;
    const dh = ws.dH;
    const dc = ws.dc;
    // Depth LSTM backward, all positions at once (its gradients for a tied depth LSTM add up
    // over the layers in the shared gradient views, 3.5).
    const cdIn = l === 0 ? ws.zeros : ws.cd[l - 1];
    k.lstmBackward(ws.dGates[l], cdIn, ws.tcd[l], dOut, ws.dCd, dG, ws.dCd, M, N);
    dh.fill(0);
    linearBackward(k, dh.subarray(bn), dG, ws.at.hNew[l], depthT2h, M);
    if (l === 0 && this.tables !== null) this.tableBackward(ws, dG, depthD2h);
    else linearBackward(k, dInput, dG, ws.inp[l], depthD2h, M);
    // Time LSTM backward through time.
    this.seedFinalGradient(dh, dc, l, T, B, dFinal);
    this.backwardThroughTime(ws, l, time.h2h, dc);
    dInit.h[l] = dh.slice(0, bn);
    dInit.c[l] = dc.slice();
    this.recurrentWeightGradients(ws, l, time.h2h);
    this.inputBackward(ws, l, dInput, time.i2h);
  }

  // -------------------------------------------------------------------------------------------
  // Shared by every model: a layer's cell along time (src/nn/cells.ts), forward and backward.
  // The maps into the cell come as one Linear per part of its pre-activations (partsOf).

  /**
   * The part of layer l's pre-activations that comes from below, for all steps at once:
   * a = i2h(input) (grid: time.d2h), or the first layer's table rows.
   */
  private inputForward(ws: Workspace, l: number, input: Float, i2h: readonly Linear[]): void {
    const M = ws.T * ws.B;
    for (let p = 0; p < i2h.length; p++) {
      if (l === 0 && this.tables !== null) this.kernels.gatherRows(ws.at.parts[l][p], this.tables.first[p], ws.ids, M, i2h[p].outSize, this.config.vocabSize);
      else linearForward(this.kernels, ws.at.parts[l][p], input, i2h[p], M, false);
    }
  }

  /** Backward of inputForward: the weight gradients of i2h, and ∂/∂input added to dInput (or dE through the tables). */
  private inputBackward(ws: Workspace, l: number, dInput: Float, i2h: readonly Linear[]): void {
    for (let p = 0; p < i2h.length; p++) {
      if (l === 0 && this.tables !== null) this.tableBackward(ws, ws.at.dParts[p], i2h[p], p);
      else linearBackward(this.kernels, dInput, ws.at.dParts[p], ws.inp[l], i2h[p], ws.T * ws.B);
    }
  }

  /**
   * The time recurrence of layer l, t = 0 … T−1. On entry its pre-activations hold, for every
   * step, the part that comes from below; each step adds the recurrent products (h2h, one Linear
   * per part) and applies the cell update, filling the h (and c, tanh(c), r⊙h) histories.
   */
  private forwardThroughTime(ws: Workspace, l: number, h2h: readonly Linear[]): void {
    const { cell, kernels: k } = this;
    const N = this.config.rnnSize;
    const { B, T } = ws;
    const s = ws.at.steps[l]; // per-step views: s.a[p][t] is part p of a_t, s.h[t] is h_t, ...
    // The same recurrent weights at every step: the kernels may prepare them once (not worth it
    // for a single step, as in step() outside inference()).
    this.constantOver(T, h2h, () => {
      for (let t = 0; t < T; t++) cell.forwardStep(k, s, t, h2h, B, N);
    });
  }

  /** Adds ∂/∂(final h) to the last row block of dh and sets dc = ∂/∂(final c) (or 0). */
  private seedFinalGradient(dh: Float, dc: Float, l: number, T: number, B: number, dFinal: State | undefined): void {
    const bn = B * this.config.rnnSize;
    if (dFinal) {
      const dhT = dh.subarray(T * bn, (T + 1) * bn);
      const g = dFinal.h[l];
      for (let j = 0; j < bn; j++) dhT[j] += g[j];
      dc.set(dFinal.c[l]);
    } else dc.fill(0);
  }

  /**
   * Backpropagation through time of layer l's cell, t = T−1 … 0. On entry ws.dH rows (t+1)·B…
   * hold ∂/∂h_{t+1} from everything but the recurrence and dc holds ∂/∂c_T (LSTMs); on exit
   * ws.dG holds ∂/∂a for every step (part by part), ws.dH rows 0..B−1 hold ∂/∂h_0 and dc ∂/∂c_0.
   */
  private backwardThroughTime(ws: Workspace, l: number, h2h: readonly Linear[], dc: Float): void {
    const { cell, kernels: k } = this;
    const N = this.config.rnnSize;
    const { B, T } = ws;
    const s = ws.at.steps[l];
    this.constantOver(T, h2h, () => {
      for (let t = T - 1; t >= 0; t--) cell.backwardStep(k, s, t, h2h, dc, B, N);
    });
  }

  /** h2h's weight gradients after backwardThroughTime: per part, one product over all T·B rows of its recurrent input. */
  private recurrentWeightGradients(ws: Workspace, l: number, h2h: readonly Linear[]): void {
    const parts = this.cell.parts;
    for (let p = 0; p < h2h.length; p++) {
      const input = parts[p].reads === 'h' ? ws.at.hOld[l] : ws.rh[l]; // h_{t−1}, or the GRU's r⊙h_{t−1}
      linearBackward(this.kernels, null, ws.at.dParts[p], input, h2h[p], ws.T * ws.B);
    }
  }

  /** Runs fn with the weights of `lins` declared constant to the kernels if fn uses them for more than one step. */
  private constantOver(steps: number, lins: readonly Linear[], fn: () => void, from = 0): void {
    if (steps <= 1 || from === lins.length) fn();
    else this.kernels.withConstantWeights(lins[from].W, lins[from].outSize, lins[from].inSize, () => this.constantOver(steps, lins, fn, from + 1));
  }

  private readFinalState(ws: Workspace): State {
    const bn = ws.B * this.config.rnnSize;
    const T = ws.T;
    return {
      h: ws.h.map((h) => h.slice(T * bn, (T + 1) * bn)),
      c: ws.c.map((c) => c.slice(T * bn, (T + 1) * bn)),
    };
  }
}

/**
 * The mean NLL per scored character of a pass whose scored NLL sums to `nll`: over this batch's
 * scored targets, or for a part of a batch (src/parallel/) over the whole batch's, so that the
 * parts' losses add up to the whole one's. 0 when nothing is scored.
 */
function meanLoss(nll: number, ws: Workspace, part: ForwardOptions['part']): number {
  const scored = part === undefined ? ws.scored : part.scored;
  return scored === 0 ? 0 : nll / scored;
}

/**
 * A part of a batch (ForwardOptions.part) of B streams of T steps, `scored` of its targets
 * scored: streams first … first + B − 1 of `total`, and `scored` a whole number of targets of the
 * whole batch, at least this part's and at most total·T. A one-line error otherwise.
 */
function checkPart(part: NonNullable<ForwardOptions['part']>, B: number, T: number, scored: number): void {
  const { first, total } = part;
  if (!(Number.isInteger(first) && first >= 0 && Number.isInteger(total) && first + B <= total)) {
    throw new Error(`part must be streams first … first + ${B} − 1 of total, whole numbers with 0 ≤ first and first + ${B} ≤ total, got first ${first}, total ${total}`);
  }
  const n = part.scored;
  if (!(Number.isInteger(n) && n >= scored && n <= total * T)) {
    throw new Error(
      `part.scored must be the scored targets (≥ 0) of the whole batch: a whole number from this part's ${scored} to total·T = ${total * T}, got ${n}`,
    );
  }
}

/** Builds a model: `createModel({ model: 'grid_lstm', vocabSize: 65, rnnSize: 128, numLayers: 2 })`. */
export function createModel(config: ModelConfig, options: CreateModelOptions = {}): Model {
  return new Model(config, options);
}
