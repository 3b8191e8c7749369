"""Tests for render_pretrain.sdf_rendering (NeuS alpha, up-sampling, rendering)."""
import math

import torch
import torch.nn.functional as F

from render_pretrain.ray_sampling import intersect_rays_aabb, sample_uniform
from render_pretrain.reconstruction_losses import masked_l1
from render_pretrain.sdf_rendering import (alpha_from_sdf, eikonal_loss, render_neus,
                                           upsample_neus, upsample_weights)

CENTRE = torch.tensor([10., 2., 0.5])
RADIUS = 3.0
AABB = torch.tensor([-20., -20., -4., 20., 20., 6.])


def sphere_sdf(points):
    return (points - CENTRE.to(points.device)).norm(dim=-1) - RADIUS


def sphere_field(points, directions):
    offset = points - CENTRE.to(points.device)
    rgb = torch.sigmoid(offset)  # any colour that varies over the surface
    return offset.norm(dim=-1) - RADIUS, rgb, F.normalize(offset, dim=-1)


def _on(device, *tensors):
    return tuple(t.to(device) for t in tensors)


def _sphere_rays(num_hit=24, num_miss=8, seed=0):
    """Rays from the origin: the first ones through the sphere, the rest missing it."""
    gen = torch.Generator().manual_seed(seed)
    dist = CENTRE.norm()
    axis = CENTRE / dist
    helper = F.normalize(torch.cross(axis, torch.tensor([0., 0., 1.]), dim=0), dim=0)
    half_angle = math.asin(RADIUS / dist)
    angles = torch.cat([torch.rand(num_hit, generator=gen) * 0.8 * half_angle,
                        half_angle * 1.2 + torch.rand(num_miss, generator=gen) * 0.5])
    spin = torch.rand(num_hit + num_miss, generator=gen) * 2 * math.pi
    up = torch.cross(axis, helper, dim=0)
    side = torch.cos(spin)[:, None] * helper + torch.sin(spin)[:, None] * up
    dirs = torch.cos(angles)[:, None] * axis + torch.sin(angles)[:, None] * side
    origins = torch.zeros_like(dirs)
    # Analytic first hit: |t d - c| = r -> t = d.c - sqrt((d.c)^2 - |c|^2 + r^2).
    dc = dirs @ CENTRE
    disc = dc ** 2 - dist ** 2 + RADIUS ** 2
    t_hit = dc - disc.clamp(min=0).sqrt()
    return origins, dirs, t_hit, disc > 0


def test_alpha_worked_example_and_monotone_in_s(device):
    def tensor(values):
        return torch.tensor(values, device=device)

    alpha = alpha_from_sdf(tensor([[0.0]]), tensor([[-1.0]]), tensor([[1.0]]), tensor(10.0))
    expected = (torch.sigmoid(tensor(5.)) - torch.sigmoid(tensor(-5.)) + 1e-5) \
        / (torch.sigmoid(tensor(5.)) + 1e-5)
    torch.testing.assert_close(alpha, expected.view(1, 1))
    # Leaving the surface (cos > 0) adds no opacity with full annealing.
    leaving = alpha_from_sdf(tensor([[0.0]]), tensor([[1.0]]), tensor([[1.0]]), tensor(10.0))
    assert leaving.item() < 1e-4
    sharp = alpha_from_sdf(tensor([[0.0]]), tensor([[-1.0]]), tensor([[1.0]]), tensor(100.0))
    assert sharp.item() > alpha.item()


def test_alpha_gradcheck_float64(device):
    gen = torch.Generator().manual_seed(0)
    sdf = (torch.randn(3, 5, generator=gen, dtype=torch.float64) * 0.3).to(device)
    cos = (torch.rand(3, 5, generator=gen, dtype=torch.float64) * -0.9 - 0.05).to(device)
    sdf.requires_grad_()
    cos.requires_grad_()
    deltas = (torch.rand(3, 5, generator=gen, dtype=torch.float64) + 0.1).to(device)
    inv_s = torch.tensor(4.0, dtype=torch.float64, device=device, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a, b, s: alpha_from_sdf(a, b, deltas, s, cos_anneal_ratio=0.7), (sdf, cos, inv_s))


def test_planar_sdf_puts_the_weight_peak_on_the_plane(device):
    # Plane x = 7 crossed head-on by rays along +x.
    origins = torch.zeros(4, 3, device=device)
    dirs = torch.tensor([[1., 0., 0.]], device=device).expand(4, 3)

    def plane_field(points, directions):
        grads = torch.tensor([-1., 0., 0.], device=device).expand_as(points)
        return 7.0 - points[..., 0], torch.zeros_like(points), grads

    out = render_neus(origins, dirs, torch.full((4,), 1.0, device=device),
                      torch.full((4,), 21.0, device=device), plane_field,
                      torch.tensor(50.0, device=device), num_uniform=70, num_importance=0)
    peak = out['t_mid'].gather(1, out['weights'].argmax(1, keepdim=True))
    assert (peak - 7.0).abs().max() <= 0.2 + 1e-6
    torch.testing.assert_close(out['depth'], torch.full((4,), 7.0, device=device), atol=0.2,
                               rtol=0)
    torch.testing.assert_close(out['opacity'], torch.ones(4, device=device), atol=1e-3, rtol=0)


def test_sphere_renders_analytic_depth_and_misses_are_transparent(device):
    origins, dirs, t_hit, hits = _on(device, *_sphere_rays())
    near, far, valid = intersect_rays_aabb(origins, dirs, AABB.to(device), near_plane=1.0)
    out = render_neus(origins, dirs, near, far, sphere_field, torch.tensor(200.0, device=device),
                      sphere_sdf, num_uniform=72, num_importance=24, num_upsample_steps=2)
    spacing = (far - near) / 72
    assert hits[:24].all() and not hits[24:].any() and valid.all()
    assert ((out['depth'][hits] - t_hit[hits]).abs() < 0.25 * spacing[hits]).all()
    assert (out['opacity'][hits] > 0.99).all()
    assert (out['opacity'][~hits] < 1e-3).all()
    # Colour is the field's colour at the surface point.
    surface = origins + t_hit[:, None] * dirs
    expected_rgb = torch.sigmoid(surface - CENTRE.to(device))
    torch.testing.assert_close(out['rgb'][hits], expected_rgb[hits], atol=0.03, rtol=0)
    # The analytic SDF satisfies the eikonal equation.
    assert eikonal_loss(out['gradients']).item() < 1e-10


def test_importance_samples_concentrate_at_the_surface(device):
    origins, dirs, t_hit, hits = _on(device, *_sphere_rays(num_hit=32, num_miss=0, seed=1))
    near, far, _ = intersect_rays_aabb(origins, dirs, AABB.to(device), near_plane=1.0)
    coarse = sample_uniform(near, far, 72)
    fine = upsample_neus(origins, dirs, coarse, sphere_sdf, 24, num_steps=1)
    assert fine.shape == (32, 96) and (fine.diff(dim=1) >= 0).all()
    added = torch.stack([row[~torch.isin(row, c)] for row, c in zip(fine, coarse)])
    spacing = ((far - near) / 72)[:, None]
    close = (added - t_hit[:, None]).abs() < 2 * spacing
    assert close.float().mean() > 0.9
    # Under uniform sampling only ~4 of 72 samples would be that close.
    assert close.float().mean() > 5 * 4 / 72


def test_upsample_weights_without_surface_are_tiny(device):
    t = torch.linspace(1, 10, 20, device=device).expand(2, -1)
    sdf = torch.full((2, 20), 5.0, device=device)
    assert upsample_weights(t, sdf, 64.0).max() < 1e-4


def test_invalid_rays_give_finite_zero_outputs_and_losses(device):
    origins = torch.tensor([[0., 0., 0.], [0., 0., 30.]], device=device)
    # second ray starts above the box, goes up
    dirs = torch.tensor([[1., 0., 0.], [0., 0., 1.]], device=device)
    near, far, valid = intersect_rays_aabb(origins, dirs, AABB.to(device))
    assert valid.tolist() == [True, False]
    radius = torch.tensor(1.0, device=device, requires_grad=True)

    def field(points, directions):
        off = points - CENTRE.to(device)
        return off.norm(dim=-1) - radius * RADIUS, torch.sigmoid(off), F.normalize(off, dim=-1)

    out = render_neus(origins, dirs, near, far, field, torch.tensor(50.0, device=device),
                      lambda p: sphere_sdf(p), valid=valid)
    for value in out.values():
        assert torch.isfinite(value).all()
    assert out['opacity'][1] == 0 and out['depth'][1] == 0
    depth_target = torch.tensor([7.0, 0.0], device=device)
    loss = masked_l1(out['depth'], depth_target, torch.tensor([False, False], device=device)) \
        + masked_l1(out['rgb'], torch.zeros(2, 3, device=device), valid[:, None]) \
        + eikonal_loss(out['gradients'], torch.zeros(2, 96, dtype=torch.bool, device=device))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(radius.grad)


def test_rendered_depth_trains_the_field(single_thread, device):
    # Learn the radius and s of a sphere from the rendered depth of a few rays.
    origins, dirs, t_hit, hits = _on(device, *_sphere_rays(num_hit=16, num_miss=0, seed=2))
    centre = CENTRE.to(device)
    near, far, _ = intersect_rays_aabb(origins, dirs, AABB.to(device))
    radius = torch.tensor(2.0, device=device, requires_grad=True)
    log_s = torch.tensor(math.log(20.0), device=device, requires_grad=True)

    def field(points, directions):
        off = points - centre
        return off.norm(dim=-1) - radius, torch.zeros_like(points), F.normalize(off, dim=-1)

    opt = torch.optim.Adam([radius, log_s], lr=0.05)
    losses = []
    for _ in range(40):
        out = render_neus(origins, dirs, near, far, field, log_s.exp(),
                          lambda p: (p - centre).norm(dim=-1) - radius.detach(),
                          num_uniform=32, num_importance=8)
        loss = masked_l1(out['depth'], t_hit)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]
    assert abs(radius.item() - RADIUS) < 0.3
