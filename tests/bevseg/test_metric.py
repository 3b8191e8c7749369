"""BEVMapSegMetric through mmengine's Evaluator, on hand-made masks."""
import pytest
import torch
from mmengine.evaluator import Evaluator
from mmengine.structures import BaseDataElement

from mmdet3d.registry import METRICS
import projects.BEVSeg.bevseg  # noqa: F401  (registers the metric)


def _sample(pred, gt):
    sample = BaseDataElement()
    sample.pred_map_seg = torch.tensor(pred, dtype=torch.float32)
    sample.gt_map_seg = torch.tensor(gt, dtype=torch.bool)
    return sample


def test_metric_accumulates_counts_over_the_dataset():
    evaluator = Evaluator(METRICS.build(dict(type='BEVMapSegMetric', classes=['road', 'line'],
                                             thresholds=[0.4, 0.6])))
    # sample 1: road TP 2 (one at 0.5: positive at 0.4 only), FP 1 at 0.4; line empty
    s1 = _sample([[[0.9, 0.5], [0.45, 0.1]], [[0.0, 0.0], [0.0, 0.0]]],
                 [[[1, 1], [0, 0]], [[0, 0], [0, 0]]])
    # sample 2: road FN 1; line predicted, no ground truth (FP at both thresholds)
    s2 = _sample([[[0.1, 0.0], [0.0, 0.0]], [[0.7, 0.0], [0.0, 0.0]]],
                 [[[1, 0], [0, 0]], [[0, 0], [0, 0]]])
    evaluator.process([s1], dict())
    evaluator.process([s2], dict())
    metrics = evaluator.evaluate(2)
    # road @0.4: TP 2, FP 1, FN 1 -> 0.5; @0.6: TP 1, FP 0, FN 2 -> 1/3
    assert metrics['bev_seg/road/iou@0.40'] == pytest.approx(0.5)
    assert metrics['bev_seg/road/iou@0.60'] == pytest.approx(1 / 3)
    assert metrics['bev_seg/road/iou@max'] == pytest.approx(0.5)
    assert metrics['bev_seg/line/iou@max'] == 0.0
    assert metrics['bev_seg/mIoU'] == pytest.approx(0.25)
    assert metrics['bev_seg/mIoU_present'] == pytest.approx(0.5)


def test_metric_errors():
    evaluator = Evaluator(METRICS.build(dict(type='BEVMapSegMetric', classes=['a', 'b', 'c'])))
    with pytest.raises(ValueError, match='3 configured'):
        evaluator.process([_sample([[[0.5]]], [[[1]]])], dict())
    sample = BaseDataElement()
    sample.gt_map_seg = torch.zeros(3, 1, 1, dtype=torch.bool)
    with pytest.raises(KeyError, match='pred_map_seg'):
        evaluator.process([sample], dict())
