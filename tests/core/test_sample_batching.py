"""Collating per-sample metas and points (hand-made samples, values by hand)."""
import doctest

import numpy as np
import pytest
import torch

import render_pretrain.image_normalization as normalization_module
import render_pretrain.sample_batching as batching_module
from render_pretrain.image_normalization import images_to_unit_range, preprocessor_normalization
from render_pretrain.sample_batching import pack_points, stack_sample_meta


def test_stack_sample_meta_values_default_dtype_and_refusal():
    metas = [dict(lidar2cam=np.diag([1.0, 2.0, 3.0, 1.0]).astype(np.float32)),
             dict(lidar2cam=np.eye(4) * 5.0, other=1)]
    ref = torch.zeros(1, dtype=torch.float64)
    out = stack_sample_meta(metas, 'lidar2cam', ref)
    assert out.shape == (2, 4, 4) and out.dtype == torch.float64
    assert out[0].diagonal().tolist() == [1.0, 2.0, 3.0, 1.0]
    assert out[1].diagonal().tolist() == [5.0] * 4
    eye = stack_sample_meta(metas, 'img_aug_matrix', torch.zeros(1), np.eye(4))
    assert eye.dtype == torch.float32 and torch.equal(eye, torch.eye(4).expand(2, 4, 4))
    with pytest.raises(KeyError, match="'cam2img'.*Pack3DDetInputs"):
        stack_sample_meta(metas, 'cam2img', ref)


def test_pack_points_keeps_order_drops_extra_columns():
    first = torch.tensor([[1.0, 2.0, 3.0, 0.5], [4.0, 5.0, 6.0, 0.7]])
    empty = torch.zeros(0, 4)
    last = torch.tensor([[7.0, 8.0, 9.0, 0.9]])
    xyz, batch_idx = pack_points([first, empty, last])
    assert xyz.tolist() == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]
    assert batch_idx.tolist() == [0, 0, 2] and batch_idx.dtype == torch.int64
    with pytest.raises(ValueError, match='at least one'):
        pack_points([])


def test_images_to_unit_range_by_hand():
    mean = torch.tensor([100.0, 50.0, 0.0])
    std = torch.tensor([10.0, 2.0, 1.0])
    imgs = torch.tensor([1.0, -5.0, 300.0]).view(3, 1, 1).expand(2, 3, 1, 2)
    out = images_to_unit_range(imgs, mean, std)
    # (1 * 10 + 100) / 255, (-5 * 2 + 50) / 255, 300 / 255 clamped to 1
    expected = torch.tensor([110.0 / 255, 40.0 / 255, 1.0]).view(3, 1, 1).expand(2, 3, 1, 2)
    assert torch.allclose(out, expected)
    assert torch.equal(images_to_unit_range(torch.full((3, 1, 1), 510.0)), torch.ones(3, 1, 1))
    with pytest.raises(ValueError, match='both'):
        images_to_unit_range(imgs, mean)


def test_preprocessor_normalization_reads_mmengine_preprocessor():
    from mmdet3d.models import Det3DDataPreprocessor
    prep = Det3DDataPreprocessor(mean=[1.0, 2.0, 3.0], std=[4.0, 5.0, 6.0])
    mean, std = preprocessor_normalization(prep)
    assert mean.flatten().tolist() == [1.0, 2.0, 3.0] and std.flatten().tolist() == [4.0, 5.0, 6.0]
    assert preprocessor_normalization(Det3DDataPreprocessor()) == (None, None)


@pytest.mark.parametrize('module', [batching_module, normalization_module])
def test_docstring_examples(module):
    assert doctest.testmod(module).failed == 0
