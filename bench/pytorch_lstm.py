"""PyTorch's training speed on the stacked LSTM that `npm run bench -- --threads` measures, for a
side-by-side comparison (called by bench/run.mjs; needs python3 and torch, e.g. Debian's
python3-torch).

    python3 bench/pytorch_lstm.py --threads 2 --rnn-size 128 --num-layers 2

The same sizes and update as grid-lstm's `--model lstm`: embedding V×N, nn.LSTM of L layers,
a linear decoder, the batch-mean cross-entropy summed over T steps, the gradient clamped to
[-5, 5] element-wise, RMSprop (lr 2e-3, alpha 0.95), the hidden state carried (detached) from
batch to batch. The ids are random: the speed does not depend on them. Prints one line:
RESULT {"threads": N, "chars_per_s": ..., "step_ms": [...]}.
"""
import argparse
import json
import time

import torch

p = argparse.ArgumentParser()
p.add_argument('--threads', type=int, default=1)
p.add_argument('--rnn-size', type=int, default=128)
p.add_argument('--num-layers', type=int, default=2)
p.add_argument('--batch-size', type=int, default=50)
p.add_argument('--seq-length', type=int, default=50)
p.add_argument('--vocab', type=int, default=98)
p.add_argument('--seconds', type=float, default=4.0, help='measure for about this long')
a = p.parse_args()

torch.set_num_threads(a.threads)
torch.manual_seed(123)
B, T, N, L, V = a.batch_size, a.seq_length, a.rnn_size, a.num_layers, a.vocab


class Lstm(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = torch.nn.Embedding(V, N)
        self.lstm = torch.nn.LSTM(N, N, num_layers=L)  # time-major: [T, B, N]
        self.decoder = torch.nn.Linear(N, V)

    def forward(self, x, state):
        h, state = self.lstm(self.embedding(x), state)
        return self.decoder(h), state


model = Lstm()
optim = torch.optim.RMSprop(model.parameters(), lr=2e-3, alpha=0.95)
state = (torch.zeros(L, B, N), torch.zeros(L, B, N))


def step():
    global state
    x = torch.randint(0, V, (T, B))
    y = torch.randint(0, V, (T, B))
    logits, new_state = model(x, state)
    # char-rnn's objective: the batch-mean NLL summed over the T steps.
    loss = torch.nn.functional.cross_entropy(logits.reshape(T * B, V), y.reshape(T * B)) * T
    optim.zero_grad(set_to_none=False)
    loss.backward()
    torch.nn.utils.clip_grad_value_(model.parameters(), 5.0)
    optim.step()
    state = (new_state[0].detach(), new_state[1].detach())


for _ in range(3):  # warm-up
    step()
times = []
t_end = time.perf_counter() + a.seconds
while time.perf_counter() < t_end or len(times) < 5:
    t0 = time.perf_counter()
    step()
    times.append(time.perf_counter() - t0)
times.sort()
median = times[len(times) // 2]
print('RESULT ' + json.dumps({'threads': a.threads, 'torch': torch.__version__, 'chars_per_s': B * T / median,
                              'step_ms': [round(t * 1e3, 2) for t in times[:: max(1, len(times) // 10)]]}))
