"""grid-lstm's models and checkpoints in PyTorch: the same parameters, equations and files as the
TypeScript project, for training on GPUs or many machines and bringing the result back."""
from .checkpoint import CheckpointError, load_checkpoint, read_training, save_checkpoint
from .data import build_vocab, encode, read_text
from .models import CharModel, evaluate, nll_per_char, objective
from .rng import Rng

__all__ = ['CharModel', 'CheckpointError', 'Rng', 'build_vocab', 'encode', 'evaluate', 'load_checkpoint',
           'nll_per_char', 'objective', 'read_text', 'read_training', 'save_checkpoint']
