"""nuScenes -> mmdet3d 1.x info files, camera sweeps, BEV map labels, subsets.

Pure numpy + nuscenes-devkit (no mmdet3d import): the info schema is the one
mmdet3d 1.4.0's converter writes, re-implemented so that it can be tested
without mmdet3d's ``tools`` package.
"""
from .camera_sweeps import collect_camera_sweeps
from .converter import create_nuscenes_infos
from .map_labels import BEV_MAP_CLASSES, BevMapRasterizer, load_map_label
from .subsets import select_subsets
from .tables import NuScenesInfoError

__all__ = ['create_nuscenes_infos', 'collect_camera_sweeps', 'BEV_MAP_CLASSES',
           'BevMapRasterizer', 'load_map_label', 'select_subsets',
           'NuScenesInfoError']
