/**
 * The reference's operations on one time step of one batch, each forward beside its backward,
 * in float64. Arrays are row-major: [B, N] is B rows of N numbers (B batch, N = rnnSize,
 * V vocabulary). Every function returns new arrays; backward passes add into dW and db.
 */
type F = Float64Array;

/** A linear map y = x·Wᵀ + b, W [nOut, nIn], b [nOut], and the buffers its gradients add into. */
export interface Linear { W: F; b: F; dW: F; db: F; nIn: number; nOut: number }

/** y [B, nOut] = x [B, nIn]·Wᵀ + b */
export function linear(p: Linear, x: F, B: number): F {
  const y = new Float64Array(B * p.nOut);
  for (let r = 0; r < B; r++) {
    for (let o = 0; o < p.nOut; o++) {
      let s = p.b[o];
      for (let k = 0; k < p.nIn; k++) s += x[r * p.nIn + k] * p.W[o * p.nIn + k];
      y[r * p.nOut + o] = s;
    }
  }
  return y;
}

/** dW += dyᵀ·x,  db += Σ_rows dy;  returns dx [B, nIn] = dy·W */
export function linearBackward(p: Linear, dy: F, x: F, B: number): F {
  const dx = new Float64Array(B * p.nIn);
  for (let r = 0; r < B; r++) {
    for (let o = 0; o < p.nOut; o++) {
      const d = dy[r * p.nOut + o];
      p.db[o] += d;
      for (let k = 0; k < p.nIn; k++) {
        p.dW[o * p.nIn + k] += d * x[r * p.nIn + k];
        dx[r * p.nIn + k] += d * p.W[o * p.nIn + k];
      }
    }
  }
  return dx;
}

/** a + b: two linear maps summed; the two gradients reaching a value used twice. */
export function add(a: F, b: F): F {
  return a.map((v, j) => v + b[j]);
}

/** a ⊙ m: inverted dropout with mask m (0 or 1/(1−p) per element); its backward is the same product. */
export function mul(a: F, m: ArrayLike<number>): F {
  return a.map((v, j) => v * m[j]);
}

const sigmoid = (a: number): number => 1 / (1 + Math.exp(-a));

/** An LSTM cell's outputs h, c [B, N], and what its backward needs: gates [B, 4N] (i f o g), cPrev, tc = tanh(c). */
export interface Cell { h: F; c: F; gates: F; cPrev: F; tc: F }

/** The LSTM cell: a [B, 4N] pre-activations in blocks i f o g, cPrev [B, N].
 *   i = σ(a_i)   f = σ(a_f)   o = σ(a_o)   g = tanh(a_g);   c = f⊙cPrev + i⊙g;   h = o⊙tanh(c) */
export function lstmCell(a: F, cPrev: F, B: number, N: number): Cell {
  const gates = new Float64Array(B * 4 * N);
  const [c, tc, h] = [new Float64Array(B * N), new Float64Array(B * N), new Float64Array(B * N)];
  for (let r = 0; r < B; r++) {
    for (let n = 0; n < N; n++) {
      const j = r * 4 * N + n; // gate i of unit n; its f, o, g are N, 2N, 3N further on
      const k = r * N + n;
      const [i, f, o, g] = [sigmoid(a[j]), sigmoid(a[j + N]), sigmoid(a[j + 2 * N]), Math.tanh(a[j + 3 * N])];
      [gates[j], gates[j + N], gates[j + 2 * N], gates[j + 3 * N]] = [i, f, o, g];
      c[k] = f * cPrev[k] + i * g;
      tc[k] = Math.tanh(c[k]);
      h[k] = o * tc[k];
    }
  }
  return { h, c, gates, cPrev, tc };
}

/** Its backward: dh, dc [B, N] = ∂/∂h, ∂/∂c from their later uses → da [B, 4N], dcPrev [B, N]. */
export function lstmCellBackward(cell: Cell, dh: F, dc: F, B: number, N: number): { da: F; dcPrev: F } {
  const { gates, cPrev, tc } = cell;
  const [da, dcPrev] = [new Float64Array(B * 4 * N), new Float64Array(B * N)];
  for (let r = 0; r < B; r++) {
    for (let n = 0; n < N; n++) {
      const j = r * 4 * N + n;
      const k = r * N + n;
      const [i, f, o, g] = [gates[j], gates[j + N], gates[j + 2 * N], gates[j + 3 * N]];
      const dcAll = dc[k] + dh[k] * o * (1 - tc[k] * tc[k]); // h = o⊙tanh(c) depends on c too
      da[j] = dcAll * g * i * (1 - i); // di, through σ
      da[j + N] = dcAll * cPrev[k] * f * (1 - f); // df
      da[j + 2 * N] = dh[k] * tc[k] * o * (1 - o); // do
      da[j + 3 * N] = dcAll * i * (1 - g * g); // dg, through tanh
      dcPrev[k] = dcAll * f;
    }
  }
  return { da, dcPrev };
}

/** A GRU cell's output h [B, N] (and c, empty: it has none), and what its backward needs. */
export interface GruCell { h: F; c: F; z: F; r: F; n: F; hPrev: F; rh: F }

/** The GRU cell as char-rnn's GRU.lua computes it: ax = i2h(x) [B, 3N] in blocks z r n, hPrev [B, N], U = h2h [3N, N]:
 *   z = σ(ax_z + hPrev·Uzᵀ + cz)   r = σ(ax_r + hPrev·Urᵀ + cr)   n = tanh(ax_n + (r⊙hPrev)·Unᵀ + cn)
 *   h = z⊙n + (1 − z)⊙hPrev      (r acts before Un, and z weighs the candidate: both unlike PyTorch's nn.GRU) */
export function gruCell(ax: F, hPrev: F, U: Linear, B: number, N: number): GruCell {
  const [z, r, n, h, rh] = Array.from({ length: 5 }, () => new Float64Array(B * N));
  const uh = linear(U, hPrev, B); // [B, 3N]: its z and r blocks
  for (let j = 0; j < B * N; j++) {
    const [b, u] = [Math.floor(j / N), j % N];
    z[j] = sigmoid(ax[b * 3 * N + u] + uh[b * 3 * N + u]);
    r[j] = sigmoid(ax[b * 3 * N + N + u] + uh[b * 3 * N + N + u]);
    rh[j] = r[j] * hPrev[j];
  }
  const urh = linear(U, rh, B); // [B, 3N]: its n block
  for (let j = 0; j < B * N; j++) {
    const [b, u] = [Math.floor(j / N), j % N];
    n[j] = Math.tanh(ax[b * 3 * N + 2 * N + u] + urh[b * 3 * N + 2 * N + u]);
    h[j] = z[j] * n[j] + (1 - z[j]) * hPrev[j];
  }
  return { h, c: new Float64Array(0), z, r, n, hPrev, rh };
}

/** Its backward: dh [B, N] = ∂/∂h → dax [B, 3N] (= ∂/∂ of the z r n pre-activations), dhPrev [B, N]; adds U's gradients. */
export function gruCellBackward(cell: GruCell, U: Linear, dh: F, B: number, N: number): { dax: F; dhPrev: F } {
  const { z, r, n, hPrev, rh } = cell;
  const dax = new Float64Array(B * 3 * N);
  const dhPrev = new Float64Array(B * N);
  const dZR = new Float64Array(B * 3 * N); // [da_z da_r 0]: the part of dax that reached U through hPrev
  const dN = new Float64Array(B * 3 * N); // [0 0 da_n]: the part that reached U through r⊙hPrev
  for (let j = 0; j < B * N; j++) {
    const [b, u] = [Math.floor(j / N), j % N];
    dax[b * 3 * N + u] = dZR[b * 3 * N + u] = dh[j] * (n[j] - hPrev[j]) * z[j] * (1 - z[j]); // dz through σ
    dax[b * 3 * N + 2 * N + u] = dN[b * 3 * N + 2 * N + u] = dh[j] * z[j] * (1 - n[j] * n[j]); // dn through tanh
    dhPrev[j] = dh[j] * (1 - z[j]); // h = … + (1 − z)⊙hPrev
  }
  const drh = linearBackward(U, dN, rh, B); // ∂/∂(r⊙hPrev)
  for (let j = 0; j < B * N; j++) {
    const [b, u] = [Math.floor(j / N), j % N];
    dax[b * 3 * N + N + u] = dZR[b * 3 * N + N + u] = drh[j] * hPrev[j] * r[j] * (1 - r[j]); // dr through σ
    dhPrev[j] += drh[j] * r[j];
  }
  return { dax, dhPrev: add(dhPrev, linearBackward(U, dZR, hPrev, B)) }; // hPrev fed z and r too
}

/** The vanilla RNN cell (char-rnn's RNN.lua): h = tanh(a), a [B, N]; no c. */
export function rnnCell(a: F): { h: F; c: F } {
  return { h: a.map(Math.tanh), c: new Float64Array(0) };
}

/** Its backward: da = dh⊙(1 − h²). */
export function rnnCellBackward(cell: { h: F }, dh: F): F {
  return dh.map((d, j) => d * (1 - cell.h[j] * cell.h[j]));
}

/**
 * Log-softmax of logits [B, V] → logp [B, V], Σ_b −logp[b, y_b] over the scored rows and their
 * count (y: B ids in [0, V), or −1: a row not scored, which adds nothing).
 */
export function logSoftmaxNll(logits: F, y: number[], B: number, V: number): { logp: F; nll: number; scored: number } {
  const logp = new Float64Array(B * V);
  let nll = 0;
  let scored = 0;
  for (let r = 0; r < B; r++) {
    const row = logits.subarray(r * V, (r + 1) * V);
    const max = Math.max(...row);
    const logSum = Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0));
    for (let v = 0; v < V; v++) logp[r * V + v] = row[v] - max - logSum;
    if (y[r] === -1) continue; // not scored
    nll -= logp[r * V + y[r]];
    scored++;
  }
  return { logp, nll, scored };
}

/**
 * Its backward for the loss scale·Σ NLL (over the scored rows): dlogits [B, V] =
 * scale·(softmax − onehot(y)) in a scored row, 0 in a row not scored (y −1).
 */
export function logSoftmaxNllBackward(logp: F, y: number[], B: number, V: number, scale: number): F {
  const dlogits = logp.map((lp) => scale * Math.exp(lp));
  for (let r = 0; r < B; r++) {
    if (y[r] === -1) dlogits.fill(0, r * V, (r + 1) * V);
    else dlogits[r * V + y[r]] -= scale;
  }
  return dlogits;
}
