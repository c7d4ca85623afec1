"""The PyTorch side of the parity tests (test/pytorch.test.ts runs it): for each case of a JSON job
it loads a checkpoint (made by the TypeScript side) or makes a model from a seed and saves it
(for the TypeScript side to load), then computes what the test compares:
  - `losses`: −log p of each character of `stream` (one stream, batch 1, zero state: `eval`);
  - `loss`, `grads`: the loss per character of one batch x, y [B, T] from state (h, c), with the
    dropout masks drawn from `rngState`, and the gradient of char-rnn's objective Σ_t mean_b NLL;
  - `after`: the parameters after clipping that gradient to ±gradClip and one RMSprop step
    (alpha = decayRate) from the optimiser state saved in the checkpoint (`optimizer.m`);
  - `rngStateAfter`: the generator's state after the masks.
Usage: python parity.py JOB.json > RESULT.json
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
from grid_lstm_torch import CharModel, Rng, load_checkpoint, nll_per_char, objective, read_training, save_checkpoint  # noqa: E402
from grid_lstm_torch.optim import RMSprop, clip_gradients  # noqa: E402

torch.set_num_threads(1)


def run_case(case):
    if 'checkpoint' in case:
        model, vocab, config = load_checkpoint(case['checkpoint'])
    else:
        c = case['make']
        vocab = c['vocab']
        model = CharModel(c['model'], len(vocab), c['rnn_size'], c['num_layers'], c['tie_weights'], c['dropout'])
        model.init_parameters(Rng(c['seed']))
        m = torch.tensor(c['m'], dtype=torch.float32)
        save_checkpoint(c['out'], model, vocab, optimizer={'m': m})
    B, T = case['B'], case['T']
    L, N = model.config['num_layers'], model.config['rnn_size']
    losses = nll_per_char(model, case['stream'])
    x = torch.tensor(case['x']).view(B, T)
    y = torch.tensor(case['y']).view(B, T)
    # (h [L, B, N]; c as h for the LSTMs, empty for gru and rnn)
    state = tuple(torch.tensor(case['state'][k], dtype=torch.float32).view(L, B, n) for k, n in (('h', N), ('c', N if model.has_cell else 0)))
    model.train()
    rng = Rng(state=case['rngState'])
    masks = model.draw_masks(rng, T, B) if model.config['dropout'] > 0 else None
    model.zero_grad()
    logp, _ = model(x, state, masks)
    obj = objective(logp, y)
    obj.backward()
    layout = model.layout()
    grads = {name: p.grad.reshape(-1).tolist() for name, p in layout}
    clip_gradients([p for _, p in layout], case['gradClip'])
    opt = RMSprop([p for _, p in layout], lr=case['lr'], alpha=case['decayRate'])
    opt.load_flat_state(layout, read_training(case['checkpoint'] if 'checkpoint' in case else case['make']['out'])['optimizer']['m'])
    opt.step()
    after = {name: p.detach().reshape(-1).tolist() for name, p in layout}
    return {'losses': losses.tolist(), 'loss': obj.item() / T, 'grads': grads, 'after': after, 'rngStateAfter': rng.state}


def main():
    with open(sys.argv[1]) as f:
        job = json.load(f)
    json.dump({'torch': torch.__version__, 'results': [run_case(c) for c in job['cases']]}, sys.stdout)


if __name__ == '__main__':
    main()
