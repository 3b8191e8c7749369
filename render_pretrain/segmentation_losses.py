"""Per-class binary losses of multi-label BEV segmentation.

BEVFusion's map head (mit-han-lab/bevfusion,
``mmdet3d/models/heads/segm/vanilla.py``) trains every map class as an
independent binary mask with either ``sigmoid_xent_loss`` (binary cross
entropy on logits) or ``sigmoid_focal_loss`` (gamma 2; its alpha argument
defaults to -1, i.e. no alpha balancing, and the head never sets it), each
averaged over the batch and the cells, one loss per class; the trainer sums
them.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ['sigmoid_focal_loss', 'per_class_binary_loss']


def sigmoid_focal_loss(logits: Tensor, targets: Tensor, gamma: float = 2.0,
                       alpha: Optional[float] = None) -> Tensor:
    """Element-wise sigmoid focal loss (Lin et al. 2017), no reduction.

    ``FL = -alpha_t (1 - p_t)^gamma log(p_t)`` with ``p = sigmoid(logit)``,
    ``p_t = p`` for positives and ``1 - p`` for negatives, ``alpha_t =
    alpha`` / ``1 - alpha`` (omitted when ``alpha`` is None). ``gamma = 0``
    and no alpha give binary cross entropy. Differentiable in ``logits``.

    Example:
        >>> round(sigmoid_focal_loss(torch.tensor([0.]), torch.tensor([1.])).item(), 4)
        0.1733

    Args:
        logits (Tensor): Any shape, logits.
        targets (Tensor): Same shape, 0/1 (float or bool).
        gamma (float): Focusing exponent (>= 0).
        alpha (float, optional): Positive-class weight in [0, 1].

    Returns:
        Tensor: Same shape as ``logits``, float32 or wider.
    """
    logits = logits.float()
    targets = targets.to(logits.dtype)
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction='none')
    prob = torch.sigmoid(logits)
    p_t = prob * targets + (1 - prob) * (1 - targets)
    loss = bce * (1 - p_t).pow(gamma)
    if alpha is not None:
        loss = loss * (alpha * targets + (1 - alpha) * (1 - targets))
    return loss


def per_class_binary_loss(logits: Tensor, targets: Tensor, kind: str = 'focal',
                          gamma: float = 2.0, alpha: Optional[float] = None) -> Tensor:
    """Mean binary loss of every class of [B, C, X, Y] masks.

    Args:
        logits (Tensor): [B, C, X, Y] logits.
        targets (Tensor): [B, C, X, Y] bool / 0-1 masks.
        kind (str): ``'focal'`` (:func:`sigmoid_focal_loss`) or ``'xent'``
            (binary cross entropy), BEVFusion's names.
        gamma (float): Focal exponent.
        alpha (float, optional): Focal positive weight (None: unweighted).

    Returns:
        Tensor: (C,) loss per class, each averaged over batch and cells.
    """
    if logits.shape != targets.shape or logits.dim() != 4:
        raise ValueError(f'logits {tuple(logits.shape)} and targets {tuple(targets.shape)} '
                         'must both be [B, C, X, Y]')
    if kind == 'focal':
        loss = sigmoid_focal_loss(logits, targets, gamma, alpha)
    elif kind == 'xent':
        loss = F.binary_cross_entropy_with_logits(
            logits.float(), targets.float(), reduction='none')
    else:
        raise ValueError(f"loss kind must be 'focal' or 'xent', got {kind!r}")
    return loss.transpose(0, 1).flatten(1).mean(dim=1)
