"""Text, vocabulary and minibatches as the CLI makes them (src/train/data.ts, char-rnn's
CharSplitLMMinibatchLoader): the id stream cut into B contiguous streams of length S = nbatches·T;
batch k holds characters k·T … k·T+T−1 of each stream (targets: the next character); the first
train_frac of the batches train, the next val_frac validate, the rest are the test split."""
import torch

FRAC_EPS = 1e-9


def read_text(path, encoding='utf8'):
    """The file's text: `utf8` must be valid UTF-8 (a leading byte order mark is dropped);
    `latin1` makes each byte one character."""
    try:
        with open(path, 'rb') as f:
            raw = f.read()
    except FileNotFoundError:
        raise ValueError(f'--data {path}: no such file; pass an existing text file') from None
    except IsADirectoryError:
        raise ValueError(f'--data {path} is a directory; pass a text file') from None
    if encoding == 'latin1':
        return raw.decode('latin-1')
    try:
        return raw.decode('utf-8-sig')
    except UnicodeDecodeError as e:
        raise ValueError(f'--data {path} is not valid UTF-8 (byte {e.start}); pass --encoding latin1 to read it byte by byte') from None


def build_vocab(text):
    """The sorted set of the text's characters (code points), as the CLI's buildVocab."""
    return sorted(set(text))


def encode(text, vocab, chunk=1 << 22):
    """The ids of the text's characters (int32, one per code point); every character must be in
    `vocab`. Tensor work in chunks, so that an enwik8-sized text (10⁸ characters) takes seconds."""
    size = max(ord(ch) for ch in vocab) + 1
    table = torch.full((size,), -1, dtype=torch.int32)  # code point → id, −1 for none
    table[torch.tensor([ord(ch) for ch in vocab])] = torch.arange(len(vocab), dtype=torch.int32)
    ids = torch.empty(len(text), dtype=torch.int32)
    for start in range(0, len(text), chunk):
        part = text[start:start + chunk]
        cps = torch.frombuffer(bytearray(part.encode('utf-32-le', 'surrogatepass')), dtype=torch.int32).long()
        known = cps < size
        got = torch.where(known, table[cps.clamp(max=size - 1)], torch.full_like(cps, -1, dtype=torch.int32))
        if (got < 0).any():
            unknown = sorted(set(part) - set(vocab))
            shown = ', '.join(repr(ch) for ch in unknown[:10])
            raise ValueError(f'the text has character(s) outside the vocabulary ({shown}); use the text the model was trained on')
        ids[start:start + len(part)] = got
    return ids


def split_counts(nbatches, train_frac, val_frac):
    """(train, val, test) batch counts, as splitCounts in src/train/data.ts."""
    ntrain = int(nbatches * train_frac + FRAC_EPS)
    if not (1 - train_frac - val_frac > FRAC_EPS):
        return ntrain, nbatches - ntrain, 0
    nval = min(nbatches - ntrain, int(nbatches * val_frac + FRAC_EPS))
    return ntrain, nval, nbatches - ntrain - nval


class Batches:
    """The batches of an id stream for B streams × T steps. `get(split, k, rows)` gives x, y
    [len(rows), T] of batch k of `split` for the streams in `rows` (a range; all B by default)."""

    def __init__(self, ids, batch_size, seq_length, train_frac=0.95, val_frac=0.05):
        self.ids = ids
        self.B, self.T = batch_size, seq_length
        n = ids.numel()
        self.nbatches = (n - 1) // (batch_size * seq_length) if n >= 1 else 0
        if self.nbatches == 0:
            raise ValueError(f'the text has {n} character(s), too few for one batch of --batch-size {batch_size} × --seq-length {seq_length}')
        self.S = self.nbatches * seq_length
        ntrain, nval, ntest = split_counts(self.nbatches, train_frac, val_frac)
        self.sizes = {'train': ntrain, 'val': nval, 'test': ntest}
        self.start = {'train': 0, 'val': ntrain, 'test': ntrain + nval}
        for split, fix in (('train', 'raise --train-frac'), ('val', 'raise --val-frac')):
            if self.sizes[split] == 0:
                raise ValueError(f'the {split} split is empty ({self.nbatches} batches in all); lower --batch-size/--seq-length or {fix}')

    def get(self, split, k, rows=None):
        rows = range(self.B) if rows is None else rows
        col = (self.start[split] + k) * self.T
        base = torch.tensor([b * self.S + col for b in rows], dtype=torch.int64).view(-1, 1)
        at = base + torch.arange(self.T + 1).view(1, -1)  # [len(rows), T+1]
        window = self.ids[at].long()
        return window[:, :-1], window[:, 1:]
