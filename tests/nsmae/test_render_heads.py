"""NS-MAE perspective render head: one Conv2d(C, 4, 1) shared by all depth bins."""
import numpy as np
import torch

from mmdet3d.registry import MODELS
from .conftest import load_config

PAPER_CL = 'nsmae_swint-lss_second_8xb2-cyclic-50e_nus-pretrain.py'


def _head(channels=6, dbound=(1.0, 6.0, 1.0)):
    torch.manual_seed(0)
    return MODELS.build(dict(type='NSMAEPerspectiveRenderHead', in_channels=channels,
                             dbound=list(dbound)))


def test_paper_head_is_one_shared_per_bin_conv():
    cfg = load_config(PAPER_CL)
    channels = cfg.model.view_transform.out_channels
    assert channels == 80  # BEVFusion's DepthLSSTransform context channels
    assert cfg.model.pv_render_head.in_channels == channels
    head = MODELS.build(cfg.model.pv_render_head)
    assert head.num_bins == 118
    assert tuple(head.render_conv.weight.shape) == (4, 80, 1, 1)
    assert sum(p.numel() for p in head.parameters()) == 4 * 80 + 4  # 324


def test_bins_and_pixels_are_local():
    """Perturbing one bin's feature changes that bin's density/colour only."""
    head = _head()
    gen = torch.Generator().manual_seed(1)
    feats = 0.1 * torch.randn(1, 2, 5, 3, 4, 6, generator=gen)
    with torch.no_grad():
        head.render_conv.bias[0] = 0.2  # positive densities: no bin hidden by the ReLU
    with torch.no_grad():
        density, color = head.decode_bins(feats)
        out = head(feats)
        bumped = feats.clone()
        # cam 1, bin 2, pixel (1, 3): along the density weights, so that the
        # bin's density rises (a visible change of the rendered ray)
        direction = head.render_conv.weight[0, :, 0, 0] + head.render_conv.weight[1, :, 0, 0]
        bumped[0, 1, 2, 1, 3] += 5.0 * direction / direction.norm()
        density2, color2 = head.decode_bins(bumped)
        out2 = head(bumped)
    assert density.shape == (2, 5, 3, 4) and color.shape == (2, 5, 3, 3, 4)
    changed_density = (density2 != density).nonzero().tolist()
    assert changed_density == [[1, 2, 1, 3]]
    changed_color = (color2 != color).any(2).nonzero().tolist()
    assert changed_color == [[1, 2, 1, 3]]
    # the rendered ray of that pixel changes, no other ray does
    assert (out2['depth'] != out['depth']).nonzero().tolist() == [[0, 1, 1, 3]]
    assert (out2['rgb'] != out['rgb']).any(2).nonzero().tolist() == [[0, 1, 1, 3]]


def test_channel_order_and_rendering_against_numpy():
    """Channel 0 = density, 1..3 = colour of the same bin; NeRF compositing."""
    head = _head(channels=3, dbound=(1.0, 4.0, 1.0))  # bins at 1, 2, 3 m
    gen = torch.Generator().manual_seed(2)
    feats = torch.randn(1, 1, 3, 2, 2, 3, generator=gen)
    with torch.no_grad():
        out = head(feats)
        density, color = head.decode_bins(feats)
    w = head.render_conv.weight.detach().double().numpy()[:, :, 0, 0]  # (4, C)
    b = head.render_conv.bias.detach().double().numpy()
    f = feats[0, 0].double().numpy()  # (D, h, w, C)
    raw = f @ w.T + b  # (D, h, w, 4)
    sigma, rgb = raw[..., 0], 1 / (1 + np.exp(-raw[..., 1:]))
    np.testing.assert_allclose(density[0].numpy(), sigma, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(color[0].permute(0, 2, 3, 1).numpy(), rgb, rtol=1e-5,
                               atol=1e-6)
    delta = np.array([1.0, 1.0, 1e10])[:, None, None]
    alpha = 1 - np.exp(-np.maximum(sigma, 0) * delta)
    trans = np.cumprod(np.concatenate([np.ones((1, 2, 2)), 1 - alpha[:-1]]), axis=0)
    weight = trans * alpha
    depths = np.array([1.0, 2.0, 3.0])[:, None, None]
    np.testing.assert_allclose(out['depth'][0, 0].numpy(), (weight * depths).sum(0),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out['rgb'][0, 0].permute(1, 2, 0).numpy(),
                               (weight[..., None] * rgb).sum(0), rtol=1e-5, atol=1e-6)
