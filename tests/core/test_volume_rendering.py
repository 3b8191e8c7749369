import doctest
import math

import pytest
import torch

import render_pretrain.volume_rendering as volume_rendering_module
from render_pretrain.bev_targets import first_occupied_height
from render_pretrain.volume_rendering import (alpha_from_density, bin_centres, bin_deltas,
                                              composite_along_rays, render_bev_height,
                                              render_depth_bins, split_density_color,
                                              transmittance_from_alpha, weights_from_alpha)


def test_step_functions_hand_values(device):
    def tensor(values):
        return torch.tensor(values, device=device)

    alpha = tensor([0.3, 0.8, 0.8, 1.0])
    assert torch.allclose(transmittance_from_alpha(alpha), tensor([1.0, 0.7, 0.14, 0.028]))
    weights, _ = weights_from_alpha(alpha)
    assert torch.allclose(weights, tensor([0.3, 0.56, 0.112, 0.028]))
    assert torch.allclose(weights.sum(), tensor(1.0))
    sigma = tensor([2.0, -1.0, 0.0])
    assert torch.allclose(alpha_from_density(sigma, tensor(0.5)),
                          tensor([1 - math.exp(-1.0), 0.0, 0.0]))
    assert torch.allclose(bin_deltas(tensor([1.0, 1.5, 2.5]))[:2], tensor([0.5, 1.0]))
    assert bin_deltas(tensor([1.0, 1.5]))[-1] == 1e10
    with pytest.raises(ValueError, match='strictly increasing'):
        bin_deltas(tensor([1.0, 1.0]))


def test_single_opaque_bin_renders_its_depth_and_colour(device):
    depths = torch.arange(1.0, 60.0, 0.5, device=device)  # 118 paper bins
    num = depths.numel()
    k = 37
    density = torch.zeros(4, num, device=device)
    density[:, k] = 1e4  # opaque; empty space in front of it
    density[:, k + 5:] = 3.0  # whatever lies behind must not matter
    color = torch.rand(4, num, 3, generator=torch.Generator().manual_seed(0)).to(device)
    out = render_depth_bins(density, color, depths)
    assert torch.allclose(out['depth'], depths[k].expand(4))
    assert torch.allclose(out['rgb'], color[:, k])
    assert torch.allclose(out['opacity'], torch.ones(4, device=device))
    # the same ray with the depth dim at position 1 (image layout)
    out_img = render_depth_bins(density.t()[None, :, :, None],
                                color.permute(1, 2, 0)[None, ..., None], depths, bin_dim=1)
    assert out_img['rgb'].shape == (1, 3, 4, 1)
    assert torch.allclose(out_img['rgb'][0, :, :, 0].t(), color[:, k])
    assert torch.allclose(out_img['depth'][0, :, 0], depths[k].expand(4))


@pytest.mark.parametrize('sigma', [0.05, 0.7, 3.0])
def test_uniform_density_matches_closed_form(sigma, device):
    # Bins d_i = d0 + i s, i < D; constant density; the last interval is open
    # (alpha_{D-1} = 1). With q = exp(-sigma s), n = D - 1:
    #   w_i = (1 - q) q^i (i < n), w_n = q^n, and
    #   E[d] = sum_i w_i d_i = d0 + s * sum_{k=1..n} q^k = d0 + s q (1 - q^n) / (1 - q).
    d0, step, num = 1.0, 0.5, 118
    depths = d0 + step * torch.arange(num, dtype=torch.float64, device=device)
    out = render_depth_bins(torch.full((num, ), sigma, dtype=torch.float64, device=device), None,
                            depths)
    q, n = math.exp(-sigma * step), num - 1
    expected = d0 + step * q * (1 - q**n) / (1 - q)
    assert out['depth'].item() == pytest.approx(expected, rel=1e-10)
    assert out['opacity'].item() == pytest.approx(1.0, abs=1e-12)
    # a finite last interval of length L: the ray may leave the grid, O < 1
    out_closed = render_depth_bins(torch.full((num, ), sigma, dtype=torch.float64, device=device),
                                   None, depths, open_interval=step)
    assert out_closed['opacity'].item() == pytest.approx(1 - q**num, rel=1e-10)
    # all alphas equal 1 - q: E = sum_{i<=n} (1 - q) q^i (d0 + i s)
    expected_closed = d0 * (1 - q**num) + step * (q * (1 - q**n) / (1 - q) - n * q**num)
    assert out_closed['depth'].item() == pytest.approx(expected_closed, rel=1e-10)
    normalized = render_depth_bins(torch.full((num, ), sigma, dtype=torch.float64, device=device),
                                   None, depths, open_interval=step, normalize_depth=True)
    assert normalized['depth'].item() == pytest.approx(expected_closed / (1 - q**num), rel=1e-10)


def test_background_blends_with_transparency(device):
    depths = torch.tensor([1.0, 2.0, 3.0], device=device)
    density = torch.zeros(2, 3, device=device)
    density[1, 1] = math.log(2.0)  # alpha 0.5 in bin 1, nothing else
    color = torch.zeros(2, 3, 3, device=device)
    color[:, 1] = torch.tensor([1.0, 0.0, 0.0], device=device)
    out = render_depth_bins(density, color, depths,
                            background=torch.tensor([0.0, 0.0, 1.0], device=device),
                            open_interval=1.0)
    assert torch.allclose(out['opacity'], torch.tensor([0.0, 0.5], device=device))
    assert torch.allclose(out['rgb'],
                          torch.tensor([[0.0, 0.0, 1.0], [0.5, 0.0, 0.5]], device=device))


def test_gradients_reach_density_and_colour(device):
    gen = torch.Generator().manual_seed(1)
    depths = torch.linspace(1.0, 10.0, 8, device=device)
    density = torch.rand(5, 8, generator=gen).to(device).requires_grad_()
    color = torch.rand(5, 8, 3, generator=gen).to(device).requires_grad_()
    out = render_depth_bins(density, color, depths)
    (out['rgb'].sum() + out['depth'].sum()).backward()
    assert torch.isfinite(density.grad).all() and density.grad.abs().sum() > 0
    assert torch.isfinite(color.grad).all() and color.grad.abs().sum() > 0
    # colour gradient of sum(rgb) is exactly the weights
    assert torch.allclose(color.grad, out['weights'].detach().unsqueeze(-1).expand(-1, -1, 3))


def test_gradcheck_float64(device):
    gen = torch.Generator().manual_seed(2)
    depths = torch.tensor([1.0, 1.5, 2.5, 4.0], dtype=torch.float64, device=device)
    density = (torch.rand(3, 4, generator=gen, dtype=torch.float64) + 0.1).to(device)
    density.requires_grad_()
    color = torch.rand(3, 4, 3, generator=gen, dtype=torch.float64).to(device).requires_grad_()

    def fn(d, c):
        out = render_depth_bins(d, c, depths,
                                background=torch.ones(3, dtype=torch.float64, device=device),
                                open_interval=2.0, normalize_depth=True)
        return out['rgb'], out['depth'], out['opacity']

    assert torch.autograd.gradcheck(fn, (density, color))
    # default open interval: the last bin is opaque, gradients stay exact
    assert torch.autograd.gradcheck(lambda d, c: render_depth_bins(d, c, depths)['rgb'],
                                    (density, color))


def test_empty_and_zero_inputs_are_finite(device):
    depths = torch.arange(1.0, 5.0, device=device)
    zero = torch.zeros(2, 4, requires_grad=True, device=device)
    out = render_depth_bins(zero, torch.zeros(2, 4, 3, device=device), depths, normalize_depth=True)
    assert (torch.equal(out['depth'], torch.zeros(2, device=device))
            and torch.equal(out['opacity'], torch.zeros(2, device=device)))
    out['depth'].sum().backward()
    assert torch.isfinite(zero.grad).all()
    half = render_depth_bins(torch.zeros(2, 4, dtype=torch.float16, device=device), None,
                             depths.half())
    assert torch.isfinite(half['depth']).all() and torch.isfinite(half['weights']).all()
    empty = render_depth_bins(torch.zeros(0, 4, device=device), torch.zeros(0, 4, 3, device=device),
                              depths)
    assert empty['rgb'].shape == (0, 3) and empty['depth'].shape == (0, )
    with pytest.raises(ValueError, match='bin_depths'):
        render_depth_bins(torch.zeros(2, 4, device=device), None, torch.arange(3.0, device=device))
    with pytest.raises(ValueError, match='color'):
        render_depth_bins(torch.zeros(2, 4, device=device), torch.zeros(2, 3, 4, device=device),
                          depths)


def test_composite_along_rays_shapes(device):
    w = torch.tensor([[0.25, 0.75]], device=device)
    assert composite_along_rays(w).item() == 1.0
    assert composite_along_rays(w, torch.tensor([[2.0, 4.0]], device=device)).item() == 3.5
    vals = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]], device=device)
    assert torch.allclose(composite_along_rays(w, vals),
                          torch.tensor([[0.25, 0.75]], device=device))


def test_split_density_color_is_channel_blocked(device):
    num_bins, h, w = 5, 2, 3
    feats = torch.arange(2 * num_bins * 4 * h * w, dtype=torch.float32,
                         device=device).view(2, num_bins * 4, h, w)
    density, color = split_density_color(feats, num_bins)
    assert density.shape == (2, num_bins, h, w) and color.shape == (2, num_bins, 3, h, w)
    for d in range(num_bins):
        assert torch.equal(density[:, d], feats[:, d])
        for c in range(3):
            assert torch.equal(color[:, d, c], feats[:, num_bins + c * num_bins + d])
    with pytest.raises(ValueError, match='channels'):
        split_density_color(feats, 4)


def test_bev_height_top_down_and_consistent_with_target(device):
    z = bin_centres(-5.0, 3.0, 4, device=device)  # -4, -2, 0, 2
    density = torch.zeros(1, 4, 1, 3, device=device)
    density[0, 2, 0, 0] = 1e4  # hit at z = 0
    density[0, 0, 0, 0] = 1e4  # below the first hit: invisible
    density[0, 0, 0, 1] = 1e4  # only the lowest bin
    density[0, 3, 0, 2] = math.log(2.0) / 2  # alpha 0.5 over the 2 m top interval
    out = render_bev_height(density, z)
    assert torch.allclose(out['height'][0, 0, :2], torch.tensor([0.0, -4.0], device=device))
    assert torch.allclose(out['depth'][0, 0, :2], torch.tensor([2.0, 6.0], device=device))
    # third column: w = 0.5 at the top bin (z = 2), lower densities are 0 so the
    # rest of the ray escapes: opacity 0.5, expected height 0.5 * 2 m
    assert out['opacity'][0, 0, 2].item() == pytest.approx(0.5)
    assert out['height'][0, 0, 2].item() == pytest.approx(1.0)
    normalized = render_bev_height(density, z, normalize=True)
    assert normalized['height'][0, 0, 2].item() == pytest.approx(2.0)
    # rendering an occupancy grid as (near-)opaque density reproduces the target
    gen = torch.Generator().manual_seed(3)
    occupied = (torch.rand(2, 6, 5, 7, generator=gen) < 0.2).to(device)  # (B, Z, Y, X)
    coords = occupied.nonzero()  # (V, 4) rows (b, z, y, x)
    zc = bin_centres(-5.0, 3.0, 6, device=device)
    target, valid = first_occupied_height(coords, 2, (6, 5, 7), zc)
    rendered = render_bev_height(occupied.float() * 1e4, zc)
    assert torch.allclose(rendered['height'][valid], target[valid], atol=1e-4)
    assert torch.allclose(rendered['opacity'], valid.float())


def test_docstring_examples():
    result = doctest.testmod(volume_rendering_module, extraglobs={'torch': torch})
    assert result.attempted > 0 and result.failed == 0
