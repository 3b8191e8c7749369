"""Reading source checkpoints and writing converted ones atomically.

Source checkpoints are read with ``torch.load(..., weights_only=False)``:
released checkpoints (mmcv 1.x / mmengine runners, mit-han-lab BEVFusion)
pickle non-tensor metadata that the weights-only unpickler of torch >= 2.6
rejects. Unpickling can run code, so this is done ONLY for files the user
names on the command line; never point the converter at an untrusted file.
Converted checkpoints hold tensors, strings, numbers and dicts only, so they
load with ``weights_only=True`` (mmengine's ``load_checkpoint`` / ``load_from``).
"""
import hashlib
import os
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Dict, Tuple, Union

import torch
from torch import Tensor

from .errors import ConversionError

CONTAINER_KEYS = ('state_dict', 'model', 'module')


def read_checkpoint(path: Union[str, Path]) -> Tuple['OrderedDict[str, Tensor]', Dict]:
    """Load a checkpoint file and return its state dict and metadata.

    Accepts ``{'state_dict': sd, ...}``, ``{'model': sd}``, ``{'module': sd}``
    and a bare ``{key: tensor}`` dict.

    Args:
        path (str | Path): Checkpoint chosen by the user (see module note on
            ``weights_only=False``).

    Returns:
        tuple: (state dict, key -> Tensor, in file order; the checkpoint's
        ``meta`` dict, empty if none).

    Raises:
        ConversionError: Missing file, or no state dict found.
    """
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f'source checkpoint {path} does not exist')
    checkpoint = torch.load(path, map_location='cpu', weights_only=False)
    if not isinstance(checkpoint, dict):
        raise ConversionError(
            f'{path}: expected a dict checkpoint, got {type(checkpoint).__name__}')
    meta = checkpoint.get('meta') if isinstance(checkpoint.get('meta'), dict) else {}
    for name in CONTAINER_KEYS:
        if isinstance(checkpoint.get(name), dict):
            state_dict = checkpoint[name]
            break
    else:
        state_dict, meta = checkpoint, {}
    tensors = OrderedDict((k, v) for k, v in state_dict.items() if isinstance(v, Tensor))
    if not tensors:
        raise ConversionError(
            f'{path}: no tensors found; expected a dict with one of {CONTAINER_KEYS} or a bare '
            f'key -> tensor dict, got top-level keys {sorted(checkpoint)[:10]}')
    others = [k for k, v in state_dict.items() if not isinstance(v, Tensor)]
    if others:
        raise ConversionError(f'{path}: state dict entries {others[:5]} are not tensors')
    return tensors, meta


def file_sha256(path: Union[str, Path]) -> str:
    """Hex SHA-256 of a file (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def write_checkpoint_atomic(checkpoint: Dict, path: Union[str, Path]) -> Path:
    """Save ``checkpoint`` to ``path`` via a temporary file and a rename.

    Nothing appears at ``path`` unless the whole save succeeded.

    Args:
        checkpoint (dict): Object for ``torch.save``.
        path (str | Path): Destination; its folder is created if needed.

    Returns:
        Path: ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent)
    try:
        with os.fdopen(fd, 'wb') as f:
            torch.save(checkpoint, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
