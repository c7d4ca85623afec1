"""The project's four models as torch.nn.Modules, written from their equations (docs/models.md).

Shapes: B batch, T time steps, N hidden units (rnn_size), L layers, V vocabulary. x and y are
[B, T] ids, batch first as the TypeScript side's batches; a state is (h, c), each [L, B, N].
Every linear map is y = x·Wᵀ + b with W [out, in]; an LSTM's pre-activations a [.., 4N] are in
gate blocks i, f, o, g:

    i = σ(a_i)   f = σ(a_f)   o = σ(a_o)   g = tanh(a_g)
    c' = f⊙c + i⊙g             h' = o⊙tanh(c')

Stacked LSTM, GRU and RNN (`lstm`, `gru`, `rnn`, char-rnn's): layer 0 reads embedding[x], layer
l > 0 the h of layer l−1; i2h and h2h are [G·N, N] with G = 4 (i f o g), 3 (z r n), 1:
    lstm:  a = i2h(x) + h2h(h);  the LSTM update above
    gru:   z = σ(i2h_z(x) + h2h_z(h))   r = σ(i2h_r(x) + h2h_r(h))
           n = tanh(i2h_n(x) + h2h_n(r⊙h))   h' = z⊙n + (1 − z)⊙h
           (char-rnn's GRU.lua: r acts on h before its map, and z weighs the candidate; PyTorch's
           nn.GRU does neither, so it is not used here)
    rnn:   h' = tanh(i2h(x) + h2h(h))
The GRU and the RNN carry h only: their c is empty ([L, B, 0]).
2D Grid LSTM (`grid_lstm`, Kalchbrenner, Danihelka & Graves, arXiv 1507.01526): into layer 0
h_d = embedding[x], c_d = 0 (§4.3); in each layer
    time LSTM:   a = time.t2h(h_t) + time.d2h(h_d)      → (h_t, c_t), carried to step t+1
    depth LSTM:  a = depth.t2h(h_t') + depth.d2h(h_d)   → (h_d, c_d), up to layer l+1
the depth LSTM reading the NEW h_t' (prioritised, §3.2); the depth weights tied across layers
(§3.5, one `depth` module) or per layer (`layers.{l}.depth`).
Dropout (inverted, p = config dropout) on the input of every layer above the first and on the
top h before the decoder; never on a recurrent connection.

The parameter names (`state_dict()`) are the checkpoint's tensor names. Computation goes one layer
at a time over all T steps, as src/nn/model.ts does: only the time recurrence (h2h, t2h) is step
by step; every other linear map is one product over the T·B rows.
"""
import math

import torch
from torch import nn

from . import rng as rng_mod

MODELS = ('grid_lstm', 'lstm', 'gru', 'rnn')
BLOCKS = {'grid_lstm': 4, 'lstm': 4, 'gru': 3, 'rnn': 1}  # G: the blocks of N of each map's output
INIT_RANGE = 0.08  # char-rnn: every parameter uniform(−0.08, 0.08)


def lstm_cell(a, c):
    """(h', c') of the LSTM update from pre-activations a [.., 4N] (blocks i f o g) and c [.., N]."""
    i, f, o, g = a.chunk(4, dim=-1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


class StackedLayer(nn.Module):
    """One layer of the stacked lstm, gru or rnn: i2h [G·N, N] on the input, h2h [G·N, N] on h_{t−1}."""

    def __init__(self, kind, N):
        super().__init__()
        self.kind = kind
        self.i2h = nn.Linear(N, BLOCKS[kind] * N)
        self.h2h = nn.Linear(N, BLOCKS[kind] * N)

    def forward(self, x, h, c):
        # x [T, B, N] (time-major inside), h, c [B, N] (c [B, 0] for gru, rnn) → outputs [T, B, N],
        # (h, c) after step T−1
        ax = self.i2h(x)  # [T, B, G·N]: the input's part for all T steps at once
        N = h.shape[-1]
        out = []
        for t in range(x.shape[0]):
            if self.kind == 'lstm':
                h, c = lstm_cell((ax[t] + self.h2h(h)).float(), c)
            elif self.kind == 'gru':
                U, b = self.h2h.weight, self.h2h.bias
                zr = torch.sigmoid((ax[t, :, :2 * N] + nn.functional.linear(h, U[:2 * N], b[:2 * N])).float())
                z, r = zr[:, :N], zr[:, N:]
                n = torch.tanh((ax[t, :, 2 * N:] + nn.functional.linear(r * h, U[2 * N:], b[2 * N:])).float())
                h = z * n + (1 - z) * h
            else:
                h = torch.tanh((ax[t] + self.h2h(h)).float())
            out.append(h)
        return torch.stack(out), h, c


class Pair(nn.Module):
    """The two maps of one LSTM of the grid: t2h reads a time hidden state, d2h a depth one."""

    def __init__(self, N):
        super().__init__()
        self.t2h = nn.Linear(N, 4 * N)
        self.d2h = nn.Linear(N, 4 * N)


class GridLayer(nn.Module):
    """One layer of the 2D Grid LSTM: its own time LSTM, and its depth LSTM when untied."""

    def __init__(self, N, tied):
        super().__init__()
        self.time = Pair(N)
        if not tied:
            self.depth = Pair(N)

    def forward(self, hd, cd, h, c, depth):
        # hd, cd [T, B, N] from below; h, c [B, N] the time state → (h_d, c_d) [T, B, N] going up,
        # (h, c) after step T−1. `depth`: the depth LSTM's maps (shared when tied, §3.5).
        ad = self.time.d2h(hd)  # [T, B, 4N]
        hs = []
        for t in range(hd.shape[0]):
            h, c = lstm_cell((ad[t] + self.time.t2h(h)).float(), c)  # 1. time LSTM
            hs.append(h)
        ht = torch.stack(hs)  # the new h_t of every step
        # 2. depth LSTM, prioritised (§3.2): reads the new h_t. Not recurrent in time, so all T at once.
        hd_up, cd_up = lstm_cell((depth.t2h(ht) + depth.d2h(hd)).float(), cd)
        return hd_up, cd_up, h, c


class CharModel(nn.Module):
    """A character-level language model (`grid_lstm`, `lstm`, `gru` or `rnn`) with the project's parameter names."""

    def __init__(self, model='grid_lstm', vocab_size=2, rnn_size=128, num_layers=2, tie_weights=True, dropout=0.0):
        super().__init__()
        if model not in MODELS:
            raise ValueError(f'model must be one of {", ".join(MODELS)}, got {model!r}')
        if not 0 <= dropout < 1:
            raise ValueError(f'dropout must be in [0, 1), got {dropout}')
        self.config = dict(model=model, vocab_size=vocab_size, rnn_size=rnn_size, num_layers=num_layers,
                           tie_weights=bool(tie_weights), dropout=float(dropout))
        V, N, L = vocab_size, rnn_size, num_layers
        self.embedding = nn.Embedding(V, N)
        if model != 'grid_lstm':
            self.layers = nn.ModuleList(StackedLayer(model, N) for _ in range(L))
        else:
            self.layers = nn.ModuleList(GridLayer(N, tie_weights) for _ in range(L))
            if tie_weights:
                self.depth = Pair(N)  # one depth LSTM for all layers (§3.5); autograd sums its gradients
        self.decoder = nn.Linear(N, V)
        self.init_parameters(rng_mod.Rng(123))

    # -- names and initialisation ----------------------------------------------------------------

    def layout(self):
        """(name, parameter) in the TypeScript side's flat-buffer order (src/nn/params.ts paramLayout)."""
        c = self.config
        names = ['embedding.weight']
        lin = lambda p: [f'{p}.weight', f'{p}.bias']
        for l in range(c['num_layers']):
            if c['model'] != 'grid_lstm':
                names += lin(f'layers.{l}.i2h') + lin(f'layers.{l}.h2h')
            else:
                names += lin(f'layers.{l}.time.t2h') + lin(f'layers.{l}.time.d2h')
                if not c['tie_weights']:
                    names += lin(f'layers.{l}.depth.t2h') + lin(f'layers.{l}.depth.d2h')
        if c['model'] == 'grid_lstm' and c['tie_weights']:
            names += lin('depth.t2h') + lin('depth.d2h')
        names += lin('decoder')
        params = dict(self.named_parameters())
        return [(n, params[n]) for n in names]

    def parameter_count(self):
        return sum(p.numel() for _, p in self.layout())

    def forget_bias_names(self):
        """The biases whose forget-gate block char-rnn sets to 1: each LSTM's first linear map (none
        for gru and rnn)."""
        c = self.config
        if c['model'] in ('gru', 'rnn'):
            return []
        if c['model'] == 'lstm':
            return [f'layers.{l}.i2h.bias' for l in range(c['num_layers'])]
        names = [f'layers.{l}.time.t2h.bias' for l in range(c['num_layers'])]
        return names + (['depth.t2h.bias'] if c['tie_weights'] else [f'layers.{l}.depth.t2h.bias' for l in range(c['num_layers'])])

    @property
    def has_cell(self):
        """Whether the state has a c (the LSTMs) or h only (gru, rnn)."""
        return self.config['model'] in ('grid_lstm', 'lstm')

    @torch.no_grad()
    def init_parameters(self, rng):
        """char-rnn's initialisation, drawn as the TypeScript side draws it from the same Rng: every
        parameter uniform(−0.08, 0.08) in layout order, then the forget-gate blocks set to 1. From
        the same seed the weights are bit-identical to `train --seed S`'s."""
        for _, p in self.layout():  # one tensor at a time: the draws follow on from one to the next
            u = rng.take(p.numel())
            p.copy_((-INIT_RANGE + (INIT_RANGE - -INIT_RANGE) * u).reshape(p.shape))
        N = self.config['rnn_size']
        params = dict(self.named_parameters())
        for name in self.forget_bias_names():
            params[name][N:2 * N] = 1.0

    # -- the passes --------------------------------------------------------------------------------

    def zero_state(self, batch_size, device=None):
        c = self.config
        L, N = c['num_layers'], c['rnn_size']
        device = device or self.decoder.weight.device
        return torch.zeros(L, batch_size, N, device=device), torch.zeros(L, batch_size, N if self.has_cell else 0, device=device)

    def draw_masks(self, rng, T, B, first=0, total=None):
        """Dropout masks [L, T, B, N] as the TypeScript model draws them from `rng` (t outer, then
        the sites from bottom to top, B·N each; site s < L−1 is the input of layer s+1, site L−1 the
        top h). With `first` and `total`: rows first … first+B−1 of a batch of `total` streams, as
        one process of a data-parallel run (the generator then skips the whole batch's draws)."""
        c = self.config
        p, N, L = c['dropout'], c['rnn_size'], c['num_layers']
        total = B if total is None else total
        t = torch.arange(T).view(T, 1, 1, 1)
        s = torch.arange(L).view(1, L, 1, 1)
        b = torch.arange(first, first + B).view(1, 1, B, 1)
        n = torch.arange(N).view(1, 1, 1, N)
        index = ((t * L + s) * total + b) * N + n  # [T, L, B, N]: which draw each element is
        u = rng_mod.uniform(rng.state, index)
        rng.state = rng_mod.skip(rng.state, T * L * total * N)
        keep = torch.tensor(1 / (1 - p), dtype=torch.float32)
        masks = torch.where(u < p, torch.zeros((), dtype=torch.float32), keep)
        return masks.permute(1, 0, 2, 3).contiguous().to(self.decoder.weight.device)

    def forward(self, x, state=None, masks=None):
        """Log-probabilities [B, T, V] of the next character after each of x [B, T], and the state
        after step T−1. `masks` [L, T, B, N] (from draw_masks) applies dropout; in training mode
        without masks, dropout draws from torch's generator instead."""
        c = self.config
        B, T = x.shape
        L = c['num_layers']
        if state is None:
            state = self.zero_state(B, x.device)
        if masks is None and self.training and c['dropout'] > 0:
            p = c['dropout']
            masks = (torch.rand(L, T, B, c['rnn_size'], device=x.device) >= p).float() / (1 - p)
        h0, c0 = state
        below = self.embedding(x.t())  # [T, B, N], time-major inside
        cd = torch.zeros_like(below)  # the grid's c_d into layer 0 (§4.3)
        hs, cs = [], []
        for l, layer in enumerate(self.layers):
            if l > 0 and masks is not None:
                below = below * masks[l - 1]  # dropout on the input from below (h only, never c)
            if c['model'] != 'grid_lstm':
                below, h, cl = layer(below, h0[l], c0[l])
            else:
                depth = self.depth if c['tie_weights'] else layer.depth
                below, cd, h, cl = layer(below, cd, h0[l], c0[l], depth)
            hs.append(h)
            cs.append(cl)
        if masks is not None:
            below = below * masks[L - 1]  # dropout before the decoder
        logp = torch.log_softmax(self.decoder(below).float(), dim=-1)  # [T, B, V]
        return logp.transpose(0, 1), (torch.stack(hs), torch.stack(cs))


def objective(logp, y, batch_size=None):
    """char-rnn's objective: Σ_t mean_b NLL (the mean over `batch_size` streams, default B)."""
    nll = -logp.gather(-1, y.unsqueeze(-1)).squeeze(-1)  # [B, T]
    return nll.sum() / (batch_size or y.shape[0])


@torch.no_grad()
def nll_per_char(model, ids, chunk=100):
    """−log p of each of ids[1:] given the ones before it: one stream at batch 1 from a zero state."""
    model.eval()
    ids = torch.as_tensor(ids, dtype=torch.int64, device=model.decoder.weight.device)
    if ids.numel() < 2:
        raise ValueError(f'the text has {ids.numel()} character(s); at least 2 are needed to predict anything')
    state = model.zero_state(1)
    out = []
    for start in range(0, ids.numel() - 1, chunk):
        x = ids[start:start + chunk + 1]
        logp, state = model(x[:-1].view(1, -1), state)
        out.append(-logp[0].gather(-1, x[1:].view(-1, 1)).squeeze(-1))
    return torch.cat(out)


def evaluate(model, ids):
    """The mean NLL per character (nats) of one stream at batch 1 from a zero state, as the CLI's
    `eval` computes it (bits per character: this ÷ ln 2)."""
    return nll_per_char(model, ids).double().mean().item()


BITS_PER_NAT = 1 / math.log(2)
