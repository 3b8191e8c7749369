"""Pool point features into a voxel / BEV grid with ``index_add_`` (pure PyTorch).

This replaces BEVFusion's CUDA ``bev_pool`` (and LSS's sort-and-cumsum
trick): every point adds its feature to the flat index of its voxel.

Grid conventions:

* ``grid_lower`` (3,) is the lower corner ``(x, y, z)`` of the grid in the
  (augmented) LiDAR frame, metres; ``voxel_size`` (3,) the voxel extent
  ``(dx, dy, dz)``; ``grid_shape`` the number of voxels ``(X, Y, Z)``. These
  are BEVFusion's ``xbound/ybound/zbound``: ``grid_lower = (xbound[0],
  ybound[0], zbound[0])``, ``voxel_size = (xbound[2], ybound[2],
  zbound[2])``, ``grid_shape = nx``.
* A point ``p`` falls in voxel ``floor((p - grid_lower) / voxel_size)``.
  Points outside ``[0, grid_shape)`` on any axis are dropped. (BEVFusion
  truncates with ``.long()``, i.e. rounds toward zero, so points up to one
  voxel below ``grid_lower`` land in voxel 0; ``rounding='trunc'``
  reproduces that.)
* Output layout, (B, C, Z, Y, X) by default (``channels`` first, then
  ``z``, ``y``, ``x``: the layout of mmdet3d's dense (Z, Y, X) volumes, and
  of a BEV map indexed ``[y, x]``, ``bev_axes='yx'``). ``bev_axes='xy'``
  swaps the last two axes to BEVFusion's ``bev_pool`` layout (B, C, Z, X, Y).
  (``bev_axes`` is the project's one name for the BEV axis order, see
  :mod:`render_pretrain.grid`.)
* Voxel indices: :func:`render_pretrain.grid.compute_voxel_indices` (also
  importable from here); a :class:`render_pretrain.grid.VoxelGrid` gives
  ``grid.lower, grid.voxel_size, grid.shape`` for the three grid arguments.
"""
from typing import Optional, Sequence, Union

import torch
from torch import Tensor

from .grid import check_bev_axes, compute_voxel_indices

__all__ = ['compute_voxel_indices', 'pool_features_to_grid', 'pool_frustum_to_grid']

_Vec3 = Union[Sequence[float], Tensor]


def pool_features_to_grid(feats: Tensor,
                          points: Tensor,
                          batch_idx: Optional[Tensor],
                          batch_size: int,
                          grid_lower: _Vec3,
                          voxel_size: _Vec3,
                          grid_shape: Sequence[int],
                          collapse_z: Optional[str] = None,
                          reduce: str = 'sum',
                          bev_axes: str = 'yx',
                          rounding: str = 'floor') -> Tensor:
    """Sum (or average) point features into the voxels of a dense grid.

    One ``index_add_`` over the flat voxel index ``((b * Z + z) * Y + y) * X
    + x`` (or ``(b * Y + y) * X + x`` when collapsing with ``'sum'``);
    differentiable w.r.t. ``feats`` (not the point positions). Points
    outside the grid are dropped (use :func:`compute_voxel_indices` to count
    them).

    Example:
        >>> pts = torch.tensor([[0.5, 0.5, 0.5], [0.6, 0.2, 0.9], [1.5, 0.5, 0.5]])
        >>> g = pool_features_to_grid(torch.ones(3, 1), pts, None, 1, (0, 0, 0),
        ...                           (1, 1, 1), (2, 1, 1))
        >>> g.shape, g.flatten().tolist()
        (torch.Size([1, 1, 1, 1, 2]), [2.0, 1.0])

    Args:
        feats: (P, C) point features.
        points: (P, 3) point positions ``(x, y, z)``, LiDAR frame, metres.
        batch_idx: (P,) long sample index of each point in ``[0, B)``, or
            None when all points belong to sample 0.
        batch_size: B.
        grid_lower: (3,) lower grid corner ``(x, y, z)``, metres.
        voxel_size: (3,) voxel size ``(dx, dy, dz)``, metres.
        grid_shape: ``(X, Y, Z)`` number of voxels per axis.
        collapse_z: How to remove the height axis:

            * None: keep it, (B, C, Z, Y, X) (MIM4D volumes).
            * ``'sum'``: sum over Z, (B, C, Y, X).
            * ``'concat'``: stack the Z slices into channels, (B, Z * C, Y,
              X) with channel ``z * C + c`` (BEVFusion's
              ``torch.cat(x.unbind(dim=2), 1)``).
        reduce: ``'sum'`` or ``'mean'`` (average of the points in a voxel;
            0 for empty voxels). For ``collapse_z='sum'`` the mean is over
            the whole column.
        bev_axes: ``'yx'`` (default, ``[..., y, x]``) or ``'xy'`` (BEVFusion's
            ``bev_pool`` output ``[..., x, y]``; with ``collapse_z='concat'``
            this reproduces stock BEVFusion's camera BEV layout exactly).
        rounding: ``'floor'`` or ``'trunc'``, see :func:`compute_voxel_indices`.

    Returns:
        Tensor: the pooled grid, layout per ``collapse_z`` / ``bev_axes``,
        dtype and device of ``feats``.
    """
    if feats.dim() != 2 or feats.shape[0] != points.shape[0]:
        raise ValueError(f'feats must be (P, C) with P = points.shape[0] = {points.shape[0]}, '
                         f'got {tuple(feats.shape)}')
    if collapse_z not in (None, 'sum', 'concat'):
        raise ValueError(f"collapse_z must be None, 'sum' or 'concat', got {collapse_z!r}")
    if reduce not in ('sum', 'mean'):
        raise ValueError(f"reduce must be 'sum' or 'mean', got {reduce!r}")
    check_bev_axes(bev_axes)
    num_x, num_y, num_z = (int(n) for n in grid_shape)
    num_c = feats.shape[1]
    idx, inside = compute_voxel_indices(points, grid_lower, voxel_size, grid_shape, rounding)
    if batch_idx is None:
        batch = torch.zeros_like(idx[:, 0])
    else:
        if batch_idx.shape != points.shape[:1]:
            raise ValueError(f'batch_idx must be (P,) = ({points.shape[0]},), '
                             f'got {tuple(batch_idx.shape)}')
        batch = batch_idx.long()
        inside = inside & (batch >= 0) & (batch < batch_size)
    if bev_axes == 'yx':
        cell = idx[:, 1] * num_x + idx[:, 0]
    else:
        cell = idx[:, 0] * num_y + idx[:, 1]
    plane = num_x * num_y
    if collapse_z == 'sum':
        flat, num_slots = batch * plane + cell, batch_size * plane
    else:
        flat, num_slots = (batch * num_z + idx[:, 2]) * plane + cell, batch_size * num_z * plane
    # Points outside the grid go to one extra trash slot that is cut off
    # afterwards: cheaper than gathering the kept rows of a large ``feats``.
    flat = torch.where(inside, flat, torch.full_like(flat, num_slots))
    grid = feats.new_zeros(num_slots + 1, num_c).index_add_(0, flat, feats)[:num_slots]
    if reduce == 'mean':
        counts = feats.new_zeros(num_slots + 1).index_add_(0, flat, feats.new_ones(flat.shape))
        grid = grid / counts[:num_slots].clamp_min(1).unsqueeze(1)
    spatial = (num_y, num_x) if bev_axes == 'yx' else (num_x, num_y)
    if collapse_z == 'sum':
        return grid.view(batch_size, *spatial, num_c).permute(0, 3, 1, 2).contiguous()
    grid = grid.view(batch_size, num_z, *spatial, num_c)
    if collapse_z == 'concat':
        # channel index z * C + c
        return grid.permute(0, 1, 4, 2, 3).reshape(batch_size, num_z * num_c, *spatial)
    return grid.permute(0, 4, 1, 2, 3).contiguous()


def pool_frustum_to_grid(feats: Tensor, geometry: Tensor, grid_lower: _Vec3, voxel_size: _Vec3,
                         grid_shape: Sequence[int], **options) -> Tensor:
    """Pool camera-frustum features (LSS "splat") into a voxel / BEV grid.

    Flattens the frustum over cameras, bins and pixels (the batch index comes
    from the leading dim, no loop) and calls :func:`pool_features_to_grid`.

    Args:
        feats: (B, N, D, h, w, C) frustum features (depth probability times
            context, as in LSS); any dims between B and C are flattened.
        geometry: (B, N, D, h, w, 3) their LiDAR-frame positions, metres
            (:func:`render_pretrain.camera_geometry.frustum_to_lidar`).
        grid_lower, voxel_size, grid_shape: see :func:`pool_features_to_grid`.
        **options: ``collapse_z``, ``reduce``, ``bev_axes``, ``rounding`` of
            :func:`pool_features_to_grid`.

    Returns:
        Tensor: pooled grid, see :func:`pool_features_to_grid`.
    """
    if geometry.shape[:-1] != feats.shape[:-1] or geometry.shape[-1] != 3:
        raise ValueError(f'geometry must be feats.shape[:-1] + (3,) = '
                         f'{tuple(feats.shape[:-1]) + (3, )}, got {tuple(geometry.shape)}')
    batch_size = feats.shape[0]
    per_sample = feats[0].numel() // feats.shape[-1] if batch_size else 0
    batch_idx = torch.arange(batch_size, device=feats.device).repeat_interleave(per_sample)
    return pool_features_to_grid(feats.reshape(-1, feats.shape[-1]), geometry.reshape(-1, 3),
                                 batch_idx, batch_size, grid_lower, voxel_size, grid_shape,
                                 **options)
