"""LiDAR input of NS-MAE: shuffled before voxelisation; global LiDAR augmentation refused."""
import copy

import numpy as np
import pytest
import torch

from mmdet3d.registry import DATASETS
from .conftest import REAL_INFO, TINY_CL, build_model, load_config, preprocess, synthetic_item


def _two_sweeps_item():
    """200 key-sweep points, then 200 older-sweep points, one per voxel.

    Tiny grid: 0.3 m voxels from (-24, -24, -5) m. Key sweep: voxel centres
    x = 0.15 + 0.3 i, y = 0.15 + 0.3 j (i < 20, j < 10); older sweep: the
    same shifted by 6 m in y (voxel rows 20 further), so the two sets share
    no voxel.
    """
    item = synthetic_item(seed=11)
    i, j = np.meshgrid(np.arange(20), np.arange(10), indexing='ij')
    key = np.stack([0.15 + 0.3 * i.ravel(), 0.15 + 0.3 * j.ravel(),
                    np.full(200, 0.1)], 1)
    old = key + np.array([0.0, 6.0, 0.0])
    xyz = torch.from_numpy(np.concatenate([key, old])).float()
    sweep = torch.cat([torch.zeros(200), torch.ones(200)])  # 5th column: sweep age
    item['inputs']['points'] = torch.cat([xyz, torch.zeros(400, 1), sweep[:, None]], 1)
    return item


def _old_sweep_share(seed):
    model = build_model(TINY_CL, seed=seed)
    model.data_preprocessor.voxel_layer.max_voxels = (200, 200)
    data = preprocess(model, [_two_sweeps_item()])
    voxels = data['inputs']['voxels']
    assert voxels['coors'].shape[0] == 200  # the cap is reached
    y_index = voxels['coors'][:, 2]  # (batch, z, y, x)
    from_old = (y_index >= 80 + 20).float().mean().item()
    # the kept voxels hold their own sweep's points (age in column 4)
    ages = voxels['voxels'][:, 0, 4]
    assert torch.equal(ages == 1, y_index >= 100)
    return from_old, voxels['coors']


def test_points_are_shuffled_before_voxelisation():
    """max_voxels keeps a random half of each sweep, not the key sweep only."""
    share, coors = _old_sweep_share(seed=0)
    assert 0.3 < share < 0.7, share  # without shuffling: 0.0 (key sweep first)
    share_again, coors_again = _old_sweep_share(seed=0)
    assert torch.equal(coors, coors_again)  # reproducible from the model's seed
    _, coors_other = _old_sweep_share(seed=1)
    assert not torch.equal(coors, coors_other)


@pytest.mark.parametrize('transform', [
    dict(type='GlobalRotScaleTrans', rot_range=[-0.3925, 0.3925],
         scale_ratio_range=[0.95, 1.05], translation_std=[0, 0, 0]),
    dict(type='RandomFlip3D', sync_2d=False, flip_ratio_bev_horizontal=0.5,
         flip_ratio_bev_vertical=0.5),
])
def test_global_lidar_augmentation_is_refused(real_frame, transform):
    cfg = load_config(TINY_CL)
    ds_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    ds_cfg.update(data_root=str(real_frame) + '/', ann_file=REAL_INFO,
                  data_prefix={key: '' for key in ds_cfg.data_prefix})
    # right after loading the points (RandomFlip3D also flips 'img', which
    # is a list of views after LoadMultiViewImageFromFiles)
    ds_cfg.pipeline.insert(1, transform)
    item = DATASETS.build(ds_cfg)[0]
    model = build_model(TINY_CL)
    data = preprocess(model, [item])
    with pytest.raises(ValueError, match='GlobalRotScaleTrans, RandomFlip3D'):
        model.loss(data['inputs'], data['data_samples'])


def test_non_identity_lidar_aug_matrix_is_refused():
    item = synthetic_item(seed=12)
    aug = np.eye(4)
    aug[:2, :2] = [[0.0, -1.0], [1.0, 0.0]]
    item['data_samples'].set_metainfo(dict(lidar_aug_matrix=aug))
    model = build_model(TINY_CL)
    data = preprocess(model, [item])
    with pytest.raises(ValueError, match='lidar_aug_matrix'):
        model.loss(data['inputs'], data['data_samples'])
