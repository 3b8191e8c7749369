"""Checks that the sensor files an info refers to exist and are well formed.

:func:`check_point_cloud_file` and :func:`check_image_file` only ``stat`` the
file, so checking every key frame and sweep of nuScenes trainval stays cheap.
:func:`check_point_cloud_values` and :func:`check_image_decodes` read the
file; the converter runs them on key frames only (the files that reach the
ground-truth database and every detection config), about the cost of the
ground-truth database pass. They raise :class:`InvalidSampleError`, which
``create_data --skip-invalid-samples`` turns into a dropped, counted sample.
"""
from pathlib import Path

import numpy as np

from .tables import NuScenesInfoError

FLOAT32_BYTES = 4


class InvalidSampleError(NuScenesInfoError):
    """A key frame whose data is unusable, for a reason that may be skipped.

    Attributes:
        reason (str): Short reason, the key of the skip counts
            (``'non-finite LiDAR points'``, ``'image does not decode'``,
            ``'missing camera'``).
    """

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


def check_point_cloud_values(path: Path, num_features: int = 5) -> None:
    """Check that every point of a ``.pcd.bin`` is finite (no NaN / Inf).

    Args:
        path (Path): LiDAR file of whole float32 points (see
            :func:`check_point_cloud_file`).
        num_features (int): float32 values per point.

    Raises:
        InvalidSampleError: some point has a NaN or infinite value.
    """
    points = np.fromfile(path, dtype=np.float32).reshape(-1, num_features)
    bad = np.flatnonzero(~np.isfinite(points).all(axis=1))
    if bad.size:
        raise InvalidSampleError(
            f'LiDAR file {path} has {bad.size} of {len(points)} points with NaN or Inf '
            f'values (first at point {bad[0]}: {points[bad[0]].tolist()})',
            reason='non-finite LiDAR points')


def check_image_decodes(path: Path) -> None:
    """Check that an image decodes (OpenCV, as mmcv's loader does).

    Measured with the pinned opencv: a JPEG cut anywhere after its header
    does not decode either (``imdecode`` returns None).

    Args:
        path (Path): camera image.

    Raises:
        InvalidSampleError: the file does not decode.
    """
    import cv2
    data = Path(path).read_bytes()
    if cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_REDUCED_GRAYSCALE_8) is None:
        raise InvalidSampleError(
            f'camera image {path} does not decode as an image (truncated or not an image; '
            f'{len(data)} bytes)', reason='image does not decode')


def check_point_cloud_file(path: Path, num_features: int = 5) -> None:
    """Check that a ``.pcd.bin`` holds whole points of ``num_features`` float32.

    Args:
        path (Path): LiDAR file (nuScenes layout: x, y, z, intensity, ring
            index as float32 per point).
        num_features (int): float32 values per point.

    Raises:
        NuScenesInfoError: the file is missing or its size is not a multiple
            of ``num_features * 4`` bytes (truncated).
    """
    path = Path(path)
    if not path.is_file():
        raise NuScenesInfoError(f'LiDAR file {path} not found')
    size = path.stat().st_size
    point_bytes = num_features * FLOAT32_BYTES
    if size % point_bytes != 0:
        raise NuScenesInfoError(
            f'LiDAR file {path} is truncated or corrupt: {size} bytes is not a '
            f'multiple of {point_bytes} ({num_features} float32 per point)')


def check_image_file(path: Path) -> None:
    """Check that an image file exists and is not empty.

    Args:
        path (Path): camera image (jpg).

    Raises:
        NuScenesInfoError: the file is missing or empty.
    """
    path = Path(path)
    if not path.is_file():
        raise NuScenesInfoError(f'camera image {path} not found')
    if path.stat().st_size == 0:
        raise NuScenesInfoError(f'camera image {path} is empty (0 bytes)')
