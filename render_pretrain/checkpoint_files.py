"""Checkpoint files: loading without running code, saving atomically.

Saving (:func:`save_checkpoint_file_atomic`) goes through a temporary file in
the destination folder, flushed to disk and renamed over the destination, so
the destination holds either its old content or the complete new file, never
a truncated one; the file gets the mode the process umask gives new files.

Loading:

``torch.load(weights_only=False)`` unpickles arbitrary objects: a crafted
``.pth`` whose pickle calls ``os.system`` runs that command while loading.
torch >= 2.6 defaults to ``weights_only=True``, which only rebuilds tensors,
containers and primitive types, and refuses everything else. mmengine 0.10.x
Runner checkpoints also hold a few harmless non-tensor classes (the message
hub's ``HistoryBuffer`` and the numpy arrays / scalars inside it and in
``meta``); :func:`load_checkpoint_file` allows exactly those
(:data:`SAFE_GLOBAL_NAMES`), inside a ``torch.serialization.safe_globals``
context, so the allow-list does not leak into other ``torch.load`` calls.

The list was read off real checkpoints with
``torch.serialization.get_unsafe_globals_in_checkpoint``: an mmengine Runner
checkpoint of the tiny NS-MAE camera + LiDAR config (``epoch_1.pth``, AdamW,
param schedulers, message hub) and the converters' outputs.

Errors name the file: :class:`UntrustedCheckpointError` for a pickle that
needs a class outside the list (nothing of it has run), and
:class:`CorruptCheckpointError` for a truncated file or one that is not a
``torch.save`` file at all.
"""
import importlib
import os
import tempfile
import pickle
import re
from pathlib import Path
from typing import Any, List, Union

import torch

#: ``module.qualname`` of every non-tensor class an mmengine 0.10.x
#: checkpoint may hold. Entries whose module is not installed (mmengine, or
#: numpy's ``dtypes`` module before numpy 1.25) are skipped.
SAFE_GLOBAL_NAMES = (
    'mmengine.logging.history_buffer.HistoryBuffer',
    'numpy.core.multiarray._reconstruct',
    'numpy.core.multiarray.scalar',
    'numpy.ndarray',
    'numpy.dtype',
) + tuple(f'numpy.dtypes.{kind}DType' for kind in (
    'Bool', 'Int8', 'Int16', 'Int32', 'Int64', 'UInt8', 'UInt16', 'UInt32', 'UInt64',
    'Float16', 'Float32', 'Float64', 'Long', 'ULong', 'LongLong', 'ULongLong'))
#: ``builtins.getattr`` also appears: a ``HistoryBuffer`` pickles its
#: statistics methods as ``getattr(HistoryBuffer, 'min')``. The real getattr
#: would let a pickle reach any attribute (``fn.__globals__``, ...), so it is
#: served by :func:`_history_buffer_getattr`, which allows only that.
GETATTR_NAME = 'builtins.getattr'


class UntrustedCheckpointError(pickle.UnpicklingError):
    """A checkpoint's pickle needs a class that is not allow-listed.

    Nothing from the file has run: the weights-only unpickler stops at the
    first global it does not know.
    """


class CorruptCheckpointError(RuntimeError):
    """A file is not a readable ``torch.save`` checkpoint (truncated, empty
    or some other format)."""


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """``getattr`` restricted to a ``HistoryBuffer`` statistics method.

    Raises:
        pickle.UnpicklingError: Any other object or attribute.
    """
    from mmengine.logging import HistoryBuffer
    allowed = {'min', 'max', 'current', 'mean', *HistoryBuffer._statistics_methods}
    if obj is HistoryBuffer and isinstance(name, str) and name in allowed:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'Weights only load failed: GLOBAL {GETATTR_NAME}({obj!r}, {name!r}) is not allowed '
        '(only getattr(HistoryBuffer, <statistics method>) is)')


def _unpickler_reason(message: str) -> str:
    """The specific part of torch's weights-only error (drops its boilerplate)."""
    if 'WeightsUnpickler error:' in message:
        reason = message.split('WeightsUnpickler error:', 1)[1]
    else:
        paragraphs = [p.strip() for p in re.split(r'\n\s*\n', message) if p.strip()]
        reason = paragraphs[1] if len(paragraphs) > 2 else paragraphs[-1]
    reason = re.split(r'\n\s*\n', reason.strip())[0]
    return reason.split(' Please use `torch.serialization')[0].strip()


def checkpoint_safe_globals() -> List[Any]:
    """The allow-listed classes and functions that are importable here.

    Returns:
        list: Objects (or ``(object, 'module.name')`` pairs) for
        ``torch.serialization.safe_globals``.
    """
    found: List[Any] = []
    try:
        import mmengine.logging  # noqa: F401
        found.append((_history_buffer_getattr, GETATTR_NAME))
    except ImportError:
        pass
    for name in SAFE_GLOBAL_NAMES:
        module_name, attr = name.rsplit('.', 1)
        try:
            found.append(getattr(importlib.import_module(module_name), attr))
        except (ImportError, AttributeError):
            continue
    return found


def load_checkpoint_file(path: Union[str, Path], map_location: Any = 'cpu') -> Any:
    """``torch.load`` a checkpoint file with the weights-only unpickler.

    Args:
        path (str | Path): Checkpoint file.
        map_location: As in :func:`torch.load`.

    Returns:
        Any: The unpickled checkpoint (usually a dict).

    Raises:
        FileNotFoundError: ``path`` is not a file.
        UntrustedCheckpointError: The pickle needs a class outside
            :data:`SAFE_GLOBAL_NAMES` (e.g. ``posix.system``).
        CorruptCheckpointError: Truncated, empty or not a checkpoint.
    """
    path = os.path.expanduser(str(path))
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{path} can not be found.')
    try:
        with torch.serialization.safe_globals(checkpoint_safe_globals()):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        message = str(err)
        reason = _unpickler_reason(message)
        if 'Weights only load failed' in message and re.search(
                r'GLOBAL|global|allowlist|unrecognized function|not allowed', reason):
            raise UntrustedCheckpointError(
                f'{path}: refused to load: its pickle needs something that is not one of the '
                f'classes mmengine checkpoints hold ({reason}; allowed: '
                'render_pretrain.checkpoint_files.SAFE_GLOBAL_NAMES). Loading it could run '
                'code; nothing from it was run. If you made this file yourself and trust it, '
                'load it with torch.load(..., weights_only=False).') from None
        raise CorruptCheckpointError(
            f'{path} is not a readable checkpoint (not a torch.save file?): '
            f'{reason[:200]}') from None
    except (RuntimeError, EOFError, KeyError, ValueError, OSError) as err:
        raise CorruptCheckpointError(
            f'{path} is not a readable checkpoint (truncated, e.g. by a run killed while '
            f'saving, or not a torch.save file; size {os.path.getsize(path)} bytes): '
            f'{type(err).__name__}: {str(err)[:200]}') from err


def current_umask() -> int:
    """The process umask, read without changing it where Linux allows.

    Returns:
        int: Permission bits masked off new files (e.g. ``0o022``).
    """
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('Umask:'):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def save_checkpoint_file_atomic(checkpoint: Any, path: Union[str, Path]) -> Path:
    """``torch.save`` to ``path`` via a temporary file and a rename.

    Args:
        checkpoint: Object for :func:`torch.save`.
        path (str | Path): Destination; its folder is created if needed. An
            existing file there is replaced only once the new one is
            complete.

    Returns:
        Path: ``path``.
    """
    path = Path(os.path.expanduser(str(path)))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent)
    try:
        with os.fdopen(fd, 'wb') as f:
            torch.save(checkpoint, f)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates 0600; give the file the mode open() would have.
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
