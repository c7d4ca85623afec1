"""Training in PyTorch, as the CLI's `train` (see grid_lstm_torch/train.py):
python train.py --data input.txt ...  or  torchrun --nproc_per_node N train.py --data input.txt ..."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from grid_lstm_torch.train import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
