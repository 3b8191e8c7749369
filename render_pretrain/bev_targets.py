"""BEV rendering targets from LiDAR voxels (NS-MAE BEV depth target).

NS-MAE renders, for each BEV cell, the expected height of the first hit of a
vertical ray cast from the top of the grid
(:func:`render_pretrain.volume_rendering.render_bev_height`); the target is
the height of the topmost occupied voxel of the MASKED-OUT (dropped) LiDAR
voxels in that column.
"""
from typing import Sequence, Tuple

import torch
from torch import Tensor

from .grid import VoxelGrid

__all__ = ['bev_first_hit_target', 'first_occupied_height']


def first_occupied_height(voxel_coords: Tensor,
                          batch_size: int,
                          grid_shape: Sequence[int],
                          z_centres: Tensor,
                          coord_order: str = 'zyx',
                          xy_stride: int = 1) -> Tuple[Tensor, Tensor]:
    """Height of the topmost occupied voxel of every BEV column.

    Vectorised with ``scatter_reduce(amax)`` over the flat column index.

    Example:
        >>> coords = torch.tensor([[0, 0, 0, 1], [0, 2, 0, 1], [0, 1, 0, 0]])
        >>> h, valid = first_occupied_height(coords, 1, (3, 1, 2),
        ...                                  torch.tensor([-1., 0., 1.]))
        >>> h.tolist(), valid.tolist()
        ([[[0.0, 1.0]]], [[[True, True]]])

    Args:
        voxel_coords: (V, 4) long voxel coordinates. With ``coord_order='zyx'``
            (mmdet3d ``Voxelization`` / CenterPoint ``SparseEncoder``): rows
            ``(batch, z, y, x)``; with ``'xyz'`` (BEVFusion sparse encoder):
            rows ``(batch, x, y, z)``.
        batch_size: B.
        grid_shape: Voxels per axis, in the same order as the coordinates:
            ``(Z, Y, X)`` for ``'zyx'``, ``(X, Y, Z)`` for ``'xyz'``.
        z_centres: (Z,) height of each z index's voxel centre, LiDAR frame,
            metres (e.g. ``bin_centres(-5, 3, 41)``).
        coord_order: ``'zyx'`` or ``'xyz'``.
        xy_stride: Voxels per BEV cell along x and y, for a BEV map coarser
            than the voxel grid (NS-MAE: 1440 x 1440 voxels, 180 x 180 BEV
            cells -> 8); the topmost voxel of the merged columns counts.

    Returns:
        tuple[Tensor, Tensor]: height (B, Y', X') in metres (dtype of
        ``z_centres``, 0 where empty) and valid (B, Y', X') bool (the column
        has an occupied voxel), with ``Y' = ceil(Y / xy_stride)`` and ``X'``
        alike. Transpose the last two dims for an (X, Y) BEV layout.
    """
    if voxel_coords.dim() != 2 or voxel_coords.shape[1] != 4:
        raise ValueError(f'voxel_coords must be (V, 4), got {tuple(voxel_coords.shape)}')
    if coord_order == 'zyx':
        num_z, num_y, num_x = (int(n) for n in grid_shape)
        b, z, y, x = voxel_coords.long().unbind(1)
    elif coord_order == 'xyz':
        num_x, num_y, num_z = (int(n) for n in grid_shape)
        b, x, y, z = voxel_coords.long().unbind(1)
    else:
        raise ValueError(f"coord_order must be 'zyx' or 'xyz', got {coord_order!r}")
    if z_centres.shape != (num_z, ):
        raise ValueError(f'z_centres must be ({num_z},) for grid_shape {tuple(grid_shape)}, '
                         f'got {tuple(z_centres.shape)}')
    inside = ((b >= 0) & (b < batch_size) & (z >= 0) & (z < num_z) & (y >= 0) & (y < num_y)
              & (x >= 0) & (x < num_x))
    if not bool(inside.all()):
        raise ValueError(f'voxel_coords hold {int((~inside).sum())} coordinates outside '
                         f'batch_size={batch_size}, grid_shape={tuple(grid_shape)} '
                         f'({coord_order} order)')
    if xy_stride < 1:
        raise ValueError(f'xy_stride must be >= 1, got {xy_stride}')
    num_y, num_x = -(-num_y // xy_stride), -(-num_x // xy_stride)
    y, x = y // xy_stride, x // xy_stride
    flat = (b * num_y + y) * num_x + x
    top = torch.full((batch_size * num_y * num_x, ), -1, dtype=torch.long,
                     device=voxel_coords.device)
    top.scatter_reduce_(0, flat, z, reduce='amax')
    top = top.view(batch_size, num_y, num_x)
    valid = top >= 0
    height = torch.where(valid, z_centres[top.clamp_min(0)], z_centres.new_zeros(()))
    return height, valid


def bev_first_hit_target(voxel_coords: Tensor,
                         batch_size: int,
                         grid: VoxelGrid,
                         bev_shape: Sequence[int],
                         bev_axes: str) -> Tuple[Tensor, Tensor]:
    """NS-MAE's BEV target: height of the topmost given voxel under every BEV cell.

    The BEV map may be coarser than the voxel grid: a cell covers ``s_x x
    s_y`` voxel columns (:meth:`VoxelGrid.bev_stride`, e.g. 8 x 8 for 1440
    voxels under 180 cells) and the topmost voxel of those columns counts
    (its centre height, ``lower_z + (iz + 0.5) * dz``).

    Example:
        >>> g = VoxelGrid((0., 0., -1.), (1., 1., 1.), (2, 2, 2))
        >>> coords = torch.tensor([[0, 0, 0, 0], [0, 1, 1, 1]])  # (b, z, y, x)
        >>> h, valid = bev_first_hit_target(coords, 1, g, (1, 1), 'xy')
        >>> h.tolist(), valid.tolist()
        ([[[0.5]]], [[[True]]])

    Args:
        voxel_coords: (V, 4) long voxels ``(batch, z, y, x)`` (mmdet3d
            voxeliser order), e.g. the voxels dropped by the masking.
        batch_size: B.
        grid: The voxel grid of ``voxel_coords``.
        bev_shape: Spatial size of the BEV map in ``bev_axes`` order.
        bev_axes: ``'xy'`` ([.., X, Y]) or ``'yx'`` ([.., Y, X]).

    Returns:
        tuple[Tensor, Tensor]: height (B, *bev_shape) in metres (LiDAR z,
        float32, 0 where empty) and valid (B, *bev_shape) bool.
    """
    stride = grid.bev_stride(bev_shape, bev_axes)
    coarse = grid.coarsened(stride)
    if voxel_coords.dim() != 2 or voxel_coords.shape[1] != 4:
        raise ValueError(f'voxel_coords must be (V, 4), got {tuple(voxel_coords.shape)}')
    cells = VoxelGrid.coarsen_indices(voxel_coords[:, [3, 2, 1]], stride)
    coords = torch.cat([voxel_coords[:, :1].long(), cells.flip(1)], dim=1)  # (b, z, y', x')
    height, valid = first_occupied_height(
        coords, batch_size, coarse.shape[::-1],
        coarse.cell_centres(2, device=voxel_coords.device))
    if bev_axes == 'xy':
        height, valid = height.transpose(1, 2), valid.transpose(1, 2)
    return height, valid
