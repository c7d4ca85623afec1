"""Torch7's optim.rmsprop, as the CLI's optimiser (src/train/optim.ts), and char-rnn's clipping.

    m = α·m + (1−α)·g²;   x −= lr·g / (√m + ε)        (α = --decay-rate, ε = 1e-8)

(torch.optim.RMSprop without momentum or centring computes the same; this class keeps the state
as one tensor `m` per parameter so that checkpoints can hold it as the CLI's `optimizer.m`, all
parameters concatenated in layout order.)
"""
import torch

EPSILON = 1e-8


class RMSprop(torch.optim.Optimizer):
    def __init__(self, params, lr, alpha=0.95, eps=EPSILON):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps))
        self.step_count = 0

    @torch.no_grad()
    def step(self):
        self.step_count += 1
        for group in self.param_groups:
            lr, alpha, eps = group['lr'], group['alpha'], group['eps']
            for p in group['params']:
                if p.grad is None:
                    continue
                m = self.state[p].setdefault('m', torch.zeros_like(p, memory_format=torch.contiguous_format))
                m.mul_(alpha).addcmul_(p.grad, p.grad, value=1 - alpha)
                p.addcdiv_(p.grad, m.sqrt().add_(eps), value=-lr)

    @property
    def lr(self):
        return self.param_groups[0]['lr']

    @lr.setter
    def lr(self, value):
        for group in self.param_groups:
            group['lr'] = value

    def flat_state(self, layout):
        """`m` of the parameters of `layout` ((name, parameter) in order), concatenated: [P]."""
        return torch.cat([self.state[p]['m'].reshape(-1) if 'm' in self.state[p] else torch.zeros(p.numel(), device=p.device)
                          for _, p in layout])

    def load_flat_state(self, layout, flat):
        """Sets `m` from a concatenated [P] tensor (a checkpoint's `optimizer.m`)."""
        total = sum(p.numel() for _, p in layout)
        if flat.numel() != total:
            raise ValueError(f'optimizer.m has {flat.numel()} values but the model has {total} parameters')
        at = 0
        for _, p in layout:
            self.state[p]['m'] = flat[at:at + p.numel()].reshape(p.shape).to(p.device, torch.float32).clone()
            at += p.numel()


@torch.no_grad()
def clip_gradients(params, clip):
    """char-rnn's grad_clip: every gradient element clamped to [−clip, clip]; nothing when clip ≤ 0."""
    if clip > 0:
        for p in params:
            if p.grad is not None:
                p.grad.clamp_(-clip, clip)
