"""Reading and writing safetensors files with nothing but the standard library and torch.

The format: an 8-byte little-endian header length n, n bytes of JSON header, then the raw
tensor data. The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]}
(offsets into the data, which starts right after the header) and may hold "__metadata__", a map
of strings to strings. This project writes F32 only, so that is what is read and written here.
"""
import json
import struct

import torch

# Headers longer than this are refused before they are read (the TypeScript reader's limit).
MAX_HEADER_LENGTH = 100 * 1024 * 1024
DTYPES = {'F32': (torch.float32, 4)}


class SafetensorsError(ValueError):
    """A file that is not a readable safetensors file of F32 tensors."""


def read_safetensors(path):
    """{name: float32 tensor}, {metadata key: string} of the file at `path`."""
    with open(path, 'rb') as f:
        raw = f.read()
    if len(raw) < 8:
        raise SafetensorsError(f'{path}: {len(raw)} bytes, too short for a safetensors header')
    (n,) = struct.unpack('<Q', raw[:8])
    if n > MAX_HEADER_LENGTH or 8 + n > len(raw):
        raise SafetensorsError(f'{path}: the header length {n} does not fit in the file of {len(raw)} bytes')
    try:
        header = json.loads(raw[8:8 + n].decode('utf-8'))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SafetensorsError(f'{path}: the header is not valid JSON ({e})') from None
    if not isinstance(header, dict):
        raise SafetensorsError(f'{path}: the header is not a JSON object')
    metadata = header.pop('__metadata__', None) or {}
    data = memoryview(raw)[8 + n:]
    tensors = {}
    for name, spec in header.items():
        dtype = spec.get('dtype') if isinstance(spec, dict) else None
        if dtype not in DTYPES:
            raise SafetensorsError(f'{path}: tensor {name} has dtype {dtype!r}; only F32 is supported')
        torch_dtype, size = DTYPES[dtype]
        shape = [int(d) for d in spec['shape']]
        begin, end = (int(o) for o in spec['data_offsets'])
        count = 1
        for d in shape:
            count *= d
        if not (0 <= begin <= end <= len(data)) or end - begin != count * size:
            raise SafetensorsError(f'{path}: tensor {name}: data_offsets {[begin, end]} do not fit its shape {shape}')
        # (the little-endian bytes; torch.frombuffer reads native order, little-endian on every
        # machine torch ships for)
        t = torch.frombuffer(bytearray(data[begin:end]), dtype=torch_dtype) if count > 0 else torch.zeros(0)
        tensors[name] = t.reshape(shape)
    return tensors, metadata


def safetensors_bytes(tensors, metadata=None):
    """The bytes of a safetensors file of `tensors` (name: tensor, saved as F32 in this order)."""
    header = {}
    chunks = []
    offset = 0
    if metadata:
        header['__metadata__'] = {str(k): str(v) for k, v in metadata.items()}
    for name, t in tensors.items():
        b = t.detach().to('cpu', torch.float32).contiguous().numpy().astype('<f4').tobytes()
        header[name] = {'dtype': 'F32', 'shape': list(t.shape), 'data_offsets': [offset, offset + len(b)]}
        chunks.append(b)
        offset += len(b)
    text = json.dumps(header, separators=(',', ':'), ensure_ascii=False).encode('utf-8')
    text += b' ' * (-len(text) % 8)  # pad so that the data starts 8-byte aligned
    return struct.pack('<Q', len(text)) + text + b''.join(chunks)


def write_safetensors(path, tensors, metadata=None):
    """Writes the file atomically: to a temporary name beside it, then renamed over `path`."""
    import os
    data = safetensors_bytes(tensors, metadata)
    tmp = f'{path}.tmp{os.getpid()}'
    with open(tmp, 'wb') as f:
        f.write(data)
    os.replace(tmp, path)


def read_metadata(path):
    """The `__metadata__` of the file at `path`, reading its header only."""
    with open(path, 'rb') as f:
        head = f.read(8)
        if len(head) < 8:
            raise SafetensorsError(f'{path}: too short for a safetensors header')
        (n,) = struct.unpack('<Q', head)
        if n > MAX_HEADER_LENGTH:
            raise SafetensorsError(f'{path}: the header length {n} is implausible')
        try:
            header = json.loads(f.read(n).decode('utf-8'))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise SafetensorsError(f'{path}: the header is not valid JSON ({e})') from None
    return header.get('__metadata__') or {} if isinstance(header, dict) else {}
