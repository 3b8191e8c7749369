"""Voxel masking (NS-MAE's LiDAR corruption): which voxels are kept, which points survive.

NS-MAE drops ``voxel_mask_ratio`` (paper: 90 %) of the non-empty voxels of
the batch before the sparse encoder. The dropped voxels become the BEV
target (:func:`render_pretrain.bev_targets.bev_first_hit_target`); the
points of the KEPT voxels make the LiDAR depth map fed to the camera branch.

Voxel coordinates follow mmdet3d's voxelisers: (M, 4) long rows ``(batch, z,
y, x)`` over a :class:`render_pretrain.grid.VoxelGrid`.
"""
from typing import Optional

import torch
from torch import Tensor

from .grid import VoxelGrid
from .masking import random_subset_mask

__all__ = ['draw_voxel_keep_mask', 'points_in_kept_voxels']


def draw_voxel_keep_mask(num_voxels: int,
                         mask_ratio: float,
                         generator: Optional[torch.Generator] = None,
                         device: Optional[torch.device] = None) -> Tensor:
    """Keep all but exactly ``round(mask_ratio * M)`` of M voxels, uniformly at random.

    The dropped count is :func:`render_pretrain.masking.num_masked` (``floor(
    mask_ratio * M + 0.5)``); the draw is one ``randperm`` on the
    generator's device, so one seed gives one mask on any device.

    Example (NS-MAE drops 90 %):
        >>> g = torch.Generator().manual_seed(0)
        >>> int(draw_voxel_keep_mask(10, 0.9, g).sum())
        1

    Args:
        num_voxels: M, non-empty voxels of the whole batch.
        mask_ratio: Fraction dropped, in [0, 1].
        generator: Random generator (None: torch's global RNG).
        device: Device of the mask (default: the generator's).

    Returns:
        Tensor: (M,) bool, True = kept (fed to the encoder), False = dropped.
    """
    if not 0.0 <= mask_ratio <= 1.0:
        raise ValueError(f'mask_ratio must be in [0, 1], got {mask_ratio}')
    return ~random_subset_mask(num_voxels, mask_ratio, generator, device=device)


def points_in_kept_voxels(points: Tensor, point_batch: Tensor, kept_coors: Tensor,
                          grid: VoxelGrid) -> Tensor:
    """Which points lie in one of the kept voxels of their own sample.

    A point ``p`` of sample ``b`` survives iff it is inside ``grid`` and its
    voxel ``floor((p - lower) / voxel_size)`` is a row ``(b, iz, iy, ix)`` of
    ``kept_coors`` (the voxel keys of :meth:`VoxelGrid.flat_keys` are
    compared, one ``torch.isin``, no loop). Points outside the grid never
    survive (they belong to no voxel).

    Args:
        points: (P, 3) point positions ``(x, y, z)``, LiDAR frame, metres.
        point_batch: (P,) long sample index of each point.
        kept_coors: (K, 4) long kept voxels ``(batch, z, y, x)``.
        grid: The voxelisation grid of ``kept_coors``.

    Returns:
        Tensor: (P,) bool, True = the point is in a kept voxel.
    """
    if point_batch.shape != points.shape[:1]:
        raise ValueError(f'point_batch must be (P,) = ({points.shape[0]},), got '
                         f'{tuple(point_batch.shape)}')
    if kept_coors.dim() != 2 or kept_coors.shape[1] != 4:
        raise ValueError(f'kept_coors must be (K, 4) (batch, z, y, x), got '
                         f'{tuple(kept_coors.shape)}')
    ijk, inside = grid.voxel_indices(points)
    kept_keys = grid.flat_keys(kept_coors[:, 0], kept_coors[:, [3, 2, 1]])
    return inside & torch.isin(grid.flat_keys(point_batch, ijk), kept_keys)
