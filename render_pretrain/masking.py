"""Mask generators and mask-token application for masked auto-encoding.

* :func:`generate_patch_mask`: SimMIM-style random patch masks with an EXACT
  number of masked patches per image (NS-MAE: 8x8-pixel patches, 50 %;
  MIM4D: 32x32-pixel cells, ~30 %).
* :func:`apply_mask_token`: replace masked patches by a learnable token.
* :func:`upsample_patch_mask`: patch mask -> pixel mask.
* :func:`random_subset_mask`: exact-count random subset (e.g. LiDAR voxels
  to drop).

Randomness comes only from the ``generator`` argument (a ``torch.Generator``;
None uses torch's global RNG). ``True`` in a mask means MASKED (hidden from
the network) / SELECTED.
"""
import math
from typing import Optional, Sequence

import torch
from torch import Tensor

__all__ = [
    'num_masked', 'generate_patch_mask', 'upsample_patch_mask', 'apply_mask_token',
    'random_subset_mask'
]


def num_masked(num: int, ratio: float) -> int:
    """Number of masked items: ``floor(ratio * num + 0.5)`` (round half up).

    Args:
        num: Number of items.
        ratio: Masking ratio in [0, 1].

    Returns:
        int: in ``[0, num]``.
    """
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f'mask ratio must be in [0, 1], got {ratio}')
    return min(num, int(math.floor(ratio * num + 0.5)))


def _sampling_device(generator: Optional[torch.Generator],
                     device: Optional[torch.device]) -> torch.device:
    """Random numbers are drawn on the generator's device (then moved)."""
    if generator is not None:
        return generator.device
    return torch.device(device) if device is not None else torch.device('cpu')


def _target_device(generator: Optional[torch.Generator],
                   device: Optional[torch.device]) -> torch.device:
    if device is not None:
        return torch.device(device)
    return _sampling_device(generator, None)


def _exact_count_rows(rows: int, num: int, count: int, generator: Optional[torch.Generator],
                      device: torch.device) -> Tensor:
    """(rows, num) bool with exactly ``count`` True per row, uniformly at random."""
    scores = torch.rand(rows, num, generator=generator, device=device)
    ranks = scores.argsort(dim=1).argsort(dim=1)
    return ranks < count


def generate_patch_mask(num_images: int,
                        image_size: Sequence[int],
                        patch_size: int,
                        mask_ratio: float,
                        generator: Optional[torch.Generator] = None,
                        shared_across: Optional[int] = None,
                        device: Optional[torch.device] = None) -> Tensor:
    """Random patch mask with exactly ``num_masked(h * w, mask_ratio)`` masked patches.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> m = generate_patch_mask(12, (256, 704), 8, 0.5, g)
        >>> m.shape, m.flatten(1).sum(1).unique().tolist()
        (torch.Size([12, 32, 88]), [1408])

    Args:
        num_images: M, the number of images (e.g. B * N_cam flattened).
        image_size: ``(H, W)`` in pixels, divisible by ``patch_size``.
        patch_size: Patch side p in pixels.
        mask_ratio: Fraction of masked patches in [0, 1].
        generator: Random generator (None: torch's global RNG).
        shared_across: None for an independent mask per image, or a group
            size G dividing M: images ``[k * G, (k + 1) * G)`` share one mask
            (e.g. G = N_cam with images ordered (B, N_cam) shares a mask over
            the cameras of a sample).
        device: Device of the mask (default: the generator's).

    Returns:
        Tensor: (M, H // p, W // p) bool, True = masked.
    """
    img_h, img_w = (int(s) for s in image_size)
    if patch_size <= 0 or img_h % patch_size or img_w % patch_size:
        raise ValueError(f'image_size {(img_h, img_w)} must be divisible by patch_size '
                         f'{patch_size}')
    grid_h, grid_w = img_h // patch_size, img_w // patch_size
    count = num_masked(grid_h * grid_w, mask_ratio)
    group = 1 if shared_across is None else int(shared_across)
    if group <= 0 or num_images % group:
        raise ValueError(f'shared_across ({shared_across}) must divide num_images ({num_images})')
    mask = _exact_count_rows(num_images // group, grid_h * grid_w, count, generator,
                             _sampling_device(generator, device))
    mask = mask.view(num_images // group, 1, grid_h, grid_w).expand(-1, group, -1, -1)
    return mask.reshape(num_images, grid_h, grid_w).to(_target_device(generator, device))


def upsample_patch_mask(mask: Tensor, patch_size: int) -> Tensor:
    """Repeat each patch entry over its ``p x p`` pixels.

    Args:
        mask: (..., h, w) patch mask (any dtype).
        patch_size: p, pixels.

    Returns:
        Tensor: (..., h * p, w * p) pixel mask, same dtype.
    """
    return mask.repeat_interleave(patch_size, dim=-2).repeat_interleave(patch_size, dim=-1)


def apply_mask_token(images: Tensor, mask: Tensor, token: Tensor) -> Tensor:
    """Replace every masked patch of the images by a (learnable) token.

    ``out = where(mask_px, tile(token), images)``; a new tensor (the input is
    not modified), differentiable w.r.t. ``token`` (gradient = sum over the
    masked patches) and the visible pixels of ``images``.

    Args:
        images: (..., C, H, W) normalised images.
        mask: (..., H // p, W // p) bool patch mask, True = masked, leading
            dims equal to the images'.
        token: (C, p, p) mask token (SimMIM: zero-initialised parameter).

    Returns:
        Tensor: (..., C, H, W) masked images.
    """
    if token.dim() != 3 or token.shape[1] != token.shape[2]:
        raise ValueError(f'token must be (C, p, p), got {tuple(token.shape)}')
    chans, patch, _ = token.shape
    grid_h, grid_w = mask.shape[-2:]
    expected = mask.shape[:-2] + (chans, grid_h * patch, grid_w * patch)
    if images.shape != expected:
        raise ValueError(f'images must have shape {tuple(expected)} for mask '
                         f'{tuple(mask.shape)} and token {tuple(token.shape)}, '
                         f'got {tuple(images.shape)}')
    pixel_mask = upsample_patch_mask(mask.bool(), patch).unsqueeze(-3)
    tiled = token.to(images.dtype).repeat(1, grid_h, grid_w)
    return torch.where(pixel_mask, tiled, images)


def random_subset_mask(num: int,
                       ratio: float,
                       generator: Optional[torch.Generator] = None,
                       device: Optional[torch.device] = None) -> Tensor:
    """Select exactly ``num_masked(num, ratio)`` of ``num`` items uniformly at random.

    Example (NS-MAE drops 90 % of the non-empty voxels):
        >>> g = torch.Generator().manual_seed(0)
        >>> random_subset_mask(10, 0.9, g).sum().item()
        9

    Args:
        num: Number of items (e.g. non-empty voxels of the whole batch).
        ratio: Fraction selected, in [0, 1].
        generator: Random generator (None: torch's global RNG).
        device: Device of the mask (default: the generator's).

    Returns:
        Tensor: (num,) bool, True = selected (e.g. dropped).
    """
    count = num_masked(num, ratio)
    dev = _sampling_device(generator, device)
    mask = torch.zeros(num, dtype=torch.bool, device=dev)
    mask[torch.randperm(num, generator=generator, device=dev)[:count]] = True
    return mask.to(_target_device(generator, device))
