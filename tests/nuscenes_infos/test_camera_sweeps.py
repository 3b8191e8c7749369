"""cam_sweeps geometry against an independent devkit computation."""
import pickle

import numpy as np
from nuscenes.nuscenes import NuScenes
from pyquaternion import Quaternion


def _transform(record):
    mat = np.eye(4)
    mat[:3, :3] = Quaternion(record['rotation']).rotation_matrix
    mat[:3, 3] = record['translation']
    return mat


def test_cam_sweeps_geometry(synthetic_infos):
    with open(synthetic_infos['train'], 'rb') as f:
        data = pickle.load(f)['data_list']
    nusc = NuScenes('v1.0-mini', str(synthetic_infos['root']), verbose=False)
    k = synthetic_infos['cam_sweeps']
    info = max(data, key=lambda i: len(i['cam_sweeps']['CAM_FRONT']))
    assert set(info['cam_sweeps']) == set(info['images'])
    sweeps = info['cam_sweeps']['CAM_FRONT']
    assert len(sweeps) == k
    times = [s['timestamp'] for s in sweeps]
    assert times == sorted(times, reverse=True)
    assert times[0] < info['images']['CAM_FRONT']['timestamp']

    # independent: key-frame LiDAR pose and each sweep camera pose from the tables
    sample = nusc.get('sample', info['token'])
    lidar_sd = nusc.get('sample_data', sample['data']['LIDAR_TOP'])
    lidar_cs = nusc.get('calibrated_sensor', lidar_sd['calibrated_sensor_token'])
    lidar_pose = nusc.get('ego_pose', lidar_sd['ego_pose_token'])
    lidar2global = _transform(lidar_pose) @ _transform(lidar_cs)
    sd = nusc.get('sample_data', sample['data']['CAM_FRONT'])
    for sweep in sweeps:
        sd = nusc.get('sample_data', sd['prev'])  # walk back independently
        assert sweep['sample_data_token'] == sd['token']
        assert sweep['img_path'] == sd['filename']
        assert (synthetic_infos['root'] / sweep['img_path']).is_file()
        cam_pose = nusc.get('ego_pose', sd['ego_pose_token'])
        cam2global = _transform(cam_pose) @ _transform(
            nusc.get('calibrated_sensor', sd['calibrated_sensor_token']))
        composed = lidar2global @ np.array(sweep['cam2lidar'])
        np.testing.assert_allclose(composed[:3, :3], cam2global[:3, :3], atol=1e-5)
        np.testing.assert_allclose(composed[:3, 3], cam2global[:3, 3], atol=2e-3)
        np.testing.assert_allclose(np.array(sweep['lidar2cam']) @ np.array(sweep['cam2lidar']),
                                   np.eye(4), atol=1e-5)
        # the sweep's own camera ego pose, not the key frame's LiDAR pose
        np.testing.assert_allclose(np.array(sweep['ego2global'])[:3, 3],
                                   cam_pose['translation'], atol=1e-3)
    # the ego moved between the oldest sweep and the key frame: the check is not vacuous
    key_pose = np.array(info['ego2global'])
    assert np.linalg.norm(np.array(sweeps[-1]['ego2global'])[:3, 3] - key_pose[:3, 3]) > 0.1
