// The Python that has PyTorch, for the scripts and tests that run python/ and bench/pytorch_lstm.py:
// $PYTHON, else python3 on the PATH, else the system's /usr/bin/python3 (Debian's python3-torch
// installs for it, and a pyenv or venv python3 first on the PATH hides it). Null when none has torch.
import { spawnSync } from 'node:child_process';

export function findTorchPython() {
  return [process.env.PYTHON, 'python3', '/usr/bin/python3'].find(
    (py) => py && spawnSync(py, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0,
  ) ?? null;
}
