"""The project's checkpoints (format `grid-lstm/1`, docs/checkpoints.md) from PyTorch.

A checkpoint is a safetensors file: the model's parameters (F32, under their names), optionally
the optimiser state `optimizer.m` (RMSprop's mean square, laid out like all parameters
concatenated in layout order), and the metadata `format` ("grid-lstm/1"), `config` (JSON: model,
vocab, rnn_size, num_layers, tie_weights, dropout, and `task` for the CLI's addition task) and,
written by training, `training` (JSON: iteration, learning rate, optimiser, RNG state, data
position, options, loss history) and `carry` (JSON: the hidden state carried between batches,
base64 of F32 [L, B, N]; c is "" for gru and rnn, which carry h only).
"""
import base64
import json

import torch

from .models import MODELS, CharModel
from .safetensors import read_safetensors, write_safetensors

FORMAT = 'grid-lstm/1'
OPTIMIZER_PREFIX = 'optimizer.'


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded; the message names the file and the problem."""


def _config(meta, path):
    if meta.get('format') != FORMAT:
        raise CheckpointError(f'{path}: the metadata "format" is {meta.get("format")!r}, not {FORMAT!r}; not a grid-lstm checkpoint')
    try:
        c = json.loads(meta['config'])
    except (KeyError, json.JSONDecodeError) as e:
        raise CheckpointError(f'{path}: no readable "config" metadata ({e}); the checkpoint is incomplete') from None
    vocab = c.get('vocab')
    if not isinstance(vocab, list) or len(vocab) < 2 or len(set(vocab)) != len(vocab) or any(not isinstance(ch, str) or len(ch) != 1 for ch in vocab):
        raise CheckpointError(f'{path}: config.vocab must be a list of at least 2 distinct one-character strings')
    if c.get('model') not in MODELS:
        raise CheckpointError(f'{path}: config.model must be one of {", ".join(MODELS)}, got {c.get("model")!r}')
    for key in ('rnn_size', 'num_layers'):
        if not isinstance(c.get(key), int) or isinstance(c.get(key), bool) or c[key] <= 0:
            raise CheckpointError(f'{path}: config.{key} must be a positive integer, got {c.get(key)!r}')
    return c, vocab


def load_checkpoint(path, device='cpu'):
    """(model, vocab, config) of a checkpoint: a CharModel holding its weights (in eval mode), the
    vocabulary as a list of characters in id order, and the config dict as stored (model, vocab,
    rnn_size, num_layers, tie_weights, dropout)."""
    tensors, meta = read_safetensors(path)
    config, vocab = _config(meta, path)
    model = CharModel(config['model'], len(vocab), config['rnn_size'], config['num_layers'],
                      config.get('tie_weights', True), config.get('dropout', 0.0))
    want = model.state_dict()
    given = {k: v for k, v in tensors.items() if not k.startswith(OPTIMIZER_PREFIX)}
    missing = sorted(set(want) - set(given))
    extra = sorted(set(given) - set(want))
    if missing or extra:
        raise CheckpointError(f'{path}: the tensors do not match the config ({config["model"]}): '
                              f'missing {", ".join(missing) or "none"}; unexpected {", ".join(extra) or "none"}')
    for name, t in given.items():
        if list(t.shape) != list(want[name].shape):
            raise CheckpointError(f'{path}: {name} has shape {list(t.shape)}, the config needs {list(want[name].shape)}')
        if not torch.isfinite(t).all():
            raise CheckpointError(f'{path}: {name} holds a NaN or infinite value; the checkpoint is corrupt')
    model.load_state_dict(given)
    model.eval()
    return model.to(device), vocab, config


def read_training(path):
    """What a checkpoint holds for resuming a run: {'training': dict or None, 'optimizer': {key:
    flat tensor}, 'carry': (h, c) [L, B, N] or None}."""
    tensors, meta = read_safetensors(path)
    config, _ = _config(meta, path)
    training = json.loads(meta['training']) if 'training' in meta else None
    optimizer = {k[len(OPTIMIZER_PREFIX):]: v for k, v in tensors.items() if k.startswith(OPTIMIZER_PREFIX)}
    carry = None
    if 'carry' in meta:
        cj = json.loads(meta['carry'])
        L, B, N = config['num_layers'], cj['batch_size'], config['rnn_size']

        def dec(text, n):  # base64 of F32 [L, B, n]; n = 0: "" (gru and rnn carry no c)
            raw = bytearray(base64.b64decode(text))
            return torch.frombuffer(raw, dtype=torch.float32).reshape(L, B, n) if raw else torch.zeros(L, B, 0)

        carry = (dec(cj['h'], N), dec(cj['c'], N if config['model'] in ('grid_lstm', 'lstm') else 0))
    return {'training': training, 'optimizer': optimizer, 'carry': carry}


def config_of(model, vocab):
    c = model.config
    return {'model': c['model'], 'vocab': list(vocab), 'rnn_size': c['rnn_size'], 'num_layers': c['num_layers'],
            'tie_weights': c['tie_weights'], 'dropout': c['dropout']}


def save_checkpoint(path, model, vocab, config=None, training=None, optimizer=None, carry=None):
    """Writes `model`'s weights and its `config` metadata (made from the model and `vocab` when
    `config` is None; given, its model shape must be the model's) as a grid-lstm/1 checkpoint that
    the CLI samples, evaluates, inspects, visualises and trains from (--init-from). Training adds
    `training` (a dict, src/train/checkpoint.ts TrainingState), `optimizer` ({key: flat tensor in
    layout order}) and `carry` ((h, c), each [L, B, N]), with which the CLI can --resume too."""
    own = config_of(model, vocab)
    if config is not None:
        for key in ('model', 'rnn_size', 'num_layers', 'tie_weights'):
            if key in config and config[key] != own[key] and not (key == 'tie_weights' and own['model'] != 'grid_lstm'):
                raise CheckpointError(f'config {key} is {config[key]!r} but the model has {own[key]!r}')
        own['dropout'] = float(config.get('dropout', own['dropout']))
        if 'task' in config:  # the addition task's spec (src/train/addition.ts), kept as given
            own['task'] = config['task']
    if len(vocab) != model.config['vocab_size']:
        raise CheckpointError(f'the vocabulary has {len(vocab)} characters but the model {model.config["vocab_size"]}')
    tensors = {name: p for name, p in model.layout()}
    for key, flat in (optimizer or {}).items():
        tensors[OPTIMIZER_PREFIX + key] = flat.reshape(-1)
    meta = {'format': FORMAT, 'config': json.dumps(own, ensure_ascii=False)}
    if training is not None:
        meta['training'] = json.dumps(training, ensure_ascii=False)
    if carry is not None:
        h, c = carry
        enc = lambda t: base64.b64encode(t.detach().to('cpu', torch.float32).contiguous().numpy().astype('<f4').tobytes()).decode('ascii')
        meta['carry'] = json.dumps({'batch_size': h.shape[1], 'h': enc(h), 'c': enc(c)})
    write_safetensors(path, tensors, meta)
