"""The project's random number generator (mulberry32, src/nn/rng.ts), vectorised with torch.

Its state is one 32-bit counter that each draw advances by 0x6D2B79F5, and a draw is a fixed
mixing function of the new state, so draw k of a sequence is known without the k before it.
That lets PyTorch draw the same initial weights and dropout masks as the TypeScript side, for a
whole tensor at once, and lets each process of a data-parallel run draw only its own rows.
"""
import torch

INCREMENT = 0x6D2B79F5
MASK = 0xFFFFFFFF


def seed_state(seed):
    """The state Rng(seed) starts from (the seed mixed once, so nearby seeds start far apart)."""
    s = (int(seed) & MASK) ^ 0x9E3779B9
    return (s * 0x85EBCA6B) & MASK


def _imul(a, b):
    """Low 32 bits of a·b for int64 tensors of values in [0, 2³²) (Math.imul), without overflow."""
    lo = a * (b & 0xFFFF)
    hi = ((a * (b >> 16)) & 0xFFFF) << 16
    return (lo + hi) & MASK


def draws_u32(state, index):
    """The 32-bit draws number `index` (an int64 tensor, 0 = the next one) after `state`."""
    z = (state + (index + 1) * INCREMENT) & MASK
    z = _imul(z ^ (z >> 15), z | 1)
    z = (z ^ (z + _imul(z ^ (z >> 7), z | 61))) & MASK
    return (z ^ (z >> 14)) & MASK


def uniform(state, index):
    """Rng.uniform() of those draws, in [0, 1), float64."""
    return draws_u32(state, index).to(torch.float64) / 4294967296.0


def skip(state, n):
    """The state after n draws."""
    return (state + n * INCREMENT) & MASK


class Rng:
    """The generator with its state, as src/nn/rng.ts; `take(n)` draws n uniforms at once."""

    def __init__(self, seed=None, state=None):
        self.state = seed_state(seed) if state is None else int(state) & MASK

    def take(self, n, start=0, total=None):
        """Uniforms number start … start+n−1 of the next `total` draws (default n); then skips `total`."""
        u = uniform(self.state, torch.arange(start, start + n, dtype=torch.int64))
        self.state = skip(self.state, n if total is None else total)
        return u
