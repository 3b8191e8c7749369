"""Tests for render_pretrain.volume_warping (metric rigid warp of voxel volumes)."""
import math

import pytest
import torch

from render_pretrain.volume_warping import relative_transform, voxel_centers, warp_volume

# Non-cubic voxels (0.5 x 0.4 x 1.0 m), as MIM4D's 0.6 x 0.6 x 1.6 m grid.
AABB = torch.tensor([-10., -8., -2., 10., 8., 3.])
GRID = (5, 40, 40)  # (Z, Y, X)


def _pose(yaw_deg=0.0, translation=(0., 0., 0.), device='cpu'):
    c, s = math.cos(math.radians(yaw_deg)), math.sin(math.radians(yaw_deg))
    pose = torch.eye(4, dtype=torch.float64)
    pose[:2, :2] = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
    pose[:3, 3] = torch.tensor(translation, dtype=torch.float64)
    return pose.to(device)


def _smooth_volume(dtype=torch.float64, device='cpu'):
    """Two channels of slowly varying functions of the metric position."""
    centres = voxel_centers(AABB.to(device, dtype), GRID)
    x, y, z = centres.unbind(-1)
    vol = torch.stack([torch.sin(0.25 * x) * torch.cos(0.2 * y) + 0.1 * z,
                       0.05 * x * y / 4 + torch.cos(0.3 * z)], 0)
    return vol[None]


def test_integer_voxel_translation_is_an_exact_shift(device):
    gen = torch.Generator().manual_seed(0)
    volume = torch.randn(2, 3, *GRID, generator=gen).to(device)
    # Target frame = source frame moved by +3 voxels in x (1.5 m) and -2 in y (-0.8 m).
    target2source = _pose(0.0, (1.5, -0.8, 0.0), device).float()
    warped, valid = warp_volume(volume, target2source, AABB.to(device))
    # out[..., j, i] = volume[..., j - 2, i + 3]
    torch.testing.assert_close(warped[..., 2:, :-3], volume[..., :-2, 3:], atol=1e-5, rtol=1e-5)
    assert valid[..., 2:, :-3].all() and not valid[..., :2, :].any()
    assert not valid[..., :, -3:].any()
    assert (warped[..., :, -2:] == 0).all()  # more than a voxel outside: zeros


def test_shift_uses_metric_units_not_indices(device):
    # 1 m along y is 2.5 voxels (0.4 m voxels), 1 m along x is 2 voxels.
    volume = _smooth_volume(torch.float32, device)
    warped, _ = warp_volume(volume, _pose(0.0, (1.0, 1.0, 0.0), device).float(), AABB.to(device))
    torch.testing.assert_close(warped[0, :, :, 10, 10],
                               0.5 * (volume[0, :, :, 12, 12] + volume[0, :, :, 13, 12]),
                               atol=1e-5, rtol=0)


def test_rotation_and_translation_round_trip_on_the_overlap(device):
    volume = _smooth_volume(device=device)
    aabb = AABB.to(device, torch.float64)
    ego_prev = _pose(0.0, (100.0, 50.0, 0.0), device)
    ego_curr = _pose(10.0, (103.0, 50.0, 0.0), device)  # 3 m forward, 10 deg yaw
    curr2prev = relative_transform(ego_prev, ego_curr)
    torch.testing.assert_close(curr2prev, _pose(10.0, (3.0, 0.0, 0.0), device))
    forward, valid_fwd = warp_volume(volume, curr2prev, aabb)
    # The warped value equals the analytic function at the transformed centre.
    centres = voxel_centers(aabb, GRID)
    moved = centres @ curr2prev[:3, :3].T + curr2prev[:3, 3]
    x, y, z = moved.unbind(-1)
    analytic = torch.sin(0.25 * x) * torch.cos(0.2 * y) + 0.1 * z
    err = (forward[0, 0] - analytic)[valid_fwd[0, 0]].abs()
    assert valid_fwd.float().mean() > 0.6 and err.max() < 0.02
    back, valid_back = warp_volume(forward, torch.linalg.inv(curr2prev), aabb)
    # Valid after the round trip: the back-warped position is valid and its
    # 8 interpolation corners were valid in the forward warp (erode by 1 voxel).
    eroded = -torch.nn.functional.max_pool3d(-valid_fwd.double(), 3, 1, 1)
    overlap = valid_back & (warp_volume(eroded, torch.linalg.inv(curr2prev), aabb)[0] > 1 - 1e-9)
    assert overlap.float().mean() > 0.4
    diff = (back - volume).abs()[overlap.expand_as(volume)]
    assert diff.max() < 0.03 and diff.mean() < 0.005
    # Outside the overlap information was lost: the round trip differs there.
    assert (back - volume).abs()[~valid_back.expand_as(volume)].max() > 0.1


def test_identity_is_exact_and_gradients_flow(device):
    volume = torch.randn(1, 2, *GRID, generator=torch.Generator().manual_seed(1)).to(device)
    volume.requires_grad_()
    warped, valid = warp_volume(volume, torch.eye(4, device=device), AABB.to(device))
    torch.testing.assert_close(warped, volume, atol=1e-5, rtol=1e-5)
    assert valid.all()
    warped.sum().backward()
    assert volume.grad.abs().sum() > 0


def test_bad_inputs_raise(device):
    aabb = AABB.to(device)
    with pytest.raises(ValueError, match='target2source'):
        warp_volume(torch.zeros(2, 1, 2, 2, 2, device=device),
                    torch.eye(4, device=device).expand(3, 4, 4), aabb)
    with pytest.raises(ValueError, match='volume must be'):
        warp_volume(torch.zeros(1, 2, 2, 2, device=device), torch.eye(4, device=device), aabb)
