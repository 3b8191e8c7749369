"""Tests for render_pretrain.interpolation (gather-based trilinear sampling)."""
import pytest
import torch
import torch.nn.functional as F

from render_pretrain.interpolation import (normalize_points_to_aabb, trilinear_interpolate,
                                           trilinear_interpolate_packed)


def _grid_sample(volume, points, align_corners):
    bsz, num = points.shape[:2]
    out = F.grid_sample(volume, points.view(bsz, num, 1, 1, 3), mode='bilinear',
                        padding_mode='zeros', align_corners=align_corners)
    return out.view(bsz, volume.shape[1], num).transpose(1, 2)


@pytest.mark.parametrize('align_corners', [False, True])
def test_matches_grid_sample_inside_and_outside(align_corners):
    gen = torch.Generator().manual_seed(0)
    volume = torch.randn(2, 3, 4, 5, 6, generator=gen)
    # Range beyond [-1, 1] exercises the zero padding on every face.
    points = torch.rand(2, 500, 3, generator=gen) * 4.0 - 2.0
    ours = trilinear_interpolate(volume, points, align_corners=align_corners)
    ref = _grid_sample(volume, points, align_corners)
    assert (ref.abs() > 0).any() and (ref == 0).any()
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)


def test_gradients_match_grid_sample():
    gen = torch.Generator().manual_seed(1)
    volume = torch.randn(1, 2, 3, 4, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    points = (torch.rand(1, 50, 3, generator=gen, dtype=torch.float64) * 2.2 - 1.1).requires_grad_()
    weights = torch.randn(1, 50, 2, generator=gen, dtype=torch.float64)
    ours = torch.autograd.grad((trilinear_interpolate(volume, points) * weights).sum(),
                               (volume, points))
    ref = torch.autograd.grad((_grid_sample(volume, points, False) * weights).sum(),
                              (volume, points))
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b)


def test_exact_values_at_voxel_centres_and_midpoints():
    volume = torch.arange(8.).view(1, 1, 2, 2, 2)  # value = 4 z + 2 y + x
    points = torch.tensor([[[-1., -1., -1.], [1., 1., 1.], [0., 0., 0.], [1., -1., 0.]]])
    out = trilinear_interpolate(volume, points, align_corners=True)[0, :, 0]
    torch.testing.assert_close(out, torch.tensor([0., 7., 3.5, 3.]))


def test_packed_equals_batched_and_follows_batch_index():
    gen = torch.Generator().manual_seed(2)
    volume = torch.randn(3, 4, 3, 3, 3, generator=gen)
    points = torch.rand(3, 10, 3, generator=gen) * 2 - 1
    batched = trilinear_interpolate(volume, points)
    order = torch.randperm(30, generator=gen)
    flat_batch = torch.arange(3).repeat_interleave(10)[order]
    packed = trilinear_interpolate_packed(volume, points.reshape(30, 3)[order], flat_batch)
    torch.testing.assert_close(packed, batched.reshape(30, 4)[order])


def test_gradcheck_and_gradgradcheck_float64():
    gen = torch.Generator().manual_seed(3)
    volume = torch.randn(1, 2, 3, 3, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    # Keep points away from voxel-centre planes, where the derivative jumps.
    points = (torch.rand(1, 6, 3, generator=gen, dtype=torch.float64) * 1.6 - 0.8)
    points.requires_grad_()

    def func(vol, pts):
        return trilinear_interpolate(vol, pts, align_corners=True)

    assert torch.autograd.gradcheck(func, (volume, points))
    assert torch.autograd.gradgradcheck(func, (volume, points))


def test_second_derivative_of_points_gradient_reaches_volume():
    # The eikonal use case: d/dV of |d f / d p|^2 must be non-zero.
    gen = torch.Generator().manual_seed(4)
    volume = torch.randn(1, 1, 4, 4, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    points = (torch.rand(1, 20, 3, generator=gen, dtype=torch.float64) * 1.6 - 0.8).requires_grad_()
    sdf = trilinear_interpolate(volume, points).sum()
    (grad_pts,) = torch.autograd.grad(sdf, points, create_graph=True)
    (grad_vol,) = torch.autograd.grad(grad_pts.pow(2).sum(), volume)
    assert grad_vol.abs().sum() > 0


def test_double_backward_matches_grid_sample():
    # torch >= 2.x differentiates grid_sample twice on CPU: an independent reference.
    gen = torch.Generator().manual_seed(6)
    volume = torch.randn(1, 2, 3, 4, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    points = (torch.rand(1, 30, 3, generator=gen, dtype=torch.float64) * 2.4 - 1.2).requires_grad_()
    results = []
    for func in (lambda v, p: trilinear_interpolate(v, p), lambda v, p: _grid_sample(v, p, False)):
        (grad_pts,) = torch.autograd.grad(func(volume, points).sum(), points, create_graph=True)
        results.append(torch.autograd.grad(grad_pts.pow(2).sum(), (volume, points)))
    for ours, ref in zip(*results):
        torch.testing.assert_close(ours, ref)


def test_normalize_points_to_aabb_edges_and_centres():
    aabb = torch.tensor([-54., -54., -5., 54., 54., 3.])
    pts = torch.tensor([[-54., 54., -5.], [0., 0., -1.], [-53.7, 53.7, -4.2]])
    out = normalize_points_to_aabb(pts, aabb)
    torch.testing.assert_close(out[:2], torch.tensor([[-1., 1., -1.], [0., 0., 0.]]))
    # First/last voxel centres (0.6 m x 0.6 m x 1.6 m voxels) map to -1/+1 with align_corners.
    out_ac = normalize_points_to_aabb(pts[2:], aabb, grid_size=(5, 180, 180), align_corners=True)
    torch.testing.assert_close(out_ac, torch.tensor([[-1., 1., -1.]]))
    # The two conventions sample the same voxel value at a metric point.
    gen = torch.Generator().manual_seed(5)
    volume = torch.randn(1, 2, 5, 6, 7, generator=gen)
    box = torch.tensor([-3.5, -3., -2.5, 3.5, 3., 2.5])
    metric = torch.rand(1, 40, 3, generator=gen) * 4 - 2
    a = trilinear_interpolate(volume, normalize_points_to_aabb(metric, box), align_corners=False)
    b = trilinear_interpolate(volume, normalize_points_to_aabb(metric, box, (5, 6, 7), True),
                              align_corners=True)
    torch.testing.assert_close(a, b)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match='points must be'):
        trilinear_interpolate(torch.zeros(1, 1, 2, 2, 2), torch.zeros(1, 4, 2))
    with pytest.raises(ValueError, match='aabb'):
        normalize_points_to_aabb(torch.zeros(3, 3), torch.zeros(4))
