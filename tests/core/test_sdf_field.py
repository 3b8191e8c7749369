"""Tests for render_pretrain.sdf_field (SDF + colour field on a feature volume)."""
import math

import pytest
import torch
import torch.nn.functional as F

from render_pretrain.interpolation import normalize_points_to_aabb, trilinear_interpolate_packed
from render_pretrain.ray_sampling import intersect_rays_aabb
from render_pretrain.reconstruction_losses import masked_l1
from render_pretrain.sdf_field import InverseStd, SDFField
from render_pretrain.sdf_rendering import eikonal_loss, render_neus

AABB = (-8.0, -6.0, -2.0, 8.0, 6.0, 2.0)


def _reference(field, points, dirs, volume, batch_idx, create_graph=False):
    """Plain MLPs on grid_sample features, gradient by autograd (double backward)."""
    pts = points.detach().requires_grad_(True)
    norm = normalize_points_to_aabb(pts, torch.tensor(AABB, dtype=pts.dtype, device=pts.device))
    grid = norm.unsqueeze(1).unsqueeze(1)  # (R, 1, 1, S, 3)
    feats = F.grid_sample(volume[batch_idx], grid, align_corners=False)  # (R, C, 1, 1, S)
    feats = feats[:, :, 0, 0].transpose(1, 2)  # (R, S, C)
    h = torch.cat([feats, norm], -1) if field.use_position else feats
    for i, layer in enumerate(field.sdf_layers):
        h = layer(h)
        if i < len(field.sdf_layers) - 1:
            h = F.softplus(h, beta=100)
    sdf, geo = h[..., 0], h[..., 1:]
    (grad,) = torch.autograd.grad(sdf.sum(), pts, retain_graph=True, create_graph=create_graph)
    rgb = field.color_net(torch.cat([feats, geo, dirs, grad], -1))
    return sdf, rgb, grad


def test_matches_plain_mlp_on_grid_sample_features_batched(device):
    torch.manual_seed(0)
    field = SDFField(6, AABB, hidden_dim=8, geo_feat_dim=4, color_hidden_dim=8).double().to(device)
    gen = torch.Generator().manual_seed(0)
    volume = torch.randn(2, 6, 3, 5, 7, generator=gen, dtype=torch.float64).to(device)
    points = ((torch.rand(5, 4, 3, generator=gen, dtype=torch.float64) * 2 - 1)
              * torch.tensor(AABB[3:], dtype=torch.float64) * 1.1).to(device)
    dirs = F.normalize(torch.randn(5, 4, 3, generator=gen, dtype=torch.float64), dim=-1).to(device)
    batch_idx = torch.tensor([1, 0, 1, 1, 0], device=device)
    sdf, rgb, grad = field(points, dirs, volume, batch_idx)
    ref = _reference(field, points, dirs, volume, batch_idx)
    for ours, theirs in zip((sdf, rgb, grad), ref):
        torch.testing.assert_close(ours, theirs)
    assert ((rgb >= 0) & (rgb <= 1)).all()
    torch.testing.assert_close(field.sdf(points, volume, batch_idx), ref[0])
    sdf_fn, field_fn = field.callbacks(volume, batch_idx)
    torch.testing.assert_close(sdf_fn(points), ref[0])
    with torch.no_grad():  # the inference path (up-sampling)
        torch.testing.assert_close(sdf_fn(points), ref[0])
        torch.testing.assert_close(field.sdf(points, volume, batch_idx), ref[0])
    torch.testing.assert_close(field_fn(points, dirs)[2], ref[2])


@pytest.mark.parametrize('num_layers,use_position', [(4, True), (2, True), (6, False)])
def test_parameter_gradients_match_double_backward_reference(num_layers, use_position, device):
    # The analytic SDF gradient must train exactly like autograd.grad(create_graph=True),
    # for the shortest MLP (no hidden-to-hidden layer), a deep one, and without positions.
    torch.manual_seed(5)
    field = SDFField(6, AABB, hidden_dim=8, num_layers=num_layers, geo_feat_dim=4,
                     color_hidden_dim=8, use_position=use_position).double().to(device)
    gen = torch.Generator().manual_seed(5)
    volume = torch.randn(2, 6, 3, 5, 7, generator=gen, dtype=torch.float64).to(device)
    volume.requires_grad_()
    points = ((torch.rand(6, 5, 3, generator=gen, dtype=torch.float64) * 2 - 1)
              * torch.tensor(AABB[3:], dtype=torch.float64) * 1.1).to(device)
    dirs = F.normalize(torch.randn(6, 5, 3, generator=gen, dtype=torch.float64), dim=-1).to(device)
    batch_idx = torch.tensor([1, 0, 1, 1, 0, 0], device=device)
    target = torch.rand(6, 5, 3, generator=gen, dtype=torch.float64).to(device)
    params = [volume] + list(field.parameters())

    def loss_of(sdf, rgb, grad):
        return ((rgb - target).abs().mean() + eikonal_loss(grad) + sdf.pow(2).mean()
                + (grad * dirs).sum(-1).mean())

    outs = field(points, dirs, volume, batch_idx)
    ref_outs = _reference(field, points, dirs, volume, batch_idx, True)
    for mine, theirs in zip(outs, ref_outs):
        torch.testing.assert_close(mine, theirs)
    ours = torch.autograd.grad(loss_of(*outs), params, allow_unused=True)
    ref = torch.autograd.grad(loss_of(*ref_outs), params, allow_unused=True)
    for mine, theirs in zip(ours, ref):
        if theirs is None:
            assert mine is None or not mine.any()
        else:
            torch.testing.assert_close(mine, theirs)
    assert ours[0].abs().sum() > 0


def test_analytic_gradient_with_align_corners_matches_autograd(device):
    # align_corners=True changes the metric -> normalised scale (voxel centres at +-1).
    torch.manual_seed(7)
    field = SDFField(5, AABB, hidden_dim=8, geo_feat_dim=4, align_corners=True).double().to(device)
    gen = torch.Generator().manual_seed(7)
    volume = torch.randn(2, 5, 3, 4, 6, generator=gen, dtype=torch.float64).to(device)
    points = ((torch.rand(4, 6, 3, generator=gen, dtype=torch.float64) * 2 - 1)
              * torch.tensor(AABB[3:], dtype=torch.float64) * 1.2).to(device)
    dirs = F.normalize(torch.randn(4, 6, 3, generator=gen, dtype=torch.float64), dim=-1).to(device)
    batch_idx = torch.tensor([0, 1, 1, 0], device=device)
    sdf, _, grad = field(points, dirs, volume, batch_idx)
    pts = points.clone().requires_grad_()
    norm = normalize_points_to_aabb(pts, torch.tensor(AABB, dtype=pts.dtype, device=device),
                                    (3, 4, 6), True)
    feats = trilinear_interpolate_packed(volume, norm.reshape(-1, 3),
                                         batch_idx.repeat_interleave(6), True).view(4, 6, 5)
    h = torch.cat([feats, norm], -1)
    for i, layer in enumerate(field.sdf_layers):
        h = layer(h)
        if i < len(field.sdf_layers) - 1:
            h = F.softplus(h, beta=100)
    (ref_grad,) = torch.autograd.grad(h[..., 0].sum(), pts)
    torch.testing.assert_close(sdf, h[..., 0])
    torch.testing.assert_close(grad, ref_grad)


def test_eikonal_term_trains_volume_and_sdf_mlp(device):
    torch.manual_seed(1)
    field = SDFField(4, AABB, hidden_dim=8, geo_feat_dim=4).to(device)
    volume = torch.randn(1, 4, 3, 4, 4).to(device).requires_grad_()
    points = (torch.rand(6, 5, 3) * 6 - 3).to(device)
    dirs = F.normalize(torch.randn(6, 5, 3), dim=-1).to(device)
    _, rgb, grad = field(points, dirs, volume, torch.zeros(6, dtype=torch.long, device=device))
    assert grad.requires_grad
    eikonal_loss(grad).backward()
    assert volume.grad.abs().sum() > 0
    assert all(layer.weight.grad.abs().sum() > 0 for layer in field.sdf_layers)
    with torch.no_grad():
        batch_idx = torch.zeros(6, dtype=torch.long, device=device)
        sdf, rgb, grad = field(points, dirs, volume, batch_idx)
    assert not grad.requires_grad and grad.abs().sum() > 0


def test_inverse_std_and_buffers():
    dev = InverseStd(0.3)
    assert abs(dev().item() - math.exp(3.0)) < 1e-4
    dev().backward()
    assert dev.variance.grad.item() == pytest.approx(10 * math.exp(3.0), rel=1e-5)
    field = SDFField(4, AABB)
    keys = set(field.state_dict())
    assert 'aabb' not in keys and 'deviation.variance' in keys
    assert len(field.sdf_layers) == 5 and field.sdf_layers[-1].out_features == 17


def test_geometric_init_gives_a_radial_sdf_in_box_coordinates(device):
    # NeuS/SAL init: approximately |x_n| - r, negative inside, growing outwards.
    torch.manual_seed(2)
    field = SDFField(4, AABB, hidden_dim=256, geometric_init=True, init_radius=0.5).to(device)
    volume = torch.randn(1, 4, 3, 4, 4).to(device)
    radii = torch.linspace(0, 1, 5)
    dirs = F.normalize(torch.randn(6, 3), dim=-1)
    norm = radii[None, :, None] * dirs[:, None]
    metric = ((norm + 1) / 2 * torch.tensor([16., 12., 4.]) + torch.tensor(AABB[:3])).to(device)
    with torch.no_grad():
        sdf = field.sdf(metric, volume, torch.zeros(6, dtype=torch.long, device=device))
    assert (sdf[:, 0] < 0).all() and (sdf[:, -1] > 0).all()
    assert (sdf.diff(dim=1) > 0).all()
    # The feature columns start at zero: the initial SDF ignores the volume.
    torch.testing.assert_close(
        field.sdf(metric, volume * 0, torch.zeros(6, device=device).long()).detach(), sdf)
    with pytest.raises(ValueError, match='geometric_init'):
        SDFField(4, AABB, geometric_init=True, use_position=False)


@pytest.mark.overfit
def test_render_head_overfits_a_ground_plane_depth(single_thread):
    # Camera rays looking down at the ground z = -1 of a small box; the field
    # learns the depth from the volume and its MLPs.
    gen = torch.Generator().manual_seed(3)
    torch.manual_seed(3)
    field = SDFField(8, AABB, hidden_dim=16)
    volume = (0.1 * torch.randn(1, 8, 4, 12, 16, generator=gen)).requires_grad_()
    num_rays = 64
    origins = torch.tensor([0., 0., 1.5]).expand(num_rays, 3)
    az = torch.rand(num_rays, generator=gen) * 2 * math.pi
    el = torch.rand(num_rays, generator=gen) * 0.5 + 0.4  # below the horizon
    dirs = torch.stack([az.cos() * el.cos(), az.sin() * el.cos(), -el.sin()], -1)
    target = 2.5 / el.sin()  # ground at z = -1
    near, far, valid = intersect_rays_aabb(origins, dirs, torch.tensor(AABB), near_plane=0.5)
    has_target = valid & (target < far)
    opt = torch.optim.Adam(list(field.parameters()) + [volume], lr=1e-2)
    losses = []
    batch_idx = torch.zeros(num_rays, dtype=torch.long)
    for _ in range(25):
        sdf_fn, field_fn = field.callbacks(volume, batch_idx)
        out = render_neus(origins, dirs, near, far, field_fn, field.inv_s(), sdf_fn,
                          num_uniform=24, num_importance=8, valid=valid)
        loss = masked_l1(out['depth'], target, has_target) + 0.1 * eikonal_loss(out['gradients'])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    assert min(losses[-3:]) < 0.5 * losses[0]


def test_bad_inputs_raise(device):
    field = SDFField(4, AABB).to(device)
    with pytest.raises(ValueError, match='volume must be'):
        field.sdf(torch.zeros(2, 3, 3, device=device), torch.zeros(1, 5, 2, 2, 2, device=device),
                  torch.zeros(2, device=device).long())
    with pytest.raises(ValueError, match='aabb'):
        SDFField(4, (0., 0., 0., 1., -1., 1.))


def test_packed_batch_render_equals_per_item_render(device):
    gen = torch.Generator().manual_seed(4)
    torch.manual_seed(4)
    field = SDFField(4, AABB, hidden_dim=8, geo_feat_dim=4).to(device)
    volume = torch.randn(2, 4, 3, 6, 8, generator=gen).to(device)
    origins = torch.randn(10, 3, generator=gen).to(device)
    dirs = F.normalize(torch.randn(10, 3, generator=gen), dim=-1).to(device)
    batch_idx = torch.tensor([0, 1, 1, 0, 1, 0, 0, 1, 1, 0], device=device)
    near, far, valid = intersect_rays_aabb(origins, dirs, torch.tensor(AABB, device=device),
                                           near_plane=0.2)
    with torch.no_grad():
        sdf_fn, field_fn = field.callbacks(volume, batch_idx)
        packed = render_neus(origins, dirs, near, far, field_fn, field.inv_s(), sdf_fn,
                             num_uniform=16, num_importance=8, num_upsample_steps=2, valid=valid)
        assert packed['opacity'].max() > 0.01
        for item in (0, 1):
            sel = batch_idx == item
            sdf_fn, field_fn = field.callbacks(volume[item:item + 1],
                                               torch.zeros(int(sel.sum()), dtype=torch.long,
                                                           device=device))
            single = render_neus(origins[sel], dirs[sel], near[sel], far[sel], field_fn,
                                 field.inv_s(), sdf_fn, num_uniform=16, num_importance=8,
                                 num_upsample_steps=2, valid=valid[sel])
            for key in ('rgb', 'depth', 'opacity', 't_mid'):
                torch.testing.assert_close(packed[key][sel], single[key])
