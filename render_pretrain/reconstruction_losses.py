"""Masked reconstruction losses (L1, MSE) that stay finite on empty masks.

``loss = sum(v * w * err) / sum(v * w)`` over the valid elements ``v``
(mask broadcast to the prediction's shape), i.e. the (weighted) mean over
valid elements. With no valid element the loss is an exact 0 that is still
connected to the graph of ``pred`` (finite zero gradients, never NaN).
Invalid elements of ``target`` may hold anything (0, NaN, inf): they are
replaced before the difference is taken, so they never reach a gradient.
"""
from typing import Optional

import torch
from torch import Tensor

__all__ = ['masked_l1', 'masked_mse']


def _masked_mean(pred: Tensor, target: Tensor, mask: Optional[Tensor],
                 weight: Optional[Tensor], kind: str) -> Tensor:
    if target.shape != pred.shape:
        raise ValueError(f'target shape {tuple(target.shape)} must equal pred shape '
                         f'{tuple(pred.shape)}')
    valid = torch.ones_like(pred, dtype=torch.bool) if mask is None else mask.bool().expand_as(pred)
    safe_target = torch.where(valid, target.to(pred.dtype), pred.detach())
    diff = pred - safe_target
    err = diff.abs() if kind == 'l1' else diff * diff
    w = valid.to(pred.dtype)
    if weight is not None:
        w = w * weight.to(pred.dtype).expand_as(pred)
    total = (err * w).sum()
    denom = w.sum()
    return total / torch.where(denom > 0, denom, torch.ones_like(denom))


def masked_l1(pred: Tensor, target: Tensor, mask: Optional[Tensor] = None,
              weight: Optional[Tensor] = None) -> Tensor:
    """Mean absolute error over the valid elements.

    Example:
        >>> p, t = torch.tensor([1., 2., 3.]), torch.tensor([0., 0., 7.])
        >>> masked_l1(p, t, torch.tensor([True, False, True])).item()
        2.5

    Args:
        pred: (...) prediction (e.g. rendered depth (B, N, h, w), metres).
        target: (...) target, same shape.
        mask: Optional bool, broadcastable to ``pred``; True = valid (e.g.
            LiDAR depth exists).
        weight: Optional non-negative per-element weights broadcastable to
            ``pred``; the result is then the weighted mean.

    Returns:
        Tensor: scalar loss (0 when nothing is valid).
    """
    return _masked_mean(pred, target, mask, weight, 'l1')


def masked_mse(pred: Tensor, target: Tensor, mask: Optional[Tensor] = None,
               weight: Optional[Tensor] = None) -> Tensor:
    """Mean squared error over the valid elements.

    Example:
        >>> p, t = torch.tensor([1., 2., 3.]), torch.tensor([0., 0., 7.])
        >>> masked_mse(p, t, torch.tensor([True, False, True])).item()
        8.5

    Args:
        pred: (...) prediction (e.g. rendered colour (B, N, 3, h, w)).
        target: (...) target, same shape.
        mask: Optional bool, broadcastable to ``pred``; True = valid.
        weight: Optional non-negative per-element weights broadcastable to
            ``pred``; the result is then the weighted mean.

    Returns:
        Tensor: scalar loss (0 when nothing is valid).
    """
    return _masked_mean(pred, target, mask, weight, 'mse')
