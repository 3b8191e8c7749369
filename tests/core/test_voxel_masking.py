"""Voxel masking: hand-made voxels and points, exact ratio, seeded draws."""
import doctest

import pytest
import torch

import render_pretrain.voxel_masking as voxel_masking_module
from render_pretrain.grid import VoxelGrid
from render_pretrain.voxel_masking import draw_voxel_keep_mask, points_in_kept_voxels

# 4 x 3 x 2 voxels of 1 m from the origin: x in [0, 4), y in [0, 3), z in [0, 2)
GRID = VoxelGrid((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), (4, 3, 2))


def test_doctests():
    assert doctest.testmod(voxel_masking_module, raise_on_error=True).attempted > 0


def test_exactly_the_points_of_kept_voxels_survive():
    # voxels (batch, z, y, x) and which of them are kept
    coors = torch.tensor([[0, 0, 0, 0], [0, 1, 2, 3], [0, 0, 0, 3], [1, 0, 0, 0], [1, 1, 1, 1]])
    keep = torch.tensor([True, False, True, False, True])
    points = torch.tensor([
        [0.5, 0.5, 0.5],   # 0: sample 0, voxel (0, 0, 0): kept
        [0.9, 0.1, 0.2],   # 1: same voxel: kept
        [3.5, 2.5, 1.5],   # 2: sample 0, voxel (3, 2, 1): dropped
        [3.2, 0.7, 0.1],   # 3: sample 0, voxel (3, 0, 0): kept
        [0.5, 0.5, 0.5],   # 4: sample 1, voxel (0, 0, 0): dropped in sample 1
        [1.5, 1.5, 1.5],   # 5: sample 1, voxel (1, 1, 1): kept
        [1.5, 1.5, 1.5],   # 6: sample 0, voxel (1, 1, 1): not a voxel of sample 0
        # 7: outside (x < 0); its clamped index (-1, 1, 0) has the flat key of
        # voxel (3, 0, 0) of sample 0 (kept): it must still not survive
        [-0.5, 1.5, 0.5],
        [9.0, 0.5, 0.5],   # 8: outside (x >= 4)
    ])
    batch = torch.tensor([0, 0, 0, 0, 1, 1, 0, 0, 0])
    survive = points_in_kept_voxels(points, batch, coors[keep], GRID)
    assert survive.tolist() == [True, True, False, True, False, True, False, False, False]


def test_keep_mask_ratio_is_exact_and_seeded():
    for num, ratio in [(10, 0.9), (7, 0.5), (1000, 0.9), (3, 0.0), (3, 1.0), (0, 0.9)]:
        kept = draw_voxel_keep_mask(num, ratio, torch.Generator().manual_seed(3))
        assert kept.shape == (num, ) and kept.dtype == torch.bool
        # dropped = round half up of ratio * num (NS-MAE: 90 % of the voxels)
        assert num - int(kept.sum()) == int(ratio * num + 0.5)
    a = draw_voxel_keep_mask(1000, 0.9, torch.Generator().manual_seed(5))
    b = draw_voxel_keep_mask(1000, 0.9, torch.Generator().manual_seed(5))
    c = draw_voxel_keep_mask(1000, 0.9, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    with pytest.raises(ValueError, match='mask_ratio'):
        draw_voxel_keep_mask(10, 1.5)


def test_every_voxel_is_kept_equally_often():
    gen = torch.Generator().manual_seed(0)
    freq = torch.stack([draw_voxel_keep_mask(10, 0.9, gen) for _ in range(4000)]).float().mean(0)
    # each voxel is kept with probability 1 / 10 (binomial sd 0.0047)
    assert torch.allclose(freq, torch.full((10, ), 0.1), atol=0.025)
