"""Previous LiDAR sweeps of a key frame, in mmdet3d 1.x's ``lidar_sweeps`` layout.

Each entry: ``timestamp`` (s), ``ego2global`` (the sweep's ego pose),
``lidar_points`` with ``num_pts_feats`` (``None``: mmdet3d's converter
leaves this placeholder in sweeps), ``lidar_path`` (path relative to the
dataset root, e.g.
``sweeps/LIDAR_TOP/....pcd.bin``; mmdet3d keeps only the file name and joins
it with ``data_prefix['sweeps']`` or ``['pts']``), ``lidar2ego`` and
``lidar2sensor`` (key-frame LiDAR -> sweep LiDAR), and ``sample_data_token``.
Newest first, at most ``max_sweeps`` entries, as mmdet3d's converter writes.
"""
from typing import Any, Dict, List

import numpy as np

from .file_checks import check_point_cloud_file
from .poses import invert_rigid, matrix_to_list, record_to_matrix
from .tables import previous_sample_data


def collect_lidar_sweeps(nusc: Any, lidar_sd: Dict, global2lidar: np.ndarray,
                         max_sweeps: int, num_features: int = 5,
                         check_files: bool = True) -> List[Dict]:
    """Previous LiDAR sweeps of a key frame, newest first.

    Args:
        nusc (nuscenes.NuScenes): loaded tables.
        lidar_sd (dict): the key frame's LiDAR ``sample_data`` record.
        global2lidar (np.ndarray): (4, 4) global -> key-frame LiDAR frame.
        max_sweeps (int): maximum number of sweeps.
        num_features (int): float32 values per point, for the file check.
        check_files (bool): check each sweep file's existence and size.

    Returns:
        list[dict]: sweep dicts (see module docstring).
    """
    sweeps = []
    for current, cs, pose in previous_sample_data(nusc, lidar_sd, max_sweeps):
        token = current['token']
        if check_files:
            check_point_cloud_file(nusc.get_sample_data_path(token), num_features)
        sweep2ego = record_to_matrix(cs)
        ego2global = record_to_matrix(pose)
        sweep2lidar = global2lidar @ ego2global @ sweep2ego
        sweeps.append(dict(
            timestamp=current['timestamp'] / 1e6,
            ego2global=matrix_to_list(ego2global),
            lidar_points=dict(
                num_pts_feats=None,
                lidar_path=current['filename'],
                lidar2ego=matrix_to_list(sweep2ego),
                lidar2sensor=matrix_to_list(invert_rigid(sweep2lidar))),
            sample_data_token=token))
    return sweeps
