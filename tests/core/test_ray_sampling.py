"""Tests for render_pretrain.ray_sampling (collider, stratified and pdf sampling)."""
import pytest
import torch

from render_pretrain.ray_sampling import (intersect_rays_aabb, merge_sorted_samples,
                                          points_along_rays, sample_pdf, sample_uniform)

AABB = torch.tensor([-10., -10., -2., 10., 10., 4.])


def test_aabb_intersection_hand_values(device):
    origins = torch.tensor([
        [0., 0., 0.],      # inside, along +x: exits at x = 10
        [-20., 0., 0.],    # outside, towards the box: enters 10, exits 30
        [-20., 0., 0.],    # outside, pointing away: misses
        [0., 0., 0.],      # inside, diagonal in x/z: exits the top z = 4 at t = 4 sqrt(2)
        [0., 20., 0.],     # parallel to y slab but outside it: misses
        [0., 0., 3.5],     # box exit (z = 4) closer than the 1 m near plane: invalid
    ], device=device)
    s = 2 ** -0.5
    directions = torch.tensor([[1., 0., 0.], [1., 0., 0.], [-1., 0., 0.],
                               [s, 0., s], [1., 0., 0.], [0., 0., 1.]], device=device)
    near, far, valid = intersect_rays_aabb(origins, directions, AABB.to(device), near_plane=1.0)
    torch.testing.assert_close(valid, torch.tensor([True, True, False, True, False, False],
                                                   device=device))
    torch.testing.assert_close(near, torch.tensor([1., 10., 1., 1., 1., 1.], device=device))
    torch.testing.assert_close(far, torch.tensor([10., 30., 1., 4 * 2 ** 0.5, 1., 1.],
                                                 device=device))


def test_aabb_intersection_matches_dense_marching(device):
    gen = torch.Generator().manual_seed(0)
    origins = (torch.randn(120, 3, generator=gen) * 8).to(device)
    directions = torch.nn.functional.normalize(torch.randn(120, 3, generator=gen), dim=-1)
    directions = directions.to(device)
    aabb = AABB.to(device)
    near, far, valid = intersect_rays_aabb(origins, directions, aabb, near_plane=0.0)
    t = torch.linspace(0, 60, 30001, device=device)
    pts = points_along_rays(origins, directions, t.expand(120, -1))
    inside = ((pts >= aabb[:3]) & (pts <= aabb[3:])).all(-1)
    has = inside.any(-1)
    assert has.sum() > 20 and (~has).sum() > 20
    assert torch.equal(valid, has)
    first = torch.where(inside, t, torch.full_like(t, 1e9)).amin(-1)
    last = torch.where(inside, t, torch.full_like(t, -1e9)).amax(-1)
    torch.testing.assert_close(near[valid], first[valid], atol=2.5e-3, rtol=0)
    torch.testing.assert_close(far[valid], last[valid], atol=2.5e-3, rtol=0)


def test_sample_uniform_stratified_and_jittered(device):
    near, far = torch.tensor([1., 2.], device=device), torch.tensor([5., 2.], device=device)
    det = sample_uniform(near, far, 4)
    torch.testing.assert_close(det, torch.tensor([[1.5, 2.5, 3.5, 4.5], [2., 2., 2., 2.]],
                                                 device=device))
    gen = torch.Generator(device).manual_seed(0)  # random numbers are drawn on the inputs' device
    jit = sample_uniform(near, far, 4, jitter=True, generator=gen)
    lower = torch.tensor([1., 2., 3., 4.], device=device)
    assert ((jit[0] >= lower) & (jit[0] < lower + 1)).all()
    assert not torch.allclose(jit[0], det[0])
    again = sample_uniform(near, far, 4, jitter=True,
                           generator=torch.Generator(device).manual_seed(0))
    assert torch.equal(jit, again)


def test_sample_pdf_delta_returns_that_bin_and_keeps_inputs(device):
    bins = torch.linspace(0, 10, 11, device=device).expand(3, -1).clone()
    weights = torch.zeros(3, 10, device=device)
    weights[0, 3] = 1.0
    weights[1, 7] = 5.0
    weights_before, bins_before = weights.clone(), bins.clone()
    out = sample_pdf(bins, weights, 16)
    assert ((out[0] >= 3) & (out[0] <= 4)).all()
    assert ((out[1] >= 7) & (out[1] <= 8)).all()
    # All-zero weights: uniform over the whole range.
    assert out[2].min() < 1 and out[2].max() > 9
    assert torch.equal(weights, weights_before) and torch.equal(bins, bins_before)
    gen = torch.Generator(device).manual_seed(1)
    rand = sample_pdf(bins, weights, 16, deterministic=False, generator=gen)
    assert ((rand[0] >= 3) & (rand[0] <= 4)).all()
    assert (rand.diff(dim=-1) >= 0).all()


def test_sample_pdf_follows_the_distribution(device):
    bins = torch.tensor([[0., 1., 3.]], device=device)
    weights = torch.tensor([[3., 1.]], device=device)  # 75 % of mass in [0, 1], 25 % in [1, 3]
    out = sample_pdf(bins, weights, 1000, eps=0.0)
    assert abs((out < 1).float().mean().item() - 0.75) < 2e-3
    # Inside the second bin the density is uniform: the median of that part is 2.
    assert abs(out[out > 1].median().item() - 2.0) < 2e-2


def test_merge_sorted_samples_permutation(device):
    a = torch.tensor([[1., 4., 6.]], device=device)
    b = torch.tensor([[0.5, 5.]], device=device)
    merged, order = merge_sorted_samples(a, b)
    torch.testing.assert_close(merged, torch.tensor([[0.5, 1., 4., 5., 6.]], device=device))
    values = torch.cat([a * 10, b * 10], -1)
    torch.testing.assert_close(values.gather(-1, order), merged * 10)


def test_bad_shapes_raise(device):
    with pytest.raises(ValueError, match='bins must be'):
        sample_pdf(torch.zeros(2, 4, device=device), torch.zeros(2, 4, device=device), 3)
    with pytest.raises(ValueError, match='aabb'):
        intersect_rays_aabb(torch.zeros(2, 3, device=device), torch.ones(2, 3, device=device),
                            torch.zeros(5, device=device))
