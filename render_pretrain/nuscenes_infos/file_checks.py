"""Checks that the sensor files an info refers to exist and are well formed.

Both functions only ``stat`` the file, so checking every key frame and sweep
of nuScenes trainval stays cheap.
"""
from pathlib import Path

from .tables import NuScenesInfoError

FLOAT32_BYTES = 4


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
