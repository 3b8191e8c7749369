"""Segmentation metrics: hand-made masks give hand-computed IoUs."""
import doctest

import pytest
import torch

import render_pretrain.segmentation_metrics as module
from render_pretrain.segmentation_metrics import (binary_confusion_counts, iou_from_counts,
                                                  summarize_iou)


def test_counts_and_iou_by_hand(device):
    # class 0: label 4 cells; predicted 5 cells at 0.5, 3 of them right -> TP 3 FP 2 FN 1
    label = torch.zeros(2, 3, 4, dtype=torch.bool, device=device)
    label[0, 0, :4] = True
    probs = torch.zeros(2, 3, 4, device=device)
    probs[0, 0, :3] = 0.9
    probs[0, 1, :2] = 0.55
    # class 1: empty label, two cells at 0.45 -> FP 2 at threshold 0.4, nothing at 0.5
    probs[1, 2, :2] = 0.45
    counts = binary_confusion_counts(probs, label, thresholds=[0.4, 0.5, 0.6])
    assert counts.tolist() == [
        [[3, 2, 1], [3, 2, 1], [3, 0, 1]],
        [[0, 2, 0], [0, 0, 0], [0, 0, 0]],
    ]
    iou = iou_from_counts(counts)
    assert iou[0].tolist() == pytest.approx([3 / 6, 3 / 6, 3 / 4])
    assert iou[1].tolist() == [0.0, 0.0, 0.0]  # empty union -> 0, not NaN
    assert torch.isfinite(iou).all()


def test_iou_is_accumulated_over_samples_not_averaged(device):
    # sample A: TP 1 of 1; sample B: TP 0, FN 3. Dataset IoU 1/4, mean of IoUs would be 1/2.
    labels = torch.zeros(2, 1, 2, 2, dtype=torch.bool, device=device)
    labels[0, 0, 0, 0] = True
    labels[1, 0, 1, :] = True
    labels[1, 0, 0, 1] = True
    probs = labels.float() * 0
    probs[0, 0, 0, 0] = 1.0
    counts = binary_confusion_counts(probs[0], labels[0], [0.5]) + \
        binary_confusion_counts(probs[1], labels[1], [0.5])
    assert torch.equal(counts, binary_confusion_counts(probs, labels, [0.5]))
    assert iou_from_counts(counts).item() == pytest.approx(0.25)


def test_summary_best_threshold_and_empty_classes(device):
    counts = torch.tensor([
        [[3, 2, 1], [3, 0, 1]],   # best at 0.60: 3/4
        [[0, 2, 0], [0, 0, 0]],   # no ground truth: 0 at both
        [[0, 0, 5], [0, 0, 5]],   # missed entirely: 0
    ], device=device)
    metrics = summarize_iou(counts, ['a', 'b', 'c'], thresholds=[0.4, 0.6])
    assert metrics['a/iou@max'] == pytest.approx(0.75)
    assert metrics['a/iou@0.40'] == pytest.approx(0.5) and metrics['a/iou@0.60'] == 0.75
    assert metrics['b/iou@max'] == 0.0 and metrics['c/iou@max'] == 0.0
    assert metrics['mIoU'] == pytest.approx(0.75 / 3)
    assert metrics['mIoU_present'] == pytest.approx(0.75 / 2)  # a and c have labels
    nothing = summarize_iou(torch.zeros(2, 1, 3, dtype=torch.long, device=device), ['a', 'b'],
                            [0.5])
    assert nothing['mIoU'] == 0.0 and nothing['mIoU_present'] == 0.0
    with pytest.raises(ValueError, match='does not match'):
        summarize_iou(counts, ['a', 'b'], thresholds=[0.4, 0.6])


def test_perfect_prediction_and_shape_errors(device):
    gen = torch.Generator().manual_seed(0)
    labels = (torch.rand(2, 6, 8, 8, generator=gen) < 0.3).to(device)
    names = [str(i) for i in range(6)]
    metrics = summarize_iou(binary_confusion_counts(labels.float(), labels), names)
    assert metrics['mIoU'] == pytest.approx(1.0)
    with pytest.raises(ValueError, match='same shape'):
        binary_confusion_counts(torch.zeros(6, 8, 8, device=device),
                                torch.zeros(6, 8, 7, dtype=torch.bool, device=device))


def test_docstring_examples():
    assert doctest.testmod(module, extraglobs={'torch': torch}).failed == 0
