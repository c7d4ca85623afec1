"""torchrun, for a PyTorch whose torchrun cannot start on this Python: torch 1.13's (Debian
bookworm's python3-torch) reads its --redirects/--tee values by iterating an enum.Flag, which
Python 3.11 changed, so every launch fails with "'NoneType' object has no attribute 'get'".
This runs the same launcher (torch.distributed.run) with that reading fixed, and changes nothing
where torchrun works:  python torchrun.py --nproc_per_node 2 train.py --data input.txt ..."""
import sys

from torch.distributed import run
from torch.distributed.elastic.multiprocessing import api

if api.Std.from_str('0') is None:  # the broken reading: Std(0) is missed
    def from_str(value):
        if ':' not in value:
            return api.Std(int(value))
        return {int(i): api.Std(int(v)) for i, v in (m.split(':') for m in value.split(','))}

    api.Std.from_str = staticmethod(from_str)

if __name__ == '__main__':
    sys.argv[0] = 'torchrun'
    sys.exit(run.main())
