"""Multi-label BEV segmentation metrics: IoU per class at several thresholds.

The evaluation of BEVFusion's map segmentation (mit-han-lab/bevfusion,
``mmdet3d/datasets/nuscenes_dataset.py``, ``evaluate_map``): every class is
an independent binary mask; a cell is predicted positive when its
probability is ``>= threshold``; true positives, false positives and false
negatives are **summed over the whole dataset** per (class, threshold) and

    IoU[c, t] = TP[c, t] / (TP[c, t] + FP[c, t] + FN[c, t])

(not a mean of per-sample IoUs). Each class reports its best threshold
(``max_t IoU[c, t]``) and ``mIoU`` is the mean of these maxima over all
classes. Default thresholds: 0.35, 0.40, ..., 0.65.

Zero-safe: a (class, threshold) with an empty union (no label, no
prediction) has IoU 0 (BEVFusion adds 1e-7 to the denominator, which gives
the same 0), never NaN. Because such a class drags ``mIoU`` down although
nothing was wrong, :func:`summarize_iou` also reports ``mIoU_present``, the
mean over the classes that have ground-truth cells.
"""
from typing import Dict, Sequence

import torch
from torch import Tensor

__all__ = ['DEFAULT_THRESHOLDS', 'binary_confusion_counts', 'iou_from_counts', 'summarize_iou']

DEFAULT_THRESHOLDS = (0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65)


def binary_confusion_counts(probs: Tensor, labels: Tensor,
                            thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> Tensor:
    """TP / FP / FN cell counts per class and threshold.

    Example:
        >>> probs = torch.tensor([[[0.9, 0.4], [0.2, 0.6]]])   # [C=1, 2, 2]
        >>> labels = torch.tensor([[[True, True], [False, False]]])
        >>> binary_confusion_counts(probs, labels, [0.5]).tolist()
        [[[1, 1, 1]]]

    Args:
        probs (Tensor): [B, C, X, Y] or [C, X, Y] probabilities in [0, 1].
        labels (Tensor): Same shape, bool (or 0/1) ground truth.
        thresholds (Sequence[float]): T thresholds; positive = ``prob >= t``.

    Returns:
        Tensor: [C, T, 3] int64 counts (TP, FP, FN), summed over the batch
        and the cells.
    """
    if probs.shape != labels.shape:
        raise ValueError(f'probs {tuple(probs.shape)} and labels {tuple(labels.shape)} '
                         'must have the same shape')
    if probs.dim() not in (3, 4):
        raise ValueError(f'expected [C, X, Y] or [B, C, X, Y], got {tuple(probs.shape)}')
    if probs.dim() == 3:
        probs, labels = probs.unsqueeze(0), labels.unsqueeze(0)
    num_classes = probs.shape[1]
    flat_probs = probs.detach().transpose(0, 1).reshape(num_classes, -1)  # (C, N)
    flat_labels = labels.detach().bool().transpose(0, 1).reshape(num_classes, -1)
    thr = torch.as_tensor(thresholds, dtype=flat_probs.dtype, device=flat_probs.device)
    positive = flat_probs.unsqueeze(-1) >= thr  # (C, N, T)
    truth = flat_labels.unsqueeze(-1)
    tp = (positive & truth).sum(dim=1)
    fp = (positive & ~truth).sum(dim=1)
    fn = (~positive & truth).sum(dim=1)
    return torch.stack([tp, fp, fn], dim=-1).long()


def iou_from_counts(counts: Tensor) -> Tensor:
    """IoU = TP / (TP + FP + FN) from accumulated counts, 0 for an empty union.

    Example:
        >>> iou_from_counts(torch.tensor([[[3, 1, 0]], [[0, 0, 0]]])).tolist()
        [[0.75], [0.0]]

    Args:
        counts (Tensor): [..., 3] (TP, FP, FN) counts, e.g. [C, T, 3].

    Returns:
        Tensor: [...] float64 IoU in [0, 1], finite everywhere.
    """
    if counts.shape[-1] != 3:
        raise ValueError(f'counts must end with (TP, FP, FN), got {tuple(counts.shape)}')
    counts = counts.to(torch.float64)
    tp = counts[..., 0]
    union = counts.sum(dim=-1)
    return torch.where(union > 0, tp / union.clamp(min=1.0), torch.zeros_like(tp))


def summarize_iou(counts: Tensor, class_names: Sequence[str],
                  thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> Dict[str, float]:
    """Metric dict of accumulated counts (BEVFusion's keys, flattened).

    Args:
        counts (Tensor): [C, T, 3] (TP, FP, FN) summed over the dataset.
        class_names (Sequence[str]): C class names.
        thresholds (Sequence[float]): The T thresholds of ``counts``.

    Returns:
        dict[str, float]: ``{name}/iou@max`` (best threshold), ``{name}/iou@{t:.2f}``
        for every threshold, ``mIoU`` (mean over all classes of the best
        IoU, BEVFusion's ``map/mean/iou@max``) and ``mIoU_present`` (mean
        over classes with at least one ground-truth cell; 0 if none).
    """
    if counts.dim() != 3 or counts.shape[:2] != (len(class_names), len(thresholds)):
        raise ValueError(f'counts {tuple(counts.shape)} does not match {len(class_names)} '
                         f'classes x {len(thresholds)} thresholds (x 3)')
    iou = iou_from_counts(counts)  # (C, T)
    best = iou.max(dim=1).values
    present = (counts[:, 0, 0] + counts[:, 0, 2]) > 0  # TP + FN: label cells
    metrics: Dict[str, float] = {}
    for index, name in enumerate(class_names):
        metrics[f'{name}/iou@max'] = float(best[index])
        for t_index, threshold in enumerate(thresholds):
            metrics[f'{name}/iou@{threshold:.2f}'] = float(iou[index, t_index])
    metrics['mIoU'] = float(best.mean())
    metrics['mIoU_present'] = float(best[present].mean()) if bool(present.any()) else 0.0
    return metrics
