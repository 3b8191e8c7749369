"""RenderQualityMetric on hand-made render outputs (values computed by hand)."""
import math

import pytest
import torch

from projects.common.render_quality_metric import RenderQualityMetric


def _sample(rgb_err: float, depth_pred, depth_target):
    target = torch.full((2, 3, 4, 5), 0.5)
    depth_target = torch.tensor(depth_target).view(1, 1, 3).expand(2, 4, 3).clone()
    depth_pred = torch.tensor(depth_pred).view(1, 1, 3).expand(2, 4, 3).clone()
    return dict(render_outputs=dict(rgb=target + rgb_err, rgb_target=target,
                                    depth=depth_pred, depth_target=depth_target))


def test_psnr_and_depth_error_by_hand():
    metric = RenderQualityMetric()
    # sample 1: colours off by 0.1 -> MSE 0.01 -> 20 dB; depth errors 1 m and 3 m
    # sample 2: colours off by 0.01 -> 40 dB; depth errors 0 m and 0 m (one pixel without LiDAR)
    metric.process({}, [_sample(0.1, [5.0, 11.0, 17.0], [0.0, 10.0, 20.0]),
                        _sample(0.01, [7.0, 8.0, 9.0], [7.0, 8.0, 0.0])])
    out = metric.evaluate(size=2)
    assert out['render/psnr'] == pytest.approx(30.0)  # mean of 20 and 40 dB
    # pooled over every LiDAR pixel: 8 pixels of each kind per sample
    assert out['render/depth_abs_err'] == pytest.approx((8 * 1 + 8 * 3 + 16 * 0) / 32)
    assert 'render/bev_height_abs_err' not in out


def test_bev_error_and_missing_outputs():
    metric = RenderQualityMetric()
    valid = torch.tensor([[True, False], [True, True]])
    metric.process({}, [dict(render_outputs=dict(
        bev_height=torch.tensor([[1.0, 9.0], [0.5, -1.0]]),
        bev_target=torch.tensor([[1.2, 0.0], [0.5, -2.0]]), bev_valid=valid))])
    out = metric.evaluate(size=1)
    assert out == {'render/bev_height_abs_err': pytest.approx((0.2 + 0.0 + 1.0) / 3)}
    metric = RenderQualityMetric()
    with pytest.raises(KeyError, match='render_outputs'):
        metric.process({}, [dict(pred_instances_3d={})])


def test_perfect_render_is_infinite_psnr():
    metric = RenderQualityMetric()
    metric.process({}, [_sample(0.0, [1.0, 2.0, 3.0], [1.0, 2.0, 3.0])])
    out = metric.evaluate(size=1)
    assert math.isinf(out['render/psnr']) and out['render/depth_abs_err'] == 0.0
