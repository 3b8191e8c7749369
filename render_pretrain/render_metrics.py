"""Quality of rendered images and depth maps against their targets.

Pure functions of tensors, used by the held-out render-quality metric of the
pre-training models (``projects/common/render_quality_metric.py``).
"""
import math
from typing import Tuple

import torch
from torch import Tensor


def psnr_from_mse(mse: float, peak: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB.

    ``PSNR = 10 * log10(peak**2 / mse)``; e.g. colours in [0, 1] off by 0.1
    everywhere give ``mse = 0.01`` and 20 dB. A perfect image (``mse = 0``)
    gives ``inf``.

    Args:
        mse (float): Mean squared error, in the squared unit of ``peak``.
        peak (float): Largest possible value (1.0 for colours in [0, 1]).

    Returns:
        float: PSNR in dB.
    """
    if mse < 0 or not math.isfinite(mse):
        raise ValueError(f'mse must be finite and >= 0, got {mse}')
    return math.inf if mse == 0 else 10.0 * math.log10(peak * peak / mse)


def masked_abs_error_sum(pred: Tensor, target: Tensor, valid: Tensor) -> Tuple[float, int]:
    """Sum of ``|pred - target|`` over the valid entries, and their count.

    Sums and counts (rather than means) let a metric pool the error over
    every valid pixel of a data set.

    Args:
        pred (Tensor): Predicted values (any shape; e.g. depth in metres).
        target (Tensor): Targets, same shape and unit.
        valid (Tensor): Bool, same shape: entries that have a target.

    Returns:
        tuple[float, int]: The summed absolute error (the unit of ``pred``)
        and the number of valid entries.
    """
    if pred.shape != target.shape or valid.shape != target.shape:
        raise ValueError(f'shapes differ: pred {tuple(pred.shape)}, target '
                         f'{tuple(target.shape)}, valid {tuple(valid.shape)}')
    valid = valid.bool()
    error = (pred.double() - target.double()).abs()
    return float(torch.where(valid, error, torch.zeros_like(error)).sum()), int(valid.sum())
