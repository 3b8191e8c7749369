"""Map labels through the dataset, LoadBEVMapLabel and PackBEVSegInputs."""
import copy

import numpy as np
import pytest
import torch

from mmdet3d.registry import DATASETS, TRANSFORMS
from projects.BEVSeg.bevseg import LoadBEVMapLabel
from tests.bevseg.conftest import first_label, point_at_synthetic_world, seg_config


def test_dataset_pipeline_packs_the_cropped_label(synthetic_infos):
    cfg = point_at_synthetic_world(seg_config(), synthetic_infos)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    info = dataset.get_data_info(0)
    # resolved against the info file's folder, not data_root (they differ here)
    assert info['map_seg_file'] == str(synthetic_infos['out_dir'] / info['map_seg_path'])
    assert not info['map_seg_file'].startswith(str(synthetic_infos['root']))
    item = dataset[0]
    packed = item['data_samples'].gt_map_seg
    # tiny config: +-24 m at 0.5 m = cells 52..147 of the +-50 m label
    expected = first_label(synthetic_infos)[:, 52:148, 52:148]
    assert packed.dtype == torch.bool and packed.shape == (6, 96, 96)
    assert torch.equal(packed, torch.from_numpy(expected))
    assert item['inputs']['img'].shape == (6, 3, 64, 176)


def test_label_transform_errors(tmp_path):
    with pytest.raises(KeyError, match='map_seg_path'):
        LoadBEVMapLabel()(dict(token='abc'))
    path = tmp_path / 'bad.npz'
    np.savez_compressed(path, map_seg=np.zeros((6, 100, 100), dtype=bool))
    with pytest.raises(ValueError, match=r'expected \(6, 200, 200\) bool'):
        LoadBEVMapLabel()(dict(map_seg_file=str(path)))
    with pytest.raises(ValueError, match='cell boundaries'):
        LoadBEVMapLabel(output_scope=[[-51.2, 51.2, 0.8]] * 2)
    np.savez_compressed(path, map_seg=np.arange(6 * 200 * 200).reshape(6, 200, 200) % 7 == 0)
    crop = LoadBEVMapLabel(output_scope=[[-10, 0, 0.5], [5, 20, 0.5]])(
        dict(map_seg_file=str(path)))['gt_map_seg']
    full = np.arange(6 * 200 * 200).reshape(6, 200, 200) % 7 == 0
    assert np.array_equal(crop, full[:, 80:100, 110:140])


def test_pack_refuses_bev_augmentation(synthetic_infos):
    cfg = point_at_synthetic_world(seg_config(), synthetic_infos)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    results = dataset.pipeline.transforms[0](copy.deepcopy(dataset.get_data_info(0)))
    for step in dataset.pipeline.transforms[1:-1]:
        results = step(results)
    pack = dataset.pipeline.transforms[-1]
    assert 'gt_map_seg' in pack(copy.deepcopy(results))['data_samples']
    flip = TRANSFORMS.build(dict(type='RandomFlip3D', sync_2d=False,
                                 flip_ratio_bev_horizontal=1.0))
    flipped = flip(copy.deepcopy(results))
    with pytest.raises(ValueError, match='pcd_horizontal_flip'):
        pack(flipped)
    rotate = TRANSFORMS.build(dict(type='GlobalRotScaleTrans', rot_range=[0.3, 0.3],
                                   scale_ratio_range=[1.0, 1.0]))
    with pytest.raises(ValueError, match='pcd_rotation'):
        pack(rotate(copy.deepcopy(results)))
