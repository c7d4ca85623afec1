"""Training as the CLI's `train` does it (src/train/train.ts, char-rnn's train.lua), in PyTorch,
data-parallel over processes started by torchrun (DistributedDataParallel; gloo on CPU, nccl on
GPUs):

    python train.py --data input.txt --rnn-size 512 --num-layers 3                 # one process
    torchrun --nproc_per_node 2 train.py --data input.txt ...                      # two, one machine
    torchrun --nnodes 4 --nproc_per_node 8 --rdzv-endpoint HOST:29500 train.py ... # a cluster

The same as the CLI: the options (flag names and defaults), the batches (B streams over the
corpus, T steps, the hidden state carried from batch to batch, the train/val split), the
objective (Σ_t mean_b NLL), the element-wise clipping to ±grad_clip, RMSprop with α = decay_rate
and ε = 1e-8, the learning-rate decay per epoch, the initial weights and dropout masks (drawn
from the project's generator from --seed, so a run starts from the CLI's weights bit for bit),
validation every --eval-val-every steps and at the end, and the checkpoints, named and filled as
the CLI's (training state, optimiser state, carried state): the CLI samples, evaluates,
inspects, plots and visualises them, and continues a run with --resume or --init-from.

Data parallel: each process takes a contiguous share of the B streams (B must be at least the
number of processes), draws its rows of the batch's dropout masks, and scales its loss so that
DDP's average of the gradients is the gradient of the whole batch: a run on W processes equals a
one-process run of the same batch up to float rounding.
"""
import argparse
import contextlib
import json
import math
import os
import sys
import time
from decimal import ROUND_HALF_UP, Decimal

import torch
import torch.distributed as dist

from . import rng as rng_mod
from .checkpoint import load_checkpoint, read_training, save_checkpoint
from .data import Batches, build_vocab, encode, read_text
from .models import MODELS, CharModel
from .optim import RMSprop, clip_gradients
from .safetensors import read_metadata

# The CLI's train options (camelCase as in a checkpoint's training.options) and char-rnn's defaults.
DEFAULTS = dict(model='grid_lstm', rnnSize=128, numLayers=2, tieWeights=True, dropout=0.0, optim='rmsprop',
                learningRate=2e-3, learningRateDecay=0.97, learningRateDecayAfter=10.0, decayRate=0.95, seqLength=50,
                batchSize=50, maxEpochs=50.0, maxSteps=None, gradClip=5.0, trainFrac=0.95, valFrac=0.05, seed=123,
                printEvery=1, evalValEvery=1000, checkpointDir='cv', savefile=None, data=None, encoding='utf8',
                keep='all', patience=0, log='csv', threads=1, task='char', digitLength=4)
# What may change on --resume (as the CLI allows); the rest comes from the checkpoint.
CHANGEABLE = ('maxEpochs', 'maxSteps', 'printEvery', 'evalValEvery', 'checkpointDir', 'savefile', 'data', 'encoding', 'log')


class UsageError(Exception):
    pass


def flag(key):
    """'rnnSize' → '--rnn-size'"""
    return '--' + ''.join('-' + ch.lower() if ch.isupper() else ch for ch in key)


METAVARS = dict(data='FILE', encoding='ENC', model='KIND', rnnSize='N', numLayers='L', dropout='P', learningRate='LR',
                learningRateDecayAfter='E', decayRate='A', seqLength='T', batchSize='B', maxEpochs='E', maxSteps='S',
                gradClip='C', trainFrac='F', valFrac='F', seed='S', printEvery='K', evalValEvery='K',
                checkpointDir='DIR', savefile='NAME', log='KIND')


class OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line that names the problem (the CLI's way), exit code 2."""

    def error(self, message):
        self.exit(2, f'{self.prog}: error: {message} (see {self.prog} --help)\n')


# Flag → option key, for the options the CLI's train has.
KEYS = {flag(k): k for k in DEFAULTS if k not in ('keep', 'patience', 'threads', 'optim', 'task', 'digitLength')}
ADDITION = 'the addition task (--task addition), which only the CLI trains (train.py trains on text)'



def parse_args(argv):
    """The CLI's train flags (their defaults: DEFAULTS, applied later so that a resume can tell
    which were given), and this script's own: --device, --amp."""
    p = OneLineParser(prog=os.path.basename(sys.argv[0]) or 'train.py', description="Trains a grid-lstm model in PyTorch as the CLI's train does "
                      '(the same flags), on one process or many under torchrun.')
    D = DEFAULTS
    types = {bool: None, int: int, float: float, str: str, type(None): str}
    helps = {
        'data': "UTF-8 text to train on (required, but for --resume, which finds the run's)",
        'encoding': 'how to read --data: utf8 or latin1', 'model': 'grid_lstm, lstm, gru or rnn', 'rnnSize': 'hidden units per LSTM',
        'tieWeights': 'grid_lstm: share the depth LSTM weights across layers', 'decayRate': "RMSprop's α",
        'batchSize': 'sequences per batch, over all processes', 'maxSteps': 'stop after this many iterations in all',
        'gradClip': 'clamp each gradient element to [-C, C]; 0 disables',
        'log': 'csv: write the loss history to DIR/<savefile>.log.csv as the run goes (as the CLI); none',
    }
    for f, key in KEYS.items():
        kind = int if key == 'maxSteps' else float if key in ('maxEpochs', 'learningRateDecayAfter') else type(D[key])
        h = f'{helps.get(key, "")} (default {D[key]})'.strip()
        if kind is bool:
            p.add_argument(f, dest=key, action=argparse.BooleanOptionalAction, default=None, help=h)
        else:
            p.add_argument(f, dest=key, type=types[kind], default=None, help=h, metavar=METAVARS.get(key, 'X'))
    p.add_argument('--optim', choices=['rmsprop'], default=None, help='rmsprop (the only one here)')
    p.add_argument('--init-from', dest='initFrom', metavar='CK', help='start a new run from the weights of this checkpoint')
    p.add_argument('--resume', metavar='CK', help="continue the run saved in this checkpoint (the CLI's or this script's)")
    p.add_argument('--device', default='auto', help='auto (cuda when there is a GPU, else cpu), cpu, cuda (default auto)')
    p.add_argument('--amp', action='store_true',
                   help='bfloat16 autocast on CUDA GPUs that support it: matmuls in bf16; cell state, softmax and weights in fp32')
    args = p.parse_args(argv)
    args.given = {key: getattr(args, key) for key in KEYS.values() if getattr(args, key) is not None}
    for choice, allowed in (('model', MODELS), ('encoding', ('utf8', 'latin1')), ('log', ('csv', 'none'))):
        if choice in args.given and args.given[choice] not in allowed:
            p.error(f'{flag(choice)} must be one of {", ".join(allowed)}, got {args.given[choice]}')
    return args


def to_fixed(x, digits):
    """JavaScript's x.toFixed(digits) (a tie rounds away from zero), for names the CLI would give."""
    return str(Decimal(x).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))


class Dist:
    """This process's place in a torchrun job (one process, rank 0 of 1, without torchrun)."""

    def __init__(self, device):
        self.world = int(os.environ.get('WORLD_SIZE', '1'))
        self.rank = int(os.environ.get('RANK', '0'))
        local = int(os.environ.get('LOCAL_RANK', '0'))
        if device == 'auto':
            device = 'cuda' if torch.cuda.is_available() else 'cpu'
        if device == 'cuda':
            if not torch.cuda.is_available():
                raise UsageError('--device cuda but torch sees no CUDA GPU; use --device cpu')
            torch.cuda.set_device(local)
            self.device = torch.device('cuda', local)
        else:
            self.device = torch.device(device)
        if self.world > 1:
            dist.init_process_group('nccl' if self.device.type == 'cuda' else 'gloo')

    def sum(self, t):
        if self.world > 1:
            dist.all_reduce(t)
        return t

    def rows(self, B):
        """The streams of a batch of B that this process trains: a contiguous share, as even as can be."""
        return range(self.rank * B // self.world, (self.rank + 1) * B // self.world)


LOG_HEADER = 'iteration,epoch,train_loss,val_loss,learning_rate'


def js_number(x):
    """A number as JavaScript's String(x) writes it (the CLI's loss log): the shortest digits that
    read back exactly, without a fraction for whole numbers, an exponent below 1e-6 or from 1e21."""
    if x is None:
        return ''
    x = float(x)
    if x == 0:
        return '0'
    if not math.isfinite(x):
        return 'NaN' if x != x else ('Infinity' if x > 0 else '-Infinity')
    sign = '-' if x < 0 else ''
    digits, exp = Decimal(repr(abs(x))).normalize().as_tuple()[1:]
    d = ''.join(map(str, digits))
    k, n = len(d), len(d) + exp  # the value is 0.d × 10^n
    if k <= n <= 21:
        return sign + d + '0' * (n - k)
    if 0 < n <= 21:
        return sign + d[:n] + '.' + d[n:]
    if -6 < n <= 0:
        return sign + '0.' + '0' * -n + d
    e = n - 1
    return sign + d[0] + ('.' + d[1:] if k > 1 else '') + 'e' + ('+' if e > 0 else '-') + str(abs(e))


def log_row(iteration, epoch, train, val, rate):
    return ','.join(js_number(v) for v in (iteration, epoch, train, val, rate))


def newest_checkpoint(path):
    """`path`, or for a directory its newest .safetensors file (the one written last; among files of
    the same time, the one furthest into training), as the CLI's --resume reads a directory."""
    if not os.path.isdir(path):
        return path
    files = [os.path.join(path, f) for f in os.listdir(path) if f.endswith('.safetensors')]
    if not files:
        raise UsageError(f'{path} holds no .safetensors checkpoint; name a checkpoint file or a run directory')

    def key(f):
        try:
            iteration = json.loads(read_metadata(f)['training'])['iteration']
        except (ValueError, OSError, KeyError, TypeError):
            iteration = -1
        return os.stat(f).st_mtime, iteration

    return max(files, key=key)


class Run:
    def __init__(self, args):
        self.d = Dist(args.device)
        self.main = self.d.rank == 0
        if args.resume:
            args.resume = newest_checkpoint(args.resume)
        self.history = {'train': [], 'val': [], 'lr': []}
        self.best = None
        self.records = []
        self.iteration = 0
        resume = read_training(args.resume) if args.resume else None
        if args.resume:
            self.setup_resume(args, resume)
            self.log(f'resuming {args.resume} at iteration {self.iteration}')
        else:
            self.setup_new(args)
        o = self.o
        if o['batchSize'] < self.d.world:
            raise UsageError(f'--batch-size {o["batchSize"]} is smaller than the {self.d.world} processes; each needs a stream')
        if args.amp and self.d.device.type != 'cuda':
            raise UsageError('--amp needs a CUDA GPU (on a CPU the run is float32, as the CLI)')
        if args.amp and not torch.cuda.is_bf16_supported():
            raise UsageError('--amp: this GPU does not support bfloat16; run without --amp (float32)')
        self.amp = args.amp
        self.rows = self.d.rows(o['batchSize'])
        self.model.to(self.d.device)
        self.opt = RMSprop([p for _, p in self.model.layout()], lr=o['learningRate'], alpha=o['decayRate'])
        self.carry = self.model.zero_state(len(self.rows))
        if resume:
            self.restore(resume)
        if self.d.world > 1:
            self.ddp = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=[self.d.device.index] if self.d.device.type == 'cuda' else None)
        else:
            self.ddp = self.model

    # -- setting up --------------------------------------------------------------------------------

    def setup_new(self, args):
        o = {**DEFAULTS, **args.given}
        if o['data'] is None:
            raise UsageError("--data FILE is needed: the text to train on (the built-in corpus is the CLI's only)")
        check_options(o)
        text = read_text(o['data'], o['encoding'])
        if args.initFrom:
            if os.path.isdir(args.initFrom):
                raise UsageError(f'--init-from takes a checkpoint file, and {args.initFrom} is a directory; '
                                 'name one of its files (grid-lstm sample DIR says which has the lowest validation loss)')
            model, vocab, config = load_checkpoint(args.initFrom)
            if (config.get('task') or {}).get('kind', 'char') != 'char':
                raise UsageError(f'{args.initFrom} was trained on {ADDITION}')
            for key, ck in (('model', 'model'), ('rnnSize', 'rnn_size'), ('numLayers', 'num_layers'), ('tieWeights', 'tie_weights')):
                o[key] = config[ck]  # the shape is the checkpoint's (as the CLI's --init-from)
            weights = model.state_dict()
        else:
            vocab = build_vocab(text)
            if len(vocab) < 2:
                raise UsageError(f'--data {o["data"]} has fewer than 2 distinct characters; a model needs at least 2')
        self.vocab = vocab
        self.ids = encode(text, vocab)
        self.o = o
        self.model = CharModel(o['model'], len(vocab), o['rnnSize'], o['numLayers'], o['tieWeights'], o['dropout'])
        # The weights the CLI draws from --seed (then replaced by --init-from's, as the CLI does); the
        # generator goes on to draw the dropout masks.
        self.rng = rng_mod.Rng(o['seed'])
        self.model.init_parameters(self.rng)
        if args.initFrom:
            self.model.load_state_dict(weights)
        self.batches = Batches(self.ids, o['batchSize'], o['seqLength'], o['trainFrac'], o['valFrac'])
        self.batch_ix = {'train': 0, 'val': 0, 'test': 0}
        self.history['lr'] = [[0, o['learningRate']]]

    def setup_resume(self, args, resume):
        t = resume['training']
        if t is None:
            raise UsageError(f'{args.resume} has no training state (weights only); use --init-from to start a new run from it')
        if t['options'].get('task', 'char') != 'char':
            raise UsageError(f'{args.resume} is a run of {ADDITION}')
        if t['optimizer']['name'] != 'rmsprop':
            raise UsageError(f'{args.resume} was trained with {t["optimizer"]["name"]}; this script has RMSprop only')
        saved = {**DEFAULTS, **t['options']}
        o = dict(saved)
        for key, value in args.given.items():
            if key in CHANGEABLE:
                o[key] = value
            elif key != 'learningRate' and value != saved[key]:
                raise UsageError(f'{flag(key)} cannot change when resuming (the run used {saved[key]}); drop it, '
                                 'or use --init-from to start a new run from these weights')
        check_options(o)
        if o['data'] is None:
            raise UsageError(f'{args.resume} was trained on the built-in corpus; pass --data with that text')
        model, vocab, _ = load_checkpoint(args.resume)
        self.o, self.vocab, self.model = o, vocab, model
        self.model.train()
        self.ids = encode(read_text(o['data'], o['encoding']), vocab)
        self.batches = Batches(self.ids, o['batchSize'], o['seqLength'], o['trainFrac'], o['valFrac'])
        if t.get('batches') is not None and t['batches'] != self.batches.nbatches:
            raise UsageError(f'the data gives {self.batches.nbatches} batches but the run had {t["batches"]}; resume with the same --data')
        self.rng = rng_mod.Rng(state=t['rngState'])
        self.batch_ix = dict(t['batchIx'])
        self.iteration = t['iteration']
        self.history = {'train': list(t['history']['train']), 'val': list(t['history']['val']),
                        'lr': list(t['history'].get('lr') or [[0, o['learningRate']]])}
        self.best = t.get('bestValLoss')
        self.records = list(t.get('checkpoints') or []) if os.path.abspath(o['checkpointDir']) == os.path.abspath(t['options'].get('checkpointDir', '')) else []
        self.resume_lr = t['learningRate']
        self.resume_steps = t['optimizer']['stepCount']
        new = args.given.get('learningRate')
        if new is not None and new != t['learningRate']:
            # A new rate from the next step on, the optimiser state kept, recorded in history.lr (as the CLI).
            self.resume_lr = o['learningRate'] = new
            if self.history['lr'][-1][0] == self.iteration:
                self.history['lr'].pop()
            self.history['lr'].append([self.iteration, new])
            self.log(f'learning rate: {t["learningRate"]} → {new} from iteration {self.iteration + 1} on, optimiser state kept')
        else:
            o['learningRate'] = saved['learningRate']

    def restore(self, resume):
        """The optimiser state, learning rate and carried state of a resumed run (this process's rows)."""
        self.opt.load_flat_state(self.model.layout(), resume['optimizer']['m'])
        self.opt.lr = self.resume_lr
        self.opt.step_count = self.resume_steps
        if resume['carry'] is not None:
            h, c = resume['carry']
            if h.shape[1] != self.o['batchSize']:
                raise UsageError(f'the carried state is for --batch-size {h.shape[1]} but the run has {self.o["batchSize"]}')
            r = self.rows
            self.carry = (h[:, r.start:r.stop].to(self.d.device).contiguous(), c[:, r.start:r.stop].to(self.d.device).contiguous())

    # -- the loop ----------------------------------------------------------------------------------

    @property
    def ntrain(self):
        return self.batches.sizes['train']

    @property
    def total(self):
        by_epochs = math.floor(self.o['maxEpochs'] * self.ntrain)
        return by_epochs if self.o['maxSteps'] is None else min(by_epochs, self.o['maxSteps'])

    def autocast(self):
        """bf16 autocast on a GPU with --amp; nothing otherwise."""
        return torch.autocast('cuda', dtype=torch.bfloat16) if self.amp else contextlib.nullcontext()

    def forward_nll(self, x, y, state, masks):
        """Σ NLL over this process's rows of the batch, and the state after it."""
        with self.autocast():
            logp, state = self.ddp(x, state, masks)
        return -logp.gather(-1, y.unsqueeze(-1)).sum(), state

    def step(self):
        o = self.o
        B, T = o['batchSize'], o['seqLength']
        k = self.batch_ix['train']
        x, y = (a.to(self.d.device) for a in self.batches.get('train', k, self.rows))
        masks = self.model.draw_masks(self.rng, T, len(self.rows), self.rows.start, B) if o['dropout'] > 0 else None
        self.model.train()
        self.opt.zero_grad(set_to_none=False)
        nll, state = self.forward_nll(x, y, self.carry, masks)
        # Σ_t mean_b NLL of the whole batch = (Σ over every process's rows) / B; DDP averages the
        # gradients over the W processes, so each contributes W·(its sum)/B.
        (nll * self.d.world / B).backward()
        loss = self.d.sum(nll.detach().double()).item() / (B * T)
        grads = [p.grad for _, p in self.model.layout()]
        if not math.isfinite(loss) or not all(torch.isfinite(g).all() for g in grads):
            raise RuntimeError(f'training stopped at iteration {self.iteration + 1}: the loss or a gradient is not finite '
                               f'(loss {loss}); try a lower --learning-rate or a smaller --grad-clip; the weights were not updated')
        self.carry = tuple(s.detach() for s in state)
        self.batch_ix['train'] = 0 if k + 1 == self.ntrain else k + 1
        clip_gradients([p for _, p in self.model.layout()], o['gradClip'])
        self.opt.step()
        self.iteration += 1
        if self.iteration % self.ntrain == 0 and o['learningRateDecay'] < 1 and self.iteration / self.ntrain >= o['learningRateDecayAfter']:
            self.opt.lr = self.opt.lr * o['learningRateDecay']
        self.history['train'].append([self.iteration, loss])
        return loss

    @torch.no_grad()
    def validate(self):
        """Mean NLL per character over the whole val split, from a zero state carried through it."""
        o = self.o
        self.model.eval()
        state = self.model.zero_state(len(self.rows))
        total = torch.zeros((), dtype=torch.float64, device=self.d.device)
        n = self.batches.sizes['val']
        for k in range(n):
            x, y = (a.to(self.d.device) for a in self.batches.get('val', k, self.rows))
            with self.autocast():
                logp, state = self.model(x, state)
            total += -logp.gather(-1, y.unsqueeze(-1)).double().sum()
        return self.d.sum(total).item() / (n * o['batchSize'] * o['seqLength'])

    def full_carry(self):
        """The carried state of all B streams, [L, B, N] (each process fills its rows; summed)."""
        L, B = self.o['numLayers'], self.o['batchSize']
        out = []
        for part in self.carry:  # h, then c ([L, B, 0] for gru and rnn)
            full = torch.zeros(L, B, part.shape[-1], device=self.d.device)
            full[:, self.rows.start:self.rows.stop] = part
            out.append(self.d.sum(full).cpu())
        return tuple(out)

    def training_state(self):
        o = self.o
        return {
            'iteration': self.iteration, 'epoch': self.iteration / self.ntrain, 'learningRate': self.opt.lr,
            'optimizer': {'name': 'rmsprop', 'stepCount': self.opt.step_count, 'decayRate': o['decayRate'],
                          'beta1': 0.9, 'beta2': 0.999, 'epsilon': 1e-8},
            'rngState': self.rng.state, 'batchIx': dict(self.batch_ix), 'batches': self.batches.nbatches,
            'options': dict(o), 'history': self.history, 'bestValLoss': self.best, 'checkpoints': self.records,
        }

    def save(self, val_loss):
        o = self.o
        stem = o['savefile'] or o['model']
        name = f'lm_{stem}_epoch{to_fixed(self.iteration / self.ntrain, 2)}_{to_fixed(val_loss, 4)}.safetensors'
        self.records = [r for r in self.records if r['name'] != name] + [{'name': name, 'iteration': self.iteration, 'valLoss': val_loss}]
        carry = self.full_carry()  # (every process takes part)
        path = os.path.join(o['checkpointDir'], name)
        if self.main:
            os.makedirs(o['checkpointDir'], exist_ok=True)
            save_checkpoint(path, self.model, self.vocab, training=self.training_state(),
                            optimizer={'m': self.opt.flat_state(self.model.layout()).cpu()}, carry=carry)
        return path

    def log_path(self):
        o = self.o
        return os.path.join(o['checkpointDir'], f'{o["savefile"] or o["model"]}.log.csv') if o['log'] == 'csv' else None

    def log_lines(self):
        """The loss log for the run's history, as the CLI's logLines: a row per step (with the rate of
        its update, replayed from history.lr and the decay schedule) and per validation, in order."""
        o, bpe = self.o, self.ntrain
        lines = [LOG_HEADER]
        train, val, lr = self.history['train'], self.history['val'], self.history['lr']
        rate = lr[0][1] if lr else o['learningRate']
        next_lr, v = 1, 0
        for it, loss in train:
            while v < len(val) and val[v][0] <= it - 1:
                lines.append(log_row(val[v][0], val[v][0] / bpe, None, val[v][1], None))
                v += 1
            while next_lr < len(lr) and lr[next_lr][0] < it:  # a rate set at iteration k applies from step k + 1
                rate = lr[next_lr][1]
                next_lr += 1
            lines.append(log_row(it, it / bpe, loss, None, rate))
            if it % bpe == 0 and o['learningRateDecay'] < 1 and it / bpe >= o['learningRateDecayAfter']:
                rate *= o['learningRateDecay']
        lines += [log_row(it, it / bpe, None, loss, None) for it, loss in val[v:]]
        return lines

    def start_log(self):
        """Writes the loss log anew from the history; a log there of another run (its lines and this
        run's differ) is moved aside to <stem>.<N>.log.csv first, as the CLI does."""
        path = self.log_path()
        if path is None or not self.main:
            return
        os.makedirs(self.o['checkpointDir'], exist_ok=True)
        text = ''.join(line + '\n' for line in self.log_lines())
        if os.path.exists(path):
            with open(path, encoding='utf-8', errors='replace') as f:
                old = f.read(len(text) + 1)
            m = min(len(old), len(text))
            if old[:m] != text[:m] or (len(self.log_lines()) == 1 and old.count('\n') > 1):
                stem = path[:-len('.log.csv')]
                n = 1
                while os.path.exists(f'{stem}.{n}.log.csv'):
                    n += 1
                os.replace(path, f'{stem}.{n}.log.csv')
                self.log(f'warning: moved the loss log of another run to {stem}.{n}.log.csv; use --savefile to keep runs\' logs apart')
        with open(path, 'w', encoding='utf-8') as f:
            f.write(text)

    def append_log(self, line):
        path = self.log_path()
        if path is not None and self.main:
            with open(path, 'a', encoding='utf-8') as f:
                f.write(line + '\n')

    def log(self, text):
        if self.main:
            print(text, file=sys.stderr, flush=True)

    def run(self):
        o = self.o
        total = self.total
        m = self.model
        self.log(f'{o["model"]} {o["numLayers"]}×{o["rnnSize"]}'
                 f'{(" tied" if o["tieWeights"] else " untied") if o["model"] == "grid_lstm" else ""}, '
                 f'{m.parameter_count():,} parameters, vocabulary {len(self.vocab)}')
        s = self.batches.sizes
        self.log(f'{s["train"]}/{s["val"]}/{s["test"]} train/val/test batches of {o["batchSize"]}×{o["seqLength"]}, '
                 f'{self.d.world} process{"es" if self.d.world > 1 else ""} on {self.d.device.type}'
                 f'{", bf16 autocast" if self.amp else ""}, torch {torch.__version__}')
        val_loss, path = None, None
        self.start_log()
        while self.iteration < total:
            t0 = time.perf_counter()
            rate = self.opt.lr  # this step's (a decay after it changes the rate)
            loss = self.step()
            self.append_log(log_row(self.iteration, self.iteration / self.ntrain, loss, None, rate))
            if self.iteration % o['printEvery'] == 0:
                self.log(f'{self.iteration}/{total} (epoch {self.iteration / self.ntrain:.3f}), train_loss = {loss:.8f}, '
                         f'time/batch = {time.perf_counter() - t0:.4f}s')
            first = self.history['train'][0][1]
            if loss > 3 * first:
                raise RuntimeError(f'training stopped at iteration {self.iteration}: the loss {loss} exceeds 3× the first loss '
                                   f'({first:.4f}); try a lower --learning-rate (now {o["learningRate"]})')
            if self.iteration % o['evalValEvery'] == 0 or self.iteration == total:
                val_loss, path = self.validate_and_save()
        if val_loss is None:  # resumed at its end: its validation, unless it had one at this iteration
            done = [v for it, v in self.history['val'] if it == self.iteration]
            val_loss, path = (done[-1], 'none written (the run was already at its end)') if done else self.validate_and_save()
        self.log(f'done: val_loss = {val_loss:.4f} nats/char')
        self.log(f'checkpoint: {path}')

    def validate_and_save(self):
        val_loss = self.validate()
        if not math.isfinite(val_loss):
            raise RuntimeError(f'training stopped at iteration {self.iteration}: the validation loss is {val_loss}')
        self.history['val'].append([self.iteration, val_loss])
        self.append_log(log_row(self.iteration, self.iteration / self.ntrain, None, val_loss, None))
        if self.best is None or val_loss < self.best:
            self.best = val_loss
        path = self.save(val_loss)
        self.log(f'validation at iteration {self.iteration}: val_loss = {val_loss:.4f}; saved checkpoint {path}')
        return val_loss, path


def check_options(o):
    for key in ('rnnSize', 'numLayers', 'seqLength', 'batchSize', 'printEvery', 'evalValEvery'):
        if not (isinstance(o[key], int) and o[key] > 0):
            raise UsageError(f'{flag(key)} must be a whole number > 0, got {o[key]}')
    if o['maxSteps'] is not None and o['maxSteps'] <= 0:
        raise UsageError(f'--max-steps must be a whole number > 0, got {o["maxSteps"]}')
    checks = (('dropout', lambda v: 0 <= v < 1, 'in [0, 1)'), ('learningRate', lambda v: v > 0, 'a number > 0'),
              ('learningRateDecay', lambda v: 0 < v <= 1, 'in (0, 1]'), ('learningRateDecayAfter', lambda v: v >= 0, 'a number ≥ 0'),
              ('decayRate', lambda v: 0 <= v < 1, 'in [0, 1)'), ('maxEpochs', lambda v: v > 0, 'a number > 0'),
              ('gradClip', lambda v: v >= 0, 'a number ≥ 0 (0 disables clipping)'), ('trainFrac', lambda v: 0 < v <= 1, 'in (0, 1]'),
              ('valFrac', lambda v: 0 < v <= 1, 'in (0, 1]'))
    for key, ok, what in checks:
        if not (math.isfinite(o[key]) and ok(o[key])):
            raise UsageError(f'{flag(key)} must be {what}, got {o[key]}')
    if o['trainFrac'] + o['valFrac'] > 1 + 1e-9:
        raise UsageError(f'--train-frac + --val-frac must be at most 1, got {o["trainFrac"]} + {o["valFrac"]}')


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        Run(args).run()
    except (UsageError, ValueError, OSError, RuntimeError) as e:
        print(f'train.py: error: {e}', file=sys.stderr)
        return 2 if isinstance(e, (UsageError, ValueError, OSError)) else 1
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    return 0


if __name__ == '__main__':
    sys.exit(main())
