"""Undo the data preprocessor's image normalisation (colour targets in [0, 1]).

The renderers of NS-MAE and MIM4D predict colours in [0, 1], while the
network sees images normalised by the data preprocessor
(``(img - mean) / std`` on 0..255 pixel values, mmengine's
``ImgDataPreprocessor``). :func:`images_to_unit_range` maps such a batch
back: ``clamp((img * std + mean) / 255, 0, 1)``.
"""
from typing import Optional

from torch import Tensor

__all__ = ['images_to_unit_range', 'preprocessor_normalization']


def images_to_unit_range(imgs: Tensor, mean: Optional[Tensor] = None,
                         std: Optional[Tensor] = None) -> Tensor:
    """Map normalised images to colours in [0, 1].

    Example:
        >>> import torch
        >>> mean, std = torch.tensor([100.0] * 3), torch.tensor([50.0] * 3)
        >>> images_to_unit_range(torch.full((3, 1, 1), 1.0), mean, std).flatten().tolist()
        [0.5882353186607361, 0.5882353186607361, 0.5882353186607361]

    Args:
        imgs (Tensor): (..., 3, H, W) images; normalised when ``mean`` and
            ``std`` are given, else raw 0..255 values.
        mean (Tensor, optional): (3,) or (3, 1, 1) per-channel mean, 0..255.
        std (Tensor, optional): (3,) or (3, 1, 1) per-channel std, 0..255.

    Returns:
        Tensor: (..., 3, H, W) colours in [0, 1].
    """
    if (mean is None) != (std is None):
        raise ValueError('images_to_unit_range needs both mean and std, or neither')
    if mean is not None:
        imgs = imgs * std.view(3, 1, 1) + mean.view(3, 1, 1)
    return (imgs / 255.0).clamp(0.0, 1.0)


def preprocessor_normalization(data_preprocessor):
    """``(mean, std)`` of an mmengine ``ImgDataPreprocessor`` (None, None if it does not normalise).

    Args:
        data_preprocessor: Any object with mmengine's ``_enable_normalize``,
            ``mean`` and ``std`` (duck-typed: the core imports no mm*).

    Returns:
        tuple: ``(mean, std)`` (3, 1, 1) tensors, or ``(None, None)``.
    """
    if getattr(data_preprocessor, '_enable_normalize', False):
        return data_preprocessor.mean, data_preprocessor.std
    return None, None
