"""BEVDetFPNLSS against an independent forward in official FPN_LSS's concat order."""
import torch
import torch.nn.functional as F

import projects.BEVDetCompat.bevdet_compat  # noqa: F401  (registers the modules)
from projects.BEVDetCompat.bevdet_compat import BEVDetFPNLSS


def _bn(x, sd, prefix):
    return F.batch_norm(x, sd[f'{prefix}.running_mean'], sd[f'{prefix}.running_var'],
                        sd[f'{prefix}.weight'], sd[f'{prefix}.bias'], training=False,
                        eps=1e-5)


def official_order_forward(sd, shallow, deep, scale_factor, extra_upsample):
    """HuangJunJie2017/BEVDet FPN_LSS.forward in plain torch ops (eval-mode BN).

    ``x2, x1 = feats[0], feats[2]; x1 = up(x1); x = conv(cat([x2, x1]))``: the
    shallow stage comes first in the channel order.
    """
    up = F.interpolate(deep, scale_factor=scale_factor, mode='bilinear', align_corners=True)
    x = torch.cat([shallow, up], dim=1)
    x = F.relu(_bn(F.conv2d(x, sd['conv.0.weight'], padding=1), sd, 'conv.1'))
    x = F.relu(_bn(F.conv2d(x, sd['conv.3.weight'], padding=1), sd, 'conv.4'))
    if extra_upsample:
        x = F.interpolate(x, scale_factor=extra_upsample, mode='bilinear', align_corners=True)
        x = F.relu(_bn(F.conv2d(x, sd['up2.1.weight'], padding=1), sd, 'up2.2'))
        x = F.conv2d(x, sd['up2.4.weight'], sd['up2.4.bias'])
    return x


def _random_state(neck, gen):
    sd = {}
    for k, v in neck.state_dict().items():
        if k.endswith('running_var'):
            sd[k] = torch.rand(v.shape, generator=gen) + 0.5
        elif k.endswith('num_batches_tracked'):
            sd[k] = v
        else:
            sd[k] = torch.randn(v.shape, generator=gen) * 0.2
    return sd


def test_neck_concatenates_shallow_then_deep_as_official():
    gen = torch.Generator().manual_seed(0)
    # shallow: 6 channels at 16x16 (stride 2 stage), deep: 10 channels at 4x4 (stride 8)
    neck = BEVDetFPNLSS(in_channels=16, out_channels=8, scale_factor=4,
                        input_feature_index=(0, 2), extra_upsample=2)
    sd = _random_state(neck, gen)
    neck.load_state_dict(sd, strict=True)
    neck.eval()
    shallow = torch.randn(2, 6, 16, 16, generator=gen)
    middle = torch.randn(2, 7, 8, 8, generator=gen)  # stage 1 is not read
    deep = torch.randn(2, 10, 4, 4, generator=gen)
    with torch.no_grad():
        out = neck([shallow, middle, deep])
    ref = official_order_forward(sd, shallow, deep, 4, 2)
    assert out.shape == (2, 8, 32, 32)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    # the deep-first order is a different function of the same weights (the test can fail)
    with torch.no_grad():
        x = torch.cat([F.interpolate(deep, scale_factor=4, mode='bilinear',
                                     align_corners=True), shallow], dim=1)
        x = F.relu(_bn(F.conv2d(x, sd['conv.0.weight'], padding=1), sd, 'conv.1'))
    with torch.no_grad():
        y = neck.conv[:3](torch.cat([shallow, neck.up(deep)], dim=1))
    assert (x - y).abs().max() > 1e-2


def test_neck_without_extra_upsample_matches_official_order():
    gen = torch.Generator().manual_seed(1)
    neck = BEVDetFPNLSS(in_channels=12, out_channels=5, scale_factor=2,
                        input_feature_index=(0, 1), extra_upsample=None)
    sd = _random_state(neck, gen)
    neck.load_state_dict(sd, strict=True)
    neck.eval()
    shallow, deep = torch.randn(1, 4, 8, 8, generator=gen), torch.randn(1, 8, 4, 4, generator=gen)
    with torch.no_grad():
        out = neck([shallow, deep])
    torch.testing.assert_close(out, official_order_forward(sd, shallow, deep, 2, None),
                               atol=1e-5, rtol=1e-5)
