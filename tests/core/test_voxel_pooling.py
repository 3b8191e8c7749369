import doctest
import math

import pytest
import torch

import render_pretrain.voxel_pooling as voxel_pooling_module
from render_pretrain.voxel_pooling import (compute_voxel_indices, pool_features_to_grid,
                                           pool_frustum_to_grid)

LOWER = (-2.0, -1.5, -1.0)
SIZE = (0.5, 0.5, 1.0)
SHAPE = (8, 6, 2)  # X, Y, Z: the grid covers [-2, 2) x [-1.5, 1.5) x [-1, 1)


def _random_cloud(num, channels, seed):
    gen = torch.Generator().manual_seed(seed)
    # some points fall outside on every side
    points = torch.rand(num, 3, generator=gen) * torch.tensor([5.0, 4.0, 2.6]) - torch.tensor(
        [2.5, 2.0, 1.3])
    feats = torch.randn(num, channels, generator=gen)
    batch = torch.randint(0, 2, (num, ), generator=gen)
    return feats, points, batch


def _naive_grid(feats, points, batch, batch_size):
    """Loop reference: (B, C, Z, Y, X) sums and counts."""
    num_x, num_y, num_z = SHAPE
    grid = torch.zeros(batch_size, feats.shape[1], num_z, num_y, num_x, dtype=torch.float64)
    counts = torch.zeros(batch_size, num_z, num_y, num_x, dtype=torch.float64)
    for p in range(points.shape[0]):
        ijk = [math.floor((points[p, a].item() - LOWER[a]) / SIZE[a]) for a in range(3)]
        if all(0 <= ijk[a] < SHAPE[a] for a in range(3)):
            grid[batch[p], :, ijk[2], ijk[1], ijk[0]] += feats[p].double()
            counts[batch[p], ijk[2], ijk[1], ijk[0]] += 1
    return grid, counts


def test_pooling_matches_naive_reference_all_layouts(device):
    feats, points, batch = _random_cloud(400, 3, seed=0)
    ref, counts = _naive_grid(feats, points, batch, 2)  # on the CPU
    feats, points, batch = feats.to(device), points.to(device), batch.to(device)
    assert counts.sum() < 400  # some points were dropped
    full = pool_features_to_grid(feats, points, batch, 2, LOWER, SIZE, SHAPE)
    assert full.shape == (2, 3, 2, 6, 8)
    assert torch.allclose(full.double().cpu(), ref, atol=1e-5)
    summed = pool_features_to_grid(feats, points, batch, 2, LOWER, SIZE, SHAPE, collapse_z='sum')
    assert torch.allclose(summed.double().cpu(), ref.sum(2), atol=1e-5)
    concat = pool_features_to_grid(feats, points, batch, 2, LOWER, SIZE, SHAPE, collapse_z='concat')
    # BEVFusion: torch.cat(x.unbind(dim=2), 1) on (B, C, Z, ., .)
    assert torch.allclose(concat.double().cpu(), torch.cat(ref.unbind(dim=2), 1), atol=1e-5)
    # BEVFusion bev_pool layout (B, C, Z, X, Y) then Z into channels
    xy = pool_features_to_grid(feats, points, batch, 2, LOWER, SIZE, SHAPE, collapse_z='concat',
                               bev_axes='xy')
    assert xy.shape == (2, 6, 8, 6)
    assert torch.allclose(xy.double().cpu(), torch.cat(ref.transpose(-1, -2).unbind(dim=2), 1),
                          atol=1e-5)
    xy_full = pool_features_to_grid(feats, points, batch, 2, LOWER, SIZE, SHAPE, bev_axes='xy')
    assert torch.allclose(xy_full.double().cpu(), ref.transpose(-1, -2), atol=1e-5)
    mean = pool_features_to_grid(feats, points, batch, 2, LOWER, SIZE, SHAPE, reduce='mean')
    assert torch.allclose(mean.double().cpu(), ref / counts.clamp_min(1).unsqueeze(1), atol=1e-5)


def test_ones_count_points_and_outside_points_are_dropped(device):
    feats, points, batch = _random_cloud(300, 1, seed=1)
    _, counts = _naive_grid(feats, points, batch, 2)
    ones = pool_features_to_grid(torch.ones(300, 1, device=device), points.to(device),
                                 batch.to(device), 2, LOWER, SIZE, SHAPE)
    assert ones.device.type == device
    assert torch.equal(ones[:, 0].double().cpu(), counts)
    _, inside = compute_voxel_indices(points.to(device), LOWER, SIZE, SHAPE)
    assert int(ones.sum()) == int(inside.sum()) < 300
    # a point exactly on the lower corner is inside; on the upper face it is outside
    edge = torch.tensor([[-2.0, -1.5, -1.0], [2.0, 0.0, 0.0], [-2.1, 0.0, 0.0]], device=device)
    _, inside = compute_voxel_indices(edge, LOWER, SIZE, SHAPE)
    assert inside.tolist() == [True, False, False]
    # BEVFusion's .long() truncation keeps the point just below the lower corner
    _, inside_trunc = compute_voxel_indices(edge, LOWER, SIZE, SHAPE, rounding='trunc')
    assert inside_trunc.tolist() == [True, False, True]
    # non-finite points are dropped, not wrapped around
    bad = torch.tensor([[float('nan'), 0.0, 0.0], [1e30, 0.0, 0.0]], device=device)
    assert pool_features_to_grid(torch.ones(2, 1, device=device), bad, None, 1, LOWER, SIZE,
                                 SHAPE).sum() == 0


def test_pooling_gradient_and_frustum_wrapper(device):
    gen = torch.Generator().manual_seed(2)
    feats = torch.randn(2, 3, 4, 2, 5, 6, generator=gen).to(device)  # (B, N, D, h, w, C)
    feats.requires_grad_()
    geom = (torch.rand(2, 3, 4, 2, 5, 3, generator=gen) * 4 - 2).to(device)
    out = pool_frustum_to_grid(feats, geom, LOWER, SIZE, SHAPE, collapse_z='sum')
    batch = torch.arange(2, device=device).repeat_interleave(3 * 4 * 2 * 5)
    ref = pool_features_to_grid(feats.detach().reshape(-1, 6), geom.reshape(-1, 3), batch, 2,
                                LOWER, SIZE, SHAPE, collapse_z='sum')
    assert torch.allclose(out.detach(), ref)
    # sample 1 alone equals the batch-1 slice (batch index from the leading dim)
    alone = pool_frustum_to_grid(feats.detach()[1:], geom[1:], LOWER, SIZE, SHAPE, collapse_z='sum')
    assert torch.allclose(alone[0], out.detach()[1])
    weight = torch.randn(out.shape, generator=gen).to(device)
    (out * weight).sum().backward()
    # d/dfeat of sum(weight * grid) is the weight of the point's cell (0 outside)
    idx, inside = compute_voxel_indices(geom.reshape(-1, 3), LOWER, SIZE, SHAPE)
    bidx = torch.arange(2, device=device).repeat_interleave(120)
    expected = weight[bidx, :, idx[:, 1].clamp(0, 5), idx[:, 0].clamp(0, 7)] * inside[:, None]
    assert torch.allclose(feats.grad.reshape(-1, 6), expected)


def test_bad_inputs_raise(device):
    with pytest.raises(ValueError, match='feats'):
        pool_features_to_grid(torch.ones(3, 2, device=device), torch.zeros(4, 3, device=device),
                              None, 1, LOWER, SIZE, SHAPE)
    with pytest.raises(ValueError, match='collapse_z'):
        pool_features_to_grid(torch.ones(3, 2, device=device), torch.zeros(3, 3, device=device),
                              None, 1, LOWER, SIZE, SHAPE, collapse_z='max')
    with pytest.raises(ValueError, match='voxel'):
        compute_voxel_indices(torch.zeros(3, 3, device=device), LOWER, (0.5, 0.0, 1.0), SHAPE)


def test_docstring_examples():
    result = doctest.testmod(voxel_pooling_module, extraglobs={'torch': torch})
    assert result.attempted > 0 and result.failed == 0
