import doctest

import pytest
import torch

import render_pretrain.bev_targets as bev_targets_module
from render_pretrain.bev_targets import bev_first_hit_target, first_occupied_height
from render_pretrain.grid import VoxelGrid


def test_first_occupied_height_orders(device):
    coords_zyx = torch.tensor([[0, 0, 1, 2], [0, 3, 1, 2], [1, 2, 0, 0]], device=device)
    zc = torch.tensor([-3.0, -1.0, 1.0, 3.0], device=device)
    height, valid = first_occupied_height(coords_zyx, 2, (4, 2, 3), zc)
    assert height.shape == (2, 2, 3) and int(valid.sum()) == 2
    assert height[0, 1, 2] == 3.0 and height[1, 0, 0] == 1.0 and height[0, 0, 0] == 0.0
    coords_xyz = coords_zyx[:, [0, 3, 2, 1]]
    h2, v2 = first_occupied_height(coords_xyz, 2, (3, 2, 4), zc, coord_order='xyz')
    assert torch.equal(h2, height) and torch.equal(v2, valid)
    with pytest.raises(ValueError, match='outside'):
        first_occupied_height(coords_zyx, 1, (4, 2, 3), zc)


def test_first_occupied_height_matches_loop_reference(device):
    gen = torch.Generator().manual_seed(0)
    occupied = (torch.rand(2, 5, 4, 6, generator=gen) < 0.15).to(device)  # (B, Z, Y, X)
    coords = occupied.nonzero()
    coords = coords[torch.randperm(len(coords), generator=gen).to(device)]  # order must not matter
    zc = torch.linspace(-4.0, 2.0, 5, device=device)
    height, valid = first_occupied_height(coords, 2, (5, 4, 6), zc)
    for b in range(2):
        for y in range(4):
            for x in range(6):
                zs = occupied[b, :, y, x].nonzero().flatten()
                assert bool(valid[b, y, x]) == (len(zs) > 0)
                assert height[b, y, x] == (zc[zs.max()] if len(zs) else 0.0)
    empty_h, empty_v = first_occupied_height(torch.zeros(0, 4, dtype=torch.long, device=device),
                                             2, (5, 4, 6), zc)
    assert not empty_v.any() and torch.equal(empty_h, torch.zeros(2, 4, 6, device=device))


def test_docstring_examples():
    result = doctest.testmod(bev_targets_module, extraglobs={'torch': torch})
    assert result.attempted > 0 and result.failed == 0


def test_first_occupied_height_xy_stride_takes_the_top_of_merged_columns(device):
    zc = torch.tensor([0.0, 1.0, 2.0], device=device)
    coords = torch.tensor([[0, 0, 0, 0], [0, 2, 1, 1], [0, 1, 4, 2]], device=device)  # (b, z, y, x)
    height, valid = first_occupied_height(coords, 1, (3, 5, 4), zc, xy_stride=2)
    assert height.shape == (1, 3, 2)  # ceil(5 / 2), ceil(4 / 2)
    assert height[0, 0, 0] == 2.0 and height[0, 2, 1] == 1.0
    assert valid.sum() == 2


def test_bev_first_hit_target_hand_made_coarse_cells():
    """4 x 6 x 8 voxels (0.5 m high from z = -2) under a 2 x 3 BEV map: 2 x 2 columns per cell."""
    grid = VoxelGrid((0.0, 0.0, -2.0), (1.0, 1.0, 0.5), (4, 6, 8))
    coords = torch.tensor([
        [0, 1, 0, 0],  # (b, z, y, x): cell (x 0, y 0), z centre -1.25
        [0, 5, 1, 1],  # same cell, higher: z centre 0.75 wins
        [0, 3, 5, 3],  # cell (1, 2): -0.25
        [1, 7, 2, 2],  # sample 1, cell (1, 1): 1.75
    ])
    height, valid = bev_first_hit_target(coords, 2, grid, (2, 3), 'xy')
    expected = torch.tensor([[[0.75, 0.0, 0.0], [0.0, 0.0, -0.25]],
                             [[0.0, 0.0, 0.0], [0.0, 1.75, 0.0]]])
    assert height.shape == valid.shape == (2, 2, 3)
    torch.testing.assert_close(height, expected)
    assert valid.tolist() == [[[True, False, False], [False, False, True]],
                              [[False, False, False], [False, True, False]]]
    height_yx, valid_yx = bev_first_hit_target(coords, 2, grid, (3, 2), 'yx')
    torch.testing.assert_close(height_yx, expected.transpose(1, 2))
    assert torch.equal(valid_yx, valid.transpose(1, 2))
    with pytest.raises(ValueError, match='integer multiple'):
        bev_first_hit_target(coords, 2, grid, (3, 3), 'xy')
