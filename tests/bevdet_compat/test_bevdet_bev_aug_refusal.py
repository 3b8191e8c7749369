"""BEVDet refuses stock LiDAR-frame augmentations it cannot follow (#21.4)."""
import pytest
import torch
from mmengine.dataset import pseudo_collate

from mmdet3d.registry import DATASETS
from tests.bevdet_compat.test_bevdet_compat import TINY_CFG, build_model

AUGS = {  # GlobalRotScaleTrans needs points (official BEVDet v0.x loaded them for it)
    'GlobalRotScaleTrans': dict(type='GlobalRotScaleTrans', rot_range=[-0.3925, 0.3925],
                                scale_ratio_range=[0.95, 1.05], translation_std=[0, 0, 0]),
}


def _train_batch(cfg, model, synthetic_infos, extra=None):
    ds_cfg = cfg.train_dataloader.dataset
    ds_cfg.data_root = str(synthetic_infos['root'])
    ds_cfg.ann_file = str(synthetic_infos['train'])
    if extra is not None:
        names = [t['type'] for t in ds_cfg.pipeline]
        ds_cfg.data_prefix['pts'] = 'samples/LIDAR_TOP'
        ds_cfg.modality = dict(use_lidar=True, use_camera=True)  # resolves the LiDAR path
        at = names.index('LoadAnnotations3D') + 1
        ds_cfg.pipeline[at:at] = [dict(type='LoadPointsFromFile', coord_type='LIDAR', load_dim=5,
                                       use_dim=5), extra]
    dataset = DATASETS.build(ds_cfg)
    return model.data_preprocessor(pseudo_collate([dataset[0]]), training=True)


@pytest.mark.parametrize('aug', sorted(AUGS))
def test_stock_bev_augmentation_in_a_bevdet_pipeline_is_refused(aug, synthetic_infos):
    cfg, model = build_model(TINY_CFG)
    model.train()
    data = _train_batch(cfg, model, synthetic_infos, AUGS[aug])
    with pytest.raises(ValueError, match='GlobalRotScaleTrans / RandomFlip3D move the boxes'):
        model.loss(data['inputs'], data['data_samples'])


@pytest.mark.parametrize('key,value', [('pcd_horizontal_flip', True),
                                       ('pcd_vertical_flip', False),
                                       ('transformation_3d_flow', ['HF']),
                                       ('lidar_aug_matrix', torch.eye(4))])
def test_flip_meta_keys_are_refused(key, value):
    # mmdet3d's RandomFlip3D fails on multi-view image lists before packing (its 2-D flip);
    # whatever writes its meta keys (or BEVFusion's lidar_aug_matrix) is refused
    from tests.bevdet_compat.test_bevdet_compat import make_batch
    _, model = build_model(TINY_CFG)
    data = make_batch(model, batch_size=1, num_cams=1)
    data['data_samples'][0].set_metainfo({key: value})
    with pytest.raises(ValueError, match=key):
        model.loss(data['inputs'], data['data_samples'])


def test_the_configs_own_pipeline_trains(synthetic_infos):
    cfg, model = build_model(TINY_CFG)
    model.train()
    data = _train_batch(cfg, model, synthetic_infos)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert all(torch.isfinite(v) for v in losses.values())
