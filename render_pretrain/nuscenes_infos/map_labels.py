"""BEV map-segmentation labels rasterised from the nuScenes map expansion.

Convention (BEVFusion's map-segmentation task): a square grid centred on the
key frame's LiDAR origin, in the **LiDAR frame** (x, y axes of LIDAR_TOP,
rotated about z only by the LiDAR's global yaw; pitch and roll ignored),
x and y in [-50, 50) m at 0.5 m -> 200 x 200 cells, 6 classes in this order:
``drivable_area, ped_crossing, walkway, stop_line, carpark_area, divider``
(``divider`` = ``road_divider`` | ``lane_divider`` lines).

The label of a sample is an array ``map_seg`` of shape (6, X, Y), dtype bool,
indexed ``[class, ix, iy]`` with ``ix = floor((x + 50) / 0.5)`` and
``iy = floor((y + 50) / 0.5)`` (first spatial axis = LiDAR x). It is saved
as ``np.savez_compressed(path, map_seg=...)``. The devkit rasteriser puts
pixel centres on the cell's lower corner, so boundaries can shift by up to
half a cell (0.25 m). Labels are in the un-augmented LiDAR frame: a pipeline
that rotates/flips the points must transform the label map the same way.
"""
import logging
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

logger = logging.getLogger(__name__)

BEV_MAP_CLASSES = ('drivable_area', 'ped_crossing', 'walkway', 'stop_line',
                   'carpark_area', 'divider')

# Map-expansion layers rasterised into each class (union).
CLASS_TO_LAYERS = {
    'drivable_area': ('drivable_area',),
    'ped_crossing': ('ped_crossing',),
    'walkway': ('walkway',),
    'stop_line': ('stop_line',),
    'carpark_area': ('carpark_area',),
    'divider': ('road_divider', 'lane_divider'),
}


class BevMapRasterizer:
    """Rasterise map-expansion layers around a LiDAR pose.

    Loads one ``NuScenesMap`` per location on first use and caches it.

    Args:
        dataroot (Path): nuScenes root holding ``maps/expansion/<loc>.json``.
        bound (float): half side of the square grid in metres (50 -> [-50, 50)).
        resolution (float): cell size in metres.
        classes (Sequence[str]): output classes, keys of ``CLASS_TO_LAYERS``.
    """

    def __init__(self, dataroot: Path, bound: float = 50.0,
                 resolution: float = 0.5,
                 classes: Sequence[str] = BEV_MAP_CLASSES) -> None:
        unknown = set(classes) - set(CLASS_TO_LAYERS)
        if unknown:
            raise ValueError(f'unknown map classes {sorted(unknown)}; '
                             f'expected some of {BEV_MAP_CLASSES}')
        self.dataroot = Path(dataroot)
        self.bound = float(bound)
        self.resolution = float(resolution)
        self.classes = tuple(classes)
        self.cells = int(round(2 * self.bound / self.resolution))
        self._maps: Dict[str, object] = {}
        self._missing: Dict[str, str] = {}

    def map_file(self, location: str) -> Path:
        """Path of the map-expansion JSON of a location."""
        return self.dataroot / 'maps' / 'expansion' / f'{location}.json'

    def has_map(self, location: str) -> bool:
        """Whether map-expansion data can be loaded for ``location``.

        Logs a warning (once per location) naming the expected file when not.
        """
        if location in self._maps:
            return True
        if location in self._missing:
            return False
        from nuscenes.map_expansion.map_api import NuScenesMap, locations
        path = self.map_file(location)
        if location not in locations:
            reason = (f'location {location!r} is not a nuScenes map '
                      f'(the devkit knows {locations})')
        elif not path.is_file():
            reason = f'{path} not found'
        else:
            self._maps[location] = NuScenesMap(dataroot=str(self.dataroot),
                                               map_name=location)
            return True
        self._missing[location] = reason
        logger.warning('No map expansion data for location %r (%s): BEV map '
                       'labels are not written for its samples.', location, reason)
        return False

    def rasterize(self, location: str, lidar2global: np.ndarray) -> Optional[np.ndarray]:
        """Map-segmentation label around a LiDAR pose.

        Args:
            location (str): map name (``log.location``).
            lidar2global (np.ndarray): (4, 4) LiDAR -> global transform.

        Returns:
            np.ndarray or None: (C, X, Y) bool label indexed ``[class, ix, iy]``
            (module docstring), or None when the location has no map data.
        """
        if not self.has_map(location):
            return None
        center = lidar2global[:2, 3]
        forward = lidar2global[:3, :3] @ np.array([1.0, 0.0, 0.0])
        yaw_deg = np.degrees(np.arctan2(forward[1], forward[0]))
        side = 2 * self.bound
        layers = sorted({layer for name in self.classes
                         for layer in CLASS_TO_LAYERS[name]})
        masks = self._maps[location].get_map_mask(
            patch_box=(center[0], center[1], side, side), patch_angle=yaw_deg,
            layer_names=layers, canvas_size=(self.cells, self.cells))
        by_layer = dict(zip(layers, masks.astype(bool)))
        label = np.stack([
            np.any([by_layer[layer] for layer in CLASS_TO_LAYERS[name]], axis=0)
            for name in self.classes])
        # devkit masks are (rows = y, cols = x); store [class, ix, iy].
        return np.ascontiguousarray(label.transpose(0, 2, 1))

    def grid_indices(self, points_xy: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Cell indices of LiDAR-frame points and whether they fall inside.

        Args:
            points_xy (np.ndarray): (N, 2) x, y in metres, LiDAR frame.

        Returns:
            tuple[np.ndarray, np.ndarray]: (N, 2) int64 (ix, iy) and (N,) bool
            inside-grid flags.
        """
        idx = np.floor((points_xy + self.bound) / self.resolution).astype(np.int64)
        inside = np.all((idx >= 0) & (idx < self.cells), axis=1)
        return idx, inside


def save_map_label(path: Path, label: np.ndarray) -> None:
    """Write a (C, X, Y) bool label as ``np.savez_compressed(map_seg=...)``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, map_seg=label.astype(bool))


def load_map_label(path: Path) -> np.ndarray:
    """Read a label written by :func:`save_map_label`: (C, X, Y) bool."""
    with np.load(path) as data:
        return data['map_seg']
