"""PSNR and masked absolute error against hand-computed values."""
import math

import pytest
import torch

from render_pretrain.render_metrics import masked_abs_error_sum, psnr_from_mse


def test_psnr_closed_form():
    assert psnr_from_mse(0.01) == pytest.approx(20.0)
    assert psnr_from_mse(1e-4) == pytest.approx(40.0)
    assert psnr_from_mse(4.0, peak=2.0) == pytest.approx(0.0)
    assert psnr_from_mse(0.0) == math.inf
    with pytest.raises(ValueError, match='mse'):
        psnr_from_mse(float('nan'))


def test_masked_abs_error_counts_valid_only(device):
    pred = torch.tensor([[5.0, 11.0], [17.0, 100.0]], device=device)
    target = torch.tensor([[0.0, 10.0], [20.0, 0.0]], device=device)
    total, count = masked_abs_error_sum(pred, target, target > 0)
    assert (total, count) == (4.0, 2)  # |11 - 10| + |17 - 20|
    none = torch.zeros_like(target, dtype=torch.bool)
    assert masked_abs_error_sum(pred, target, none) == (0.0, 0)
    with pytest.raises(ValueError, match='shapes differ'):
        masked_abs_error_sum(pred, target[:1], target[:1] > 0)
