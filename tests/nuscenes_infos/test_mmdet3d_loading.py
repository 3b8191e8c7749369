"""mmdet3d's NuScenesDataset and loading pipeline run on our info files."""
import pickle

import numpy as np

from render_pretrain.nuscenes_infos.categories import CAMERA_TYPES, NUSCENES_CLASSES

REAL_PKL = 'n015-2018-07-24-11-22-45+0800.pkl'


def _dataset(data_root, ann_file, data_prefix, with_sweeps):
    from mmdet3d.datasets import NuScenesDataset
    from mmdet3d.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    pipeline = [dict(type='LoadPointsFromFile', coord_type='LIDAR', load_dim=5, use_dim=5)]
    if with_sweeps:
        pipeline.append(dict(type='LoadPointsFromMultiSweeps', sweeps_num=3,
                             use_dim=[0, 1, 2, 3, 4], pad_empty_sweeps=True,
                             test_mode=True))  # the 3 newest sweeps, not a random draw
    pipeline += [dict(type='LoadMultiViewImageFromFiles', to_float32=True, num_views=6),
                 dict(type='LoadAnnotations3D', with_bbox_3d=True, with_label_3d=True)]
    return NuScenesDataset(
        data_root=str(data_root), ann_file=str(ann_file), pipeline=pipeline,
        data_prefix=data_prefix, modality=dict(use_lidar=True, use_camera=True),
        metainfo=dict(classes=NUSCENES_CLASSES, version='v1.0-mini'),
        filter_empty_gt=False, test_mode=False)


def _check_item(item, info, lidar_file, num_sweep_points=0):
    points = item['points'].tensor.numpy()
    raw = np.fromfile(lidar_file, dtype=np.float32).reshape(-1, 5)
    np.testing.assert_allclose(points[:len(raw), :3], raw[:, :3])
    assert len(points) == len(raw) + num_sweep_points
    assert len(item['img']) == 6
    # NuScenesDataset keeps boxes with LiDAR points (label -1 included:
    # pipelines drop those later with ObjectNameFilter)
    kept = [inst for inst in info['instances'] if inst['num_lidar_pts'] > 0]
    boxes = item['gt_bboxes_3d']
    assert len(boxes) == len(kept) > 0
    # info boxes are gravity centres; mmdet3d converts to bottom centres
    np.testing.assert_allclose(boxes.gravity_center.numpy(),
                               np.array([inst['bbox_3d'][:3] for inst in kept]), atol=1e-4)
    np.testing.assert_array_equal(item['gt_labels_3d'], [inst['bbox_label_3d'] for inst in kept])
    cams = list(info['images'])
    np.testing.assert_allclose(np.array(item['lidar2cam']),
                               [info['images'][c]['lidar2cam'] for c in cams])
    np.testing.assert_allclose(np.array(item['cam2img']),
                               [info['images'][c]['cam2img'] for c in cams])
    assert item['filename'][cams.index('CAM_FRONT')].endswith(
        info['images']['CAM_FRONT']['img_path'])


def test_synthetic_infos_load_in_mmdet3d(synthetic_infos):
    root = synthetic_infos['root']
    prefix = dict(pts='samples/LIDAR_TOP', sweeps='sweeps/LIDAR_TOP',
                  **{cam: f'samples/{cam}' for cam in CAMERA_TYPES})
    with open(synthetic_infos['train'], 'rb') as f:
        data = pickle.load(f)['data_list']
    ds = _dataset(root, synthetic_infos['train'], prefix, with_sweeps=True)
    assert len(ds) == len(data)
    index = max(range(len(data)), key=lambda i: len(data[i].get('lidar_sweeps', [])))
    info = data[index]
    item = ds[index]
    sweep_points = sum(
        np.fromfile(root / s['lidar_points']['lidar_path'], dtype=np.float32).size // 5
        for s in info.get('lidar_sweeps', [])[:3])
    if not info.get('lidar_sweeps'):  # padded with copies of the key frame
        key_file = root / 'samples/LIDAR_TOP' / info['lidar_points']['lidar_path']
        sweep_points = 3 * (np.fromfile(key_file, dtype=np.float32).size // 5)
    _check_item(item, info, root / 'samples/LIDAR_TOP' / info['lidar_points']['lidar_path'],
                sweep_points)
    for cam, img in zip(info['images'], item['img']):
        sd_size = img.shape[:2]
        assert (root / 'samples' / cam / info['images'][cam]['img_path']).is_file()
        assert sd_size[0] > 0 and sd_size[1] > 0


def test_real_frame_loads_with_the_same_pipeline(real_frame):
    """The same pipeline on mmdet3d's own info of the real frame (flat folder)."""
    prefix = dict(pts='', sweeps='', **{cam: '' for cam in CAMERA_TYPES})
    ds = _dataset(real_frame, real_frame / REAL_PKL, prefix, with_sweeps=False)
    with open(real_frame / REAL_PKL, 'rb') as f:
        info = pickle.load(f)['data_list'][0]
    item = ds[0]
    _check_item(item, info, real_frame / info['lidar_points']['lidar_path'])
    assert item['img'][0].shape == (900, 1600, 3)
