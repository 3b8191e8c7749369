"""Loading the nuScenes tables with errors that name the broken record.

The devkit raises a bare ``KeyError(token)`` when a record points at a token
that does not exist. :func:`load_nuscenes` and :func:`get_record` turn that
into a :class:`NuScenesInfoError` naming the table, the token and the record
that refers to it.
"""
import logging
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

logger = logging.getLogger(__name__)


class NuScenesInfoError(ValueError):
    """Raised when the nuScenes data on disk cannot be turned into infos."""


def _tables_referencing(table_root: Path, token: str) -> List[str]:
    """Names of the table files whose text mentions ``token`` (error path only)."""
    return sorted(path.name for path in table_root.glob('*.json')
                  if token in path.read_text())


class _MapMaskNotLoaded:
    """Stands in for the devkit's ``MapMask`` when map masks are not wanted.

    ``NuScenes.__init__`` opens ``maps/<token>.png`` of every ``map`` record
    (and asserts that it exists); the converter never reads those masks
    (BEV labels come from ``maps/expansion/``), so without ``--no-map``'s
    maps the tables still load. Using the mask raises an error naming it.
    """

    def __init__(self, img_file: str, resolution: float = 0.1):
        self.img_file = img_file

    def __getattr__(self, name):
        raise NuScenesInfoError(f'map mask {self.img_file} was not loaded (created with '
                                '--no-map)')


def load_nuscenes(dataroot: Path, version: str, with_map_masks: bool = True) -> Any:
    """Load the devkit ``NuScenes`` object, naming broken tokens on failure.

    Args:
        dataroot (Path): nuScenes root holding ``<version>/*.json``.
        version (str): table folder, e.g. ``'v1.0-mini'``.
        with_map_masks (bool): let the devkit open ``maps/*.png`` (it
            asserts they exist); False works for a root without ``maps/``.

    Returns:
        nuscenes.NuScenes: the loaded tables.

    Raises:
        NuScenesInfoError: the table folder is missing, a record refers to a
            token absent from its table, or (``with_map_masks``) a map mask
            is missing.
    """
    from nuscenes import nuscenes as devkit
    from nuscenes.nuscenes import NuScenes
    table_root = Path(dataroot) / version
    if not table_root.is_dir():
        raise NuScenesInfoError(
            f'nuScenes table folder {table_root} not found: expected '
            f'{version}/sample.json etc. under the data root {dataroot}')
    original_map_mask = devkit.MapMask
    if not with_map_masks:
        devkit.MapMask = _MapMaskNotLoaded
    try:
        return NuScenes(version=version, dataroot=str(dataroot), verbose=False)
    except AssertionError as err:
        if 'map mask' not in str(err):
            raise
        raise NuScenesInfoError(f'{err} under the data root {dataroot}: pass --no-map for a '
                                'data root without maps/') from err
    except KeyError as err:
        token = err.args[0] if err.args else ''
        where = _tables_referencing(table_root, str(token))
        raise NuScenesInfoError(
            f'broken token {token!r} in the nuScenes tables at {table_root}: '
            f'referenced in {where} but absent from the table it points to'
        ) from err
    finally:
        devkit.MapMask = original_map_mask


def get_record(nusc: Any, table: str, token: str, referrer: str) -> Dict:
    """``nusc.get(table, token)`` with an error naming who asked for it.

    Args:
        nusc (nuscenes.NuScenes): loaded tables.
        table (str): table name, e.g. ``'ego_pose'``.
        token (str): token looked up.
        referrer (str): what holds the token, e.g.
            ``"sample_data 3f2a...ego_pose_token"``, quoted in the error.

    Returns:
        dict: the record.

    Raises:
        NuScenesInfoError: the token is not in the table.
    """
    try:
        return nusc.get(table, token)
    except KeyError as err:
        raise NuScenesInfoError(
            f'broken token: {referrer} = {token!r} does not exist in '
            f'{nusc.version}/{table}.json') from err


def previous_sample_data(nusc: Any, sample_data: Dict,
                         count: int) -> Iterator[Tuple[Dict, Dict, Dict]]:
    """Walk ``sample_data.prev`` back from a frame, newest first.

    Args:
        nusc (nuscenes.NuScenes): loaded tables.
        sample_data (dict): the frame to start from (not yielded).
        count (int): at most this many earlier frames (fewer at the start
            of a scene).

    Yields:
        tuple[dict, dict, dict]: each earlier frame's ``sample_data``
        record, its ``calibrated_sensor`` and its ``ego_pose``.

    Raises:
        NuScenesInfoError: a ``prev``, calibration or pose token is broken.
    """
    current = sample_data
    for _ in range(count):
        if not current['prev']:
            return
        current = get_record(nusc, 'sample_data', current['prev'],
                             f"sample_data {current['token']} prev")
        token = current['token']
        calibration = get_record(nusc, 'calibrated_sensor',
                                 current['calibrated_sensor_token'],
                                 f'sample_data {token} calibrated_sensor_token')
        pose = get_record(nusc, 'ego_pose', current['ego_pose_token'],
                          f'sample_data {token} ego_pose_token')
        yield current, calibration, pose
