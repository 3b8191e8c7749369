"""One mmdet3d 1.x ``data_list`` entry per nuScenes key frame.

The entry has the keys and value types that mmdet3d 1.4.0's own converter
(``nuscenes_converter.py`` then ``update_infos_to_v2.py``, info version 1.1)
writes: ``sample_idx``, ``token``, ``timestamp`` (s), ``ego2global`` (the
LiDAR key frame's ego pose), ``images`` (per camera ``img_path`` file name,
``cam2img``, ``cam2ego``, ``sample_data_token``, ``timestamp``,
``lidar2cam``), ``lidar_points`` (``num_pts_feats``, ``lidar_path`` file
name, ``lidar2ego``), ``lidar_sweeps`` (when there are previous sweeps),
``instances`` and ``cam_instances``; plus this project's ``cam_sweeps``
(:mod:`.camera_sweeps`) and, when the location has map data,
``map_seg_path`` (:mod:`.map_labels`).
"""
from typing import Any, Dict, List, Sequence, Set

import numpy as np

from .camera_sweeps import collect_camera_sweeps
from .categories import CAMERA_TYPES
from .file_checks import (InvalidSampleError, check_image_decodes, check_image_file,
                          check_point_cloud_file, check_point_cloud_values)
from .instances import (build_camera_instances, build_lidar_instances,
                        velocity_global)
from .lidar_sweeps import collect_lidar_sweeps
from .poses import invert_rigid, matrix_to_list, record_to_matrix
from .tables import NuScenesInfoError, get_record

NUM_POINT_FEATURES = 5


def camera_channels(nusc: Any, sample: Dict) -> List[str]:
    """Camera channels of a sample, mmdet3d's order first, then the others.

    Args:
        nusc (nuscenes.NuScenes): loaded tables.
        sample (dict): ``sample`` record.

    Returns:
        list[str]: channel names such as ``CAM_FRONT``.
    """
    cams = [ch for ch, token in sample['data'].items()
            if get_record(nusc, 'sample_data', token,
                          f"sample {sample['token']} data[{ch}]")['sensor_modality'] == 'camera']
    return sorted(cams, key=lambda ch: (CAMERA_TYPES.index(ch)
                                        if ch in CAMERA_TYPES else len(CAMERA_TYPES), ch))


def lidar_key_frame_poses(nusc: Any, lidar_sd: Dict) -> Dict[str, np.ndarray]:
    """Poses of a LiDAR key frame.

    Args:
        nusc (nuscenes.NuScenes): loaded tables.
        lidar_sd (dict): the key frame's LiDAR ``sample_data`` record.

    Returns:
        dict[str, np.ndarray]: (4, 4) ``lidar2ego``, ``ego2global``,
        ``lidar2global`` and ``global2lidar``.
    """
    token = lidar_sd['token']
    cs = get_record(nusc, 'calibrated_sensor', lidar_sd['calibrated_sensor_token'],
                    f'sample_data {token} calibrated_sensor_token')
    pose = get_record(nusc, 'ego_pose', lidar_sd['ego_pose_token'],
                      f'sample_data {token} ego_pose_token')
    lidar2ego = record_to_matrix(cs)
    ego2global = record_to_matrix(pose)
    lidar2global = ego2global @ lidar2ego
    return dict(lidar2ego=lidar2ego, ego2global=ego2global,
                lidar2global=lidar2global, global2lidar=invert_rigid(lidar2global))


def build_image_info(nusc: Any, cam_sd: Dict, global2lidar: np.ndarray,
                     check_files: bool = True) -> Dict:
    """``images[cam]`` of an info.

    Args:
        nusc (nuscenes.NuScenes): loaded tables.
        cam_sd (dict): the camera's key-frame ``sample_data`` record.
        global2lidar (np.ndarray): (4, 4) global -> key-frame LiDAR frame.
        check_files (bool): check that the image exists and decodes.

    Returns:
        dict: ``img_path``, ``cam2img``, ``cam2ego``, ``sample_data_token``,
        ``timestamp``, ``lidar2cam``.
    """
    token = cam_sd['token']
    cs = get_record(nusc, 'calibrated_sensor', cam_sd['calibrated_sensor_token'],
                    f'sample_data {token} calibrated_sensor_token')
    pose = get_record(nusc, 'ego_pose', cam_sd['ego_pose_token'],
                      f'sample_data {token} ego_pose_token')
    if check_files:
        check_image_file(nusc.get_sample_data_path(token))
        check_image_decodes(nusc.get_sample_data_path(token))
    cam2ego = record_to_matrix(cs)
    cam2lidar = global2lidar @ record_to_matrix(pose) @ cam2ego
    return dict(
        img_path=cam_sd['filename'].split('/')[-1],
        cam2img=np.array(cs['camera_intrinsic']).tolist(),
        cam2ego=matrix_to_list(cam2ego),
        sample_data_token=token,
        timestamp=cam_sd['timestamp'] / 1e6,
        lidar2cam=matrix_to_list(invert_rigid(cam2lidar)))


def build_sample_info(nusc: Any, sample: Dict, sample_idx: int,
                      ignored_names: Set[str], max_lidar_sweeps: int = 10,
                      max_cam_sweeps: int = 4, check_files: bool = True,
                      cameras: Sequence[str] = None,
                      with_annotations: bool = True) -> Dict:
    """The data_list entry of one key frame (see module docstring).

    Args:
        nusc (nuscenes.NuScenes): loaded tables.
        sample (dict): ``sample`` record.
        sample_idx (int): index of the entry in its info file.
        ignored_names (set[str]): collects non-detection category names.
        max_lidar_sweeps (int): previous LiDAR sweeps to list.
        max_cam_sweeps (int): K previous frames per camera in ``cam_sweeps``.
        check_files (bool): check existence/size of every referenced file,
            and that the key frame's points are finite and images decode.
        cameras (Sequence[str], optional): camera channels; default all
            cameras of the sample, which must include the six nuScenes
            cameras.
        with_annotations (bool): write ``cam_instances`` (False for the test
            split, whose ``instances`` list stays empty, as mmdet3d does).

    Returns:
        dict: the info entry (without ``map_seg_path``, added by the caller).

    Raises:
        NuScenesInfoError: broken token, missing image or truncated LiDAR file.
        InvalidSampleError: non-finite LiDAR points, an image that does not
            decode, a missing camera (a ``NuScenesInfoError`` the caller may
            skip).
    """
    token = sample['token']
    if 'LIDAR_TOP' not in sample['data']:
        raise NuScenesInfoError(f'sample {token} has no LIDAR_TOP sample_data')
    lidar_sd = get_record(nusc, 'sample_data', sample['data']['LIDAR_TOP'],
                          f'sample {token} data[LIDAR_TOP]')
    poses = lidar_key_frame_poses(nusc, lidar_sd)
    if check_files:
        check_point_cloud_file(nusc.get_sample_data_path(lidar_sd['token']),
                               NUM_POINT_FEATURES)
        check_point_cloud_values(nusc.get_sample_data_path(lidar_sd['token']),
                                 NUM_POINT_FEATURES)
    if cameras is None:
        cameras = camera_channels(nusc, sample)
        missing = [cam for cam in CAMERA_TYPES if cam not in cameras]
        if missing:
            raise InvalidSampleError(
                f'sample {token} has no {", ".join(missing)} sample_data ({len(cameras)} of '
                f'the {len(CAMERA_TYPES)} nuScenes cameras)', reason='missing camera')
    cameras = list(cameras)
    cam_sds = {cam: get_record(nusc, 'sample_data', sample['data'][cam],
                               f'sample {token} data[{cam}]') for cam in cameras}
    info = dict(
        sample_idx=sample_idx,
        token=token,
        timestamp=sample['timestamp'] / 1e6,
        ego2global=matrix_to_list(poses['ego2global']),
        images={cam: build_image_info(nusc, sd, poses['global2lidar'], check_files)
                for cam, sd in cam_sds.items()},
        lidar_points=dict(
            num_pts_feats=NUM_POINT_FEATURES,
            lidar_path=lidar_sd['filename'].split('/')[-1],
            lidar2ego=matrix_to_list(poses['lidar2ego'])))
    lidar_sweeps = collect_lidar_sweeps(nusc, lidar_sd, poses['global2lidar'],
                                        max_lidar_sweeps, NUM_POINT_FEATURES,
                                        check_files)
    if lidar_sweeps:
        info['lidar_sweeps'] = lidar_sweeps
    annotations = [get_record(nusc, 'sample_annotation', ann,
                              f'sample {token} anns') for ann in sample['anns']]
    velocities = velocity_global(nusc, annotations)
    info['instances'] = build_lidar_instances(annotations, poses['global2lidar'],
                                              velocities, ignored_names)
    if with_annotations:
        info['cam_instances'] = {
            cam: build_camera_instances(nusc, sd, annotations, velocities)
            for cam, sd in cam_sds.items()}
    info['cam_sweeps'] = {
        cam: collect_camera_sweeps(nusc, sd, poses['global2lidar'],
                                   max_cam_sweeps, check_files)
        for cam, sd in cam_sds.items()}
    return info
