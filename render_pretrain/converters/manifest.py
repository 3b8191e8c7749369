"""Target manifests: the state-dict key -> shape of a stock model.

A manifest is a JSON file ``{"source": ..., "keys": {key: [shape...]}}``
(the format of the shared ``manifests/`` folder); a bare ``{key: shape}``
mapping is accepted too. The converter verifies its output against one.
"""
import json
from pathlib import Path
from typing import Dict, Tuple, Union

from .errors import ConversionError

Manifest = Dict[str, Tuple[int, ...]]


def load_manifest(path: Union[str, Path]) -> Manifest:
    """Read a key -> shape manifest.

    Args:
        path (str | Path): JSON file.

    Returns:
        dict[str, tuple[int, ...]]: State-dict key -> tensor shape
        (``()`` for scalars such as ``num_batches_tracked``).

    Raises:
        ConversionError: The file is missing, not JSON, or not a mapping of
            keys to integer lists.
    """
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f'target manifest {path} does not exist')
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ConversionError(f'target manifest {path} is not valid JSON: {err}') from err
    keys = data.get('keys', data) if isinstance(data, dict) else None
    if not isinstance(keys, dict) or not keys:
        raise ConversionError(f'target manifest {path} must hold a non-empty "keys" mapping '
                              'of state-dict key -> shape list')
    manifest = {}
    for key, shape in keys.items():
        if not isinstance(shape, list) or not all(isinstance(s, int) for s in shape):
            raise ConversionError(f'target manifest {path}: shape of {key!r} must be a list '
                                  f'of ints, got {shape!r}')
        manifest[key] = tuple(shape)
    return manifest
