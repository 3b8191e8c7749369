"""MIM4DNeuSRenderHead: collider, loss masks, units, LiDAR range filter, finite empty cases."""
import math

import numpy as np
import pytest
import torch

from projects.MIM4D.mim4d import MIM4DNeuSRenderHead
from render_pretrain.ray_generation import CameraRays


def _rays(origins, directions, depth, has_depth):
    num = origins.shape[0]
    return CameraRays(origins, directions, depth, depth, torch.zeros(num, 2),
                      torch.zeros(num, dtype=torch.long), torch.zeros(num, dtype=torch.long),
                      has_depth)


def test_depth_is_supervised_only_inside_the_box():
    torch.manual_seed(0)
    head = MIM4DNeuSRenderHead(in_channels=4, aabb=(-4.0, -4.0, -2.0, 4.0, 4.0, 2.0),
                               num_uniform=8, num_importance=4)
    volume = torch.randn(1, 4, 2, 4, 4)
    origins = torch.zeros(3, 3)
    directions = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    rays = _rays(origins, directions, torch.tensor([3.0, 10.0, 0.0]),
                 torch.tensor([True, True, False]))
    rendered = head(volume, rays.origins, rays.directions, rays.batch_idx)
    assert torch.allclose(rendered['far'], torch.full((3, ), 4.0))
    assert rendered['valid'].all()
    losses = head.loss(rendered, rays, torch.full((3, 3), 0.5))
    # ray 1 (10 m, beyond the 4 m box exit) and ray 2 (no LiDAR) do not count; the
    # depth L1 is on scene-box units (metres / max|aabb| = metres / 4)
    assert torch.allclose(losses['loss_depth'], 10 * (rendered['depth'][0] - 3.0).abs() / 4)
    assert torch.allclose(losses['loss_rgb'], 10 * (rendered['rgb'] - 0.5).abs().mean())


def test_rays_missing_the_box_give_zero_finite_losses():
    head = MIM4DNeuSRenderHead(in_channels=4, aabb=(-4.0, -4.0, -2.0, 4.0, 4.0, 2.0),
                               num_uniform=8, num_importance=4,
                               loss_weights=dict(eikonal=1.0))
    volume = torch.randn(1, 4, 2, 4, 4, requires_grad=True)
    origins = torch.tensor([[0.0, 0.0, 10.0]])  # above the box, looking up
    rays = _rays(origins, torch.tensor([[0.0, 0.0, 1.0]]), torch.tensor([5.0]),
                 torch.tensor([True]))
    rendered = head(volume, rays.origins, rays.directions, rays.batch_idx)
    assert not rendered['valid'].any()
    losses = head.loss(rendered, rays, torch.zeros(1, 3))
    assert all(v == 0 for v in losses.values())
    sum(losses.values()).backward()
    assert torch.isfinite(volume.grad).all()


@pytest.mark.parametrize('removed', ['ray_workers', 'ray_chunk'])
def test_removed_cpu_thread_options_are_refused(removed):
    # A config still setting the removed CPU thread options fails loudly, not silently.
    with pytest.raises(TypeError, match=removed):
        MIM4DNeuSRenderHead(in_channels=4, **{removed: 2})


PAPER_BOX = (-54.0, -54.0, -5.0, 54.0, 54.0, 3.0)


@pytest.mark.parametrize('scene_scale, unit', [(None, 54.0), (1.0, 1.0)])
def test_depth_loss_is_taken_on_scene_box_units(scene_scale, unit):
    """Released: depth L1 on normalised depth (metres / 54), weight 10; 1.0: metres."""
    torch.manual_seed(0)
    head = MIM4DNeuSRenderHead(in_channels=4, aabb=PAPER_BOX, scene_scale=scene_scale,
                               num_uniform=16, num_importance=8)
    volume = torch.randn(1, 4, 5, 6, 6)
    directions = torch.nn.functional.normalize(torch.tensor([[1.0, 0.2, 0.0],
                                                             [-0.3, 1.0, -0.05]]), dim=-1)
    lidar = torch.tensor([12.0, 31.0])  # hand-made LiDAR ray distances, metres
    rays = _rays(torch.zeros(2, 3), directions, lidar, torch.tensor([True, True]))
    rendered = head(volume, rays.origins, rays.directions, rays.batch_idx)
    assert rendered['valid'].all()
    d_hat = rendered['depth'].detach().numpy().astype(np.float64)  # metres
    expected = 10.0 * np.mean(np.abs(np.array([12.0, 31.0]) - d_hat)) / unit
    losses = head.loss(rendered, rays, torch.full((2, 3), 0.5))
    assert losses['loss_depth'].item() == pytest.approx(expected, rel=1e-5)


def _set_planar_sdf(field, surface_m: float, box_half_m: float) -> None:
    """SDF weights giving the plane x = ``surface_m`` a proper SDF in the FIELD's units.

    ``sdf = a (surface_m / box_half_m - p_x)`` with ``p_x`` the field's normalised
    position (x / half extent of its box) and ``a`` the half extent of the field's
    box in its own units, so ``|grad sdf| = 1`` w.r.t. the points the field is
    given (the eikonal meaning that the NeuS constants refer to). The volume
    features get zero weight; ``softplus(z) - softplus(-z) = z`` carries ``p_x``
    through the hidden layers exactly.
    """
    a = float(field.aabb[3] - field.aabb[0]) / 2
    channels = field.in_channels
    with torch.no_grad():
        for layer in field.sdf_layers:
            layer.weight.zero_()
            layer.bias.zero_()
        first = field.sdf_layers[0]
        first.weight[0, channels] = 1.0
        first.weight[1, channels] = -1.0
        for layer in field.sdf_layers[1:-1]:
            layer.weight[:2, :2] = torch.tensor([[1.0, -1.0], [-1.0, 1.0]])
        last = field.sdf_layers[-1]
        last.weight[0, :2] = torch.tensor([-a, a])
        last.bias[0] = a * surface_m / box_half_m


def _released_neus_alpha(t_mid_m, deltas_m, surface_m, scale, inv_s):
    """Released NeuS alpha, in normalised units (metres * scale), ray along +x, cos = -1."""
    sdf = (surface_m - t_mid_m) * scale  # proper SDF of the plane, normalised units
    half = deltas_m * scale / 2
    prev_sdf, next_sdf = sdf + half, sdf - half  # sdf - cos * delta / 2, cos = -1

    def phi(x):
        return 1.0 / (1.0 + np.exp(-x))

    prev_cdf, next_cdf = phi(prev_sdf * inv_s), phi(next_sdf * inv_s)
    return np.clip((prev_cdf - next_cdf + 1e-5) / (prev_cdf + 1e-5), 0.0, 1.0)


def test_initial_opacity_profile_matches_the_released_setting():
    """The initial NeuS opacity along a ray is the released one (normalised units).

    Released (UniPAD / MIM4D ``NeuSModel``, ``norm_scene=True``): the field works
    on points times 1 / 54, its SDF is a distance in those units and the
    deviation starts at ``inv_s = exp(10 * 0.3)`` per normalised unit. A plane 20 m
    ahead, with a proper SDF in the field's units, must give the same alpha at
    every sample (computed here from the NeuS formula in normalised units) and so
    the same weight profile (here about 4 m wide, not a 0.1 m spike).
    """
    head = MIM4DNeuSRenderHead(in_channels=4, aabb=PAPER_BOX, num_uniform=72,
                               num_importance=24,
                               field=dict(hidden_dim=16, num_layers=6, geo_feat_dim=16,
                                          color_hidden_dim=16, color_num_layers=4))
    _set_planar_sdf(head.field, surface_m=20.0, box_half_m=54.0)
    volume = torch.zeros(1, 4, 5, 6, 6)
    origins, directions = torch.zeros(1, 3), torch.tensor([[1.0, 0.0, 0.0]])
    with torch.no_grad():
        out = head(volume, origins, directions, torch.zeros(1, dtype=torch.long))
    # the construction is a proper SDF in the field's units (|grad| = 1)
    torch.testing.assert_close(out['gradients'].norm(dim=-1), torch.ones(1, 96))
    t_mid = out['t_mid'][0].double().numpy()
    deltas = out['deltas'][0].double().numpy()
    assert t_mid.min() > 1.0 and t_mid.max() <= 54.0 + 1e-4  # metres, near plane to box exit
    alpha = _released_neus_alpha(t_mid, deltas, 20.0, 1.0 / 54.0, math.exp(10 * 0.3))
    np.testing.assert_allclose(out['alpha'][0].double().numpy(), alpha, atol=2e-5)
    weights = alpha * np.cumprod(np.concatenate([[1.0], 1.0 - alpha[:-1]]))
    np.testing.assert_allclose(out['weights'][0].double().numpy(), weights, atol=2e-5)
    # the released profile spreads over metres: many samples carry weight
    assert (weights > 0.01).sum() >= 5


def _forward_camera(image_hw=(100, 200), focal=50.0, centre=(-2.0, 0.0, 0.0)):
    """lidar2img (1, 1, 4, 4) of a pinhole camera at ``centre`` looking along +x (numpy)."""
    height, width = image_hw
    cam2img = np.array([[focal, 0, width / 2, 0], [0, focal, height / 2, 0], [0, 0, 1, 0],
                        [0, 0, 0, 1]])
    rot = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])  # lidar -> cam axes
    lidar2cam = np.eye(4)
    lidar2cam[:3, :3] = rot
    lidar2cam[:3, 3] = -rot @ np.asarray(centre)
    return torch.tensor(cam2img @ lidar2cam, dtype=torch.float32).view(1, 1, 4, 4)


def test_lidar_rays_are_filtered_on_the_horizontal_range():
    """Released ray sampler: 3 m < hypot(x, y) < 50 m of the LiDAR point, not the ray length."""
    head = MIM4DNeuSRenderHead(in_channels=4, aabb=PAPER_BOX, rays_per_camera=8,
                               min_depth=3.0, max_depth=50.0, horizon_fraction=0.0)
    points = torch.tensor([
        [2.9, 0.0, -1.0],   # horizontal 2.9 m (ray from the camera 5.0 m): out
        [49.0, 0.0, 0.0],   # horizontal 49 m (ray 51 m): in
        [51.0, 0.0, 0.0],   # horizontal 51 m: out
        [10.0, 1.0, 0.0],   # horizontal 10.05 m: in
    ])
    rays = head.sample_rays(points, torch.zeros(4, dtype=torch.long), _forward_camera(),
                            (100, 200), torch.Generator().manual_seed(0))
    lidar = rays.has_depth
    hits = rays.origins[lidar] + rays.depth[lidar, None] * rays.directions[lidar]
    order = hits[:, 0].argsort()
    torch.testing.assert_close(hits[order], points[[3, 1]], atol=1e-4, rtol=0)


@pytest.mark.parametrize('normalize', [True, False])
def test_rendered_depth_is_the_mean_of_the_weight_profile(normalize):
    """Released DepthRenderer: sum(w t) / (sum(w) + 1e-10); False: sum(w t)."""
    torch.manual_seed(1)
    head = MIM4DNeuSRenderHead(in_channels=4, aabb=PAPER_BOX, num_uniform=16,
                               num_importance=8, normalize_depth=normalize)
    directions = torch.nn.functional.normalize(torch.tensor([[1.0, 0.1, 0.0],
                                                             [0.0, 1.0, -0.1]]), dim=-1)
    with torch.no_grad():
        out = head(torch.randn(1, 4, 5, 6, 6), torch.zeros(2, 3), directions,
                   torch.zeros(2, dtype=torch.long))
    weights = out['weights'].double().numpy()
    t_mid = out['t_mid'].double().numpy()  # metres
    assert (weights.sum(-1) < 0.99).all()  # the initial profile is not opaque
    expected = (weights * t_mid).sum(-1)
    if normalize:
        expected = expected / (weights.sum(-1) + 1e-10)
        assert ((expected > t_mid.min(-1)) & (expected < t_mid.max(-1))).all()
    np.testing.assert_allclose(out['depth'].double().numpy(), expected, rtol=1e-5)


def test_sampling_defaults_are_mim4ds_released_values_everywhere():
    """Head and renderer default to 72 + 24 samples, one up-sampling step (METHODS.md), s = 64."""
    import inspect

    from render_pretrain.sdf_rendering import render_neus, upsample_neus
    released = dict(num_uniform=72, num_importance=24, num_upsample_steps=1, base_inv_s=64.0)
    head = MIM4DNeuSRenderHead(in_channels=4)
    assert {key: getattr(head, key) for key in released} == released
    params = inspect.signature(render_neus).parameters
    assert {key: params[key].default for key in released} == released
    params = inspect.signature(upsample_neus).parameters
    assert (params['num_steps'].default, params['base_inv_s'].default) == (1, 64.0)
