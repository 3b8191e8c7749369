"""Previous camera frames of a key frame (``cam_sweeps``), for temporal models.

Each data_list entry gets ``cam_sweeps``: a dict ``{camera name: [sweep, ...]}``
holding, for every camera of the key frame, up to K previous frames of that
camera (walking ``sample_data.prev``, key frames and non-key frames alike),
**newest first**. Near the start of a scene the list is shorter (no padding).
Each sweep is a dict with exactly these keys:

- ``img_path`` (str): image path relative to the dataset root, as in the
  ``sample_data.filename`` column (``sweeps/CAM_FRONT/....jpg`` or
  ``samples/CAM_FRONT/....jpg``). Unlike ``images[cam]['img_path']`` (a file
  name resolved through ``data_prefix[cam]``), join it with ``data_root``.
- ``timestamp`` (float): capture time in seconds (``sample_data`` us / 1e6).
- ``sample_data_token`` (str): the sweep's ``sample_data`` token.
- ``is_key_frame`` (bool): whether that frame is itself a key frame.
- ``cam2img`` (3x3 list): intrinsics, camera frame -> pixels.
- ``cam2ego`` (4x4 list): camera -> ego frame at the sweep's own timestamp.
- ``ego2global`` (4x4 list): the sweep's own ego pose (``ego_pose`` of that
  camera ``sample_data``, NOT the pose of a LiDAR sweep; the released MIM4D
  code took the LiDAR's).
- ``cam2lidar`` (4x4 list): sweep camera -> the KEY FRAME's LiDAR frame,
  ``inv(lidar2ego_key) @ inv(ego2global_key) @ ego2global_sweep @ cam2ego``.
- ``lidar2cam`` (4x4 list): the inverse of ``cam2lidar``; with ``cam2img`` it
  projects key-frame LiDAR points into the sweep image.

All matrices map column vectors (``p_B = A2B @ p_A``), metres, stored as
float32-rounded Python floats like the other mmdet3d info matrices.
"""
from typing import Any, Dict, List

import numpy as np

from .file_checks import check_image_file
from .poses import invert_rigid, matrix_to_list, record_to_matrix
from .tables import previous_sample_data


def collect_camera_sweeps(nusc: Any, cam_sd: Dict, global2lidar: np.ndarray,
                          num_sweeps: int, check_files: bool = True) -> List[Dict]:
    """Previous frames of one camera, newest first (see module docstring).

    Args:
        nusc (nuscenes.NuScenes): loaded tables.
        cam_sd (dict): the camera's key-frame ``sample_data`` record.
        global2lidar (np.ndarray): (4, 4) global -> key-frame LiDAR frame.
        num_sweeps (int): K, the maximum number of previous frames.
        check_files (bool): check that each sweep image exists.

    Returns:
        list[dict]: up to K sweep dicts.

    Raises:
        NuScenesInfoError: a ``prev``/pose/calibration token is broken or an
            image is missing.
    """
    sweeps = []
    for current, cs, pose in previous_sample_data(nusc, cam_sd, num_sweeps):
        token = current['token']
        if check_files:
            check_image_file(nusc.get_sample_data_path(token))
        cam2ego = record_to_matrix(cs)
        ego2global = record_to_matrix(pose)
        cam2lidar = global2lidar @ ego2global @ cam2ego
        sweeps.append(dict(
            img_path=current['filename'],
            timestamp=current['timestamp'] / 1e6,
            sample_data_token=token,
            is_key_frame=bool(current['is_key_frame']),
            cam2img=np.array(cs['camera_intrinsic']).tolist(),
            cam2ego=matrix_to_list(cam2ego),
            ego2global=matrix_to_list(ego2global),
            cam2lidar=matrix_to_list(cam2lidar),
            lidar2cam=matrix_to_list(invert_rigid(cam2lidar))))
    return sweeps
