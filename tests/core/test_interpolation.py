"""Tests for render_pretrain.interpolation (gather-based trilinear sampling)."""
import pytest
import torch
import torch.nn.functional as F

from render_pretrain.interpolation import (interpolate_table, normalize_points_to_aabb,
                                           trilinear_corner_weights, trilinear_interpolate,
                                           trilinear_interpolate_packed)


def _grid_sample(volume, points, align_corners):
    bsz, num = points.shape[:2]
    out = F.grid_sample(volume, points.view(bsz, num, 1, 1, 3), mode='bilinear',
                        padding_mode='zeros', align_corners=align_corners)
    return out.view(bsz, volume.shape[1], num).transpose(1, 2)


def _float64_leaves(seed, volume_shape, num_points, half_range, device='cpu'):
    """Random float64 inputs that require grad, for gradient checks.

    Returns:
        tuple: volume ``volume_shape`` (standard normal), points
        (volume_shape[0], num_points, 3) uniform in [-half_range, half_range)
        (normalised units), both leaves on ``device``, and the generator
        (seeded ``seed``) for further draws.
    """
    gen = torch.Generator().manual_seed(seed)
    volume = torch.randn(*volume_shape, generator=gen, dtype=torch.float64).to(device)
    points = torch.rand(volume_shape[0], num_points, 3, generator=gen, dtype=torch.float64)
    points = (points * (2 * half_range) - half_range).to(device)
    return volume.requires_grad_(), points.requires_grad_(), gen


@pytest.mark.parametrize('align_corners', [False, True])
def test_matches_grid_sample_inside_and_outside(align_corners, device):
    gen = torch.Generator().manual_seed(0)
    volume = torch.randn(2, 3, 4, 5, 6, generator=gen).to(device)
    # Range beyond [-1, 1] exercises the zero padding on every face.
    points = (torch.rand(2, 500, 3, generator=gen) * 4.0 - 2.0).to(device)
    ours = trilinear_interpolate(volume, points, align_corners=align_corners)
    ref = _grid_sample(volume, points, align_corners)
    assert (ref.abs() > 0).any() and (ref == 0).any()
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)


def test_gradients_match_grid_sample(device):
    volume, points, gen = _float64_leaves(1, (1, 2, 3, 4, 5), 50, 1.1, device)
    weights = torch.randn(1, 50, 2, generator=gen, dtype=torch.float64).to(device)
    ours = torch.autograd.grad((trilinear_interpolate(volume, points) * weights).sum(),
                               (volume, points))
    ref = torch.autograd.grad((_grid_sample(volume, points, False) * weights).sum(),
                              (volume, points))
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b)


def test_exact_values_at_voxel_centres_and_midpoints(device):
    volume = torch.arange(8., device=device).view(1, 1, 2, 2, 2)  # value = 4 z + 2 y + x
    points = torch.tensor([[[-1., -1., -1.], [1., 1., 1.], [0., 0., 0.], [1., -1., 0.]]],
                          device=device)
    out = trilinear_interpolate(volume, points, align_corners=True)[0, :, 0]
    torch.testing.assert_close(out, torch.tensor([0., 7., 3.5, 3.], device=device))


def test_packed_equals_batched_and_follows_batch_index(device):
    gen = torch.Generator().manual_seed(2)
    volume = torch.randn(3, 4, 3, 3, 3, generator=gen).to(device)
    points = (torch.rand(3, 10, 3, generator=gen) * 2 - 1).to(device)
    batched = trilinear_interpolate(volume, points)
    order = torch.randperm(30, generator=gen).to(device)
    flat_batch = torch.arange(3, device=device).repeat_interleave(10)[order]
    packed = trilinear_interpolate_packed(volume, points.reshape(30, 3)[order], flat_batch)
    torch.testing.assert_close(packed, batched.reshape(30, 4)[order])


def test_gradcheck_and_gradgradcheck_float64(device):
    # Keep points away from voxel-centre planes, where the derivative jumps.
    volume, points, _ = _float64_leaves(3, (1, 2, 3, 3, 4), 6, 0.8, device)

    def func(vol, pts):
        return trilinear_interpolate(vol, pts, align_corners=True)

    assert torch.autograd.gradcheck(func, (volume, points))
    assert torch.autograd.gradgradcheck(func, (volume, points))


def test_second_derivative_of_points_gradient_reaches_volume(device):
    # The eikonal use case: d/dV of |d f / d p|^2 must be non-zero.
    volume, points, _ = _float64_leaves(4, (1, 1, 4, 4, 4), 20, 0.8, device)
    sdf = trilinear_interpolate(volume, points).sum()
    (grad_pts,) = torch.autograd.grad(sdf, points, create_graph=True)
    (grad_vol,) = torch.autograd.grad(grad_pts.pow(2).sum(), volume)
    assert grad_vol.abs().sum() > 0


def test_double_backward_matches_grid_sample():
    # torch >= 2.x differentiates grid_sample twice on CPU: an independent reference
    # (CPU only: the reference's double backward, not trilinear_interpolate, sets the device).
    volume, points, _ = _float64_leaves(6, (1, 2, 3, 4, 5), 30, 1.2)
    results = []
    for func in (lambda v, p: trilinear_interpolate(v, p), lambda v, p: _grid_sample(v, p, False)):
        (grad_pts,) = torch.autograd.grad(func(volume, points).sum(), points, create_graph=True)
        results.append(torch.autograd.grad(grad_pts.pow(2).sum(), (volume, points)))
    for ours, ref in zip(*results):
        torch.testing.assert_close(ours, ref)


def test_normalize_points_to_aabb_edges_and_centres(device):
    aabb = torch.tensor([-54., -54., -5., 54., 54., 3.], device=device)
    pts = torch.tensor([[-54., 54., -5.], [0., 0., -1.], [-53.7, 53.7, -4.2]], device=device)
    out = normalize_points_to_aabb(pts, aabb)
    torch.testing.assert_close(out[:2],
                               torch.tensor([[-1., 1., -1.], [0., 0., 0.]], device=device))
    # First/last voxel centres (0.6 m x 0.6 m x 1.6 m voxels) map to -1/+1 with align_corners.
    out_ac = normalize_points_to_aabb(pts[2:], aabb, grid_size=(5, 180, 180), align_corners=True)
    torch.testing.assert_close(out_ac, torch.tensor([[-1., 1., -1.]], device=device))
    # The two conventions sample the same voxel value at a metric point.
    gen = torch.Generator().manual_seed(5)
    volume = torch.randn(1, 2, 5, 6, 7, generator=gen).to(device)
    box = torch.tensor([-3.5, -3., -2.5, 3.5, 3., 2.5], device=device)
    metric = (torch.rand(1, 40, 3, generator=gen) * 4 - 2).to(device)
    a = trilinear_interpolate(volume, normalize_points_to_aabb(metric, box), align_corners=False)
    b = trilinear_interpolate(volume, normalize_points_to_aabb(metric, box, (5, 6, 7), True),
                              align_corners=True)
    torch.testing.assert_close(a, b)


def _table_setup(align_corners, seed=7, device='cpu'):
    gen = torch.Generator().manual_seed(seed)
    volume = torch.randn(2, 5, 3, 4, 6, generator=gen, dtype=torch.float64).to(device)
    volume.requires_grad_()
    # Inside, on the zero-padded border and far outside on every face.
    points = (torch.rand(300, 3, generator=gen, dtype=torch.float64) * 3.0 - 1.5).to(device)
    batch_idx = torch.randint(0, 2, (300,), generator=gen).to(device)
    corner_idx, weights = trilinear_corner_weights(points, batch_idx, volume.shape[2:],
                                                   align_corners, derivatives=True)
    table = volume.permute(0, 2, 3, 4, 1).reshape(-1, 5)
    return volume, points, batch_idx, corner_idx, weights, table


@pytest.mark.parametrize('align_corners', [False, True])
def test_table_values_and_derivatives_match_autograd_of_the_gather_path(align_corners, device):
    volume, points, batch_idx, corner_idx, weights, table = _table_setup(align_corners,
                                                                         device=device)
    assert corner_idx.shape == (300, 8) and weights.shape == (4, 300, 8)
    values, derivs = interpolate_table(table, corner_idx, weights, derivative_channels=3)
    pts = points.clone().requires_grad_()
    ref = trilinear_interpolate_packed(volume, pts, batch_idx, align_corners)
    torch.testing.assert_close(values, ref)
    assert (ref == 0).any() and (ref.abs() > 0).any()
    # d value_c / d point for the first 3 channels, by autograd (create_graph for below).
    ref_derivs = torch.stack([torch.autograd.grad(ref[:, c].sum(), pts, create_graph=True)[0]
                              for c in range(3)], dim=-1)  # (P, axis, channel)
    torch.testing.assert_close(derivs, ref_derivs.permute(1, 0, 2))
    # One ordinary backward equals the double backward of the reference.
    gen = torch.Generator().manual_seed(8)
    w_values = torch.randn(300, 5, generator=gen, dtype=torch.float64).to(device)
    w_derivs = torch.randn(3, 300, 3, generator=gen, dtype=torch.float64).to(device)
    ours = torch.autograd.grad((values * w_values).sum() + (derivs * w_derivs).sum(), volume)[0]
    theirs = torch.autograd.grad((ref * w_values).sum()
                                 + (ref_derivs.permute(1, 0, 2) * w_derivs).sum(), volume)[0]
    torch.testing.assert_close(ours, theirs)


def test_corner_weights_worked_example_and_partition_of_unity(device):
    def tensor(values):
        return torch.tensor(values, device=device)

    idx, w = trilinear_corner_weights(tensor([[0.5, 0.0, -0.5]]), tensor([0]),
                                      (2, 2, 2), align_corners=True, derivatives=True)
    assert idx.dtype == torch.int64
    torch.testing.assert_close(idx, torch.arange(8, device=device).view(1, 8))
    # Rows past 2**31 (batch item 2**28 of a 2 x 2 x 2 grid): no overflow.
    far_idx, _ = trilinear_corner_weights(torch.zeros(1, 3, device=device), tensor([2**28]),
                                          (2, 2, 2), align_corners=True)
    assert far_idx.dtype == torch.int64
    torch.testing.assert_close(far_idx, 2**31 + torch.arange(8, device=device).view(1, 8))
    # x = 0.75, y = 0.5, z = 0.25 between the two voxel centres of each axis.
    fx, fy, fz = tensor([0.25, 0.75]), tensor([0.5, 0.5]), tensor([0.75, 0.25])
    expected = (fz[:, None, None] * fy[None, :, None] * fx[None, None, :]).reshape(8)
    torch.testing.assert_close(w[0, 0], expected)
    # Derivative weights sum to 0 (a constant volume has no slope), values to 1 inside.
    torch.testing.assert_close(w[:, 0].sum(-1), tensor([1., 0., 0., 0.]))
    # Value 4 z + 2 y + x on the 2x2x2 corners: slopes (1, 2, 4) per voxel = 0.5 per unit.
    table = torch.arange(8., device=device).view(8, 1)
    values, derivs = interpolate_table(table, idx, w)
    torch.testing.assert_close(values, tensor([[0.75 + 1.0 + 1.0]]))
    torch.testing.assert_close(derivs[:, 0, 0], tensor([0.5, 1.0, 2.0]))


def test_interpolate_table_gradcheck_float64(device):
    _, _, _, corner_idx, weights, table = _table_setup(False, seed=9, device=device)
    corner_idx, weights = corner_idx[:20], weights[:, :20]
    table = table.detach().requires_grad_()

    def func(tab):
        return interpolate_table(tab, corner_idx, weights, derivative_channels=2)

    assert torch.autograd.gradcheck(func, (table,))


def test_bad_shapes_raise(device):
    def zeros(*shape):
        return torch.zeros(*shape, device=device)

    with pytest.raises(ValueError, match='points must be'):
        trilinear_interpolate(zeros(1, 1, 2, 2, 2), zeros(1, 4, 2))
    with pytest.raises(ValueError, match='aabb'):
        normalize_points_to_aabb(zeros(3, 3), zeros(4))
    idx, w = trilinear_corner_weights(zeros(2, 3), zeros(2).long(), (2, 2, 2))
    with pytest.raises(ValueError, match='weights must be'):
        interpolate_table(zeros(8, 1), idx, w[0])
    with pytest.raises(ValueError, match='not differentiable w.r.t. weights'):
        interpolate_table(zeros(8, 1), idx, w.requires_grad_())
    with pytest.raises(ValueError, match='derivative_channels'):
        interpolate_table(zeros(8, 1), idx, w.detach(), derivative_channels=2)
