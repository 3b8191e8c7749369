"""Reading source checkpoints and writing converted ones atomically.

Source checkpoints are read like mmengine's loader reads them here
(:func:`render_pretrain.checkpoint_files.load_checkpoint_file`): the
weights-only unpickler with exactly the non-tensor classes mmengine
checkpoints hold allowed, so a crafted file cannot run code; it is refused
with an error naming it, as is a truncated or non-checkpoint file.
Converted checkpoints hold tensors, strings, numbers and dicts only, so they
load with ``weights_only=True`` (mmengine's ``load_checkpoint`` / ``load_from``).
Outputs are written atomically with the mode the umask gives new files.
"""
import hashlib
import pickle
from collections import OrderedDict
from pathlib import Path
from typing import Dict, Tuple, Union

from torch import Tensor

from ..checkpoint_files import (CorruptCheckpointError, UntrustedCheckpointError,
                                load_checkpoint_file, save_checkpoint_file_atomic)
from .errors import ConversionError

CONTAINER_KEYS = ('state_dict', 'model', 'module')


def read_checkpoint(path: Union[str, Path]) -> Tuple['OrderedDict[str, Tensor]', Dict]:
    """Load a checkpoint file and return its state dict and metadata.

    Accepts ``{'state_dict': sd, ...}``, ``{'model': sd}``, ``{'module': sd}``
    and a bare ``{key: tensor}`` dict.

    Args:
        path (str | Path): Checkpoint file (read weights-only, see the
            module note).

    Returns:
        tuple: (state dict, key -> Tensor, in file order; the checkpoint's
        ``meta`` dict, empty if none).

    Raises:
        ConversionError: Missing, truncated, non-checkpoint or untrusted
            (needs a class outside the allow-list) file, or no state dict.
    """
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f'source checkpoint {path} does not exist')
    try:
        checkpoint = load_checkpoint_file(path, map_location='cpu')
    except (CorruptCheckpointError, UntrustedCheckpointError, pickle.UnpicklingError) as err:
        raise ConversionError(f'source checkpoint: {err}') from None
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

    Nothing appears at ``path`` unless the whole save succeeded; the file
    gets the umask's mode (not ``mkstemp``'s 0600).

    Args:
        checkpoint (dict): Object for ``torch.save``.
        path (str | Path): Destination; its folder is created if needed.

    Returns:
        Path: ``path``.
    """
    return save_checkpoint_file_atomic(checkpoint, path)
