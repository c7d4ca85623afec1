/** The Python that has PyTorch ($PYTHON, python3, /usr/bin/python3, the first that imports torch), or null. */
export function findTorchPython(): string | null;
