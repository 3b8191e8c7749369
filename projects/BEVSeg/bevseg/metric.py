"""BEV map-segmentation metric (BEVFusion's IoU at several thresholds)."""
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from mmdet3d.registry import METRICS
from render_pretrain.nuscenes_infos.map_labels import BEV_MAP_CLASSES
from render_pretrain.segmentation_metrics import (DEFAULT_THRESHOLDS, binary_confusion_counts,
                                                  summarize_iou)


@METRICS.register_module()
class BEVMapSegMetric(BaseMetric):
    """Per-class IoU of BEV map masks, best threshold per class, and mIoU.

    Reads ``pred_map_seg`` ([C, X, Y] probabilities, ``BEVFusionSeg``) and
    ``gt_map_seg`` ([C, X, Y] bool, ``PackBEVSegInputs``) of every data
    sample, keeps only the (TP, FP, FN) counts per class and threshold
    (:func:`render_pretrain.segmentation_metrics.binary_confusion_counts`)
    and sums them over the dataset (and the ranks) before computing IoU, as
    BEVFusion's ``evaluate_map``. Reports, under the prefix
    ``bev_seg``: ``{class}/iou@max``, ``{class}/iou@{t}``, ``mIoU`` (mean of
    the per-class maxima over all classes, BEVFusion's number) and
    ``mIoU_present`` (classes with ground truth only).

    Args:
        classes (Sequence[str]): Class names in label order.
        thresholds (Sequence[float]): Probability thresholds.
        collect_device (str): Device for collecting results across ranks.
        prefix (str, optional): Metric name prefix (default ``bev_seg``).
    """

    default_prefix = 'bev_seg'

    def __init__(self, classes: Sequence[str] = BEV_MAP_CLASSES,
                 thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
                 collect_device: str = 'cpu', prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.classes = tuple(classes)
        self.thresholds = tuple(float(t) for t in thresholds)

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Accumulate the confusion counts of a batch of samples."""
        for sample in data_samples:
            for key in ('pred_map_seg', 'gt_map_seg'):
                if key not in sample:
                    raise KeyError(f'BEVMapSegMetric: data sample has no {key!r} (predictions '
                                   'come from BEVFusionSeg.predict, labels from '
                                   'LoadBEVMapLabel + PackBEVSegInputs)')
            pred, gt = sample['pred_map_seg'], sample['gt_map_seg']
            if pred.shape[0] != len(self.classes):
                raise ValueError(f'BEVMapSegMetric: {pred.shape[0]} predicted classes, '
                                 f'{len(self.classes)} configured ({self.classes})')
            self.results.append(
                binary_confusion_counts(pred.cpu(), gt.cpu(), self.thresholds))

    def compute_metrics(self, results: List[torch.Tensor]) -> Dict[str, float]:
        """IoU per class and threshold from the summed counts."""
        counts = torch.stack(results).sum(dim=0)
        metrics = summarize_iou(counts, self.classes, self.thresholds)
        MMLogger.get_current_instance().info(
            'BEV map segmentation IoU@max: ' + ', '.join(
                f'{name} {metrics[f"{name}/iou@max"]:.4f}' for name in self.classes) +
            f' | mIoU {metrics["mIoU"]:.4f}')
        return metrics
